"""One settings object: defaults, env vars, config file, CLI flags (generated), and `crossrank serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from loopback import free_port, wait_ready

from crossrank.cli.main import build_parser
from crossrank.cli.serve_cmd import settings_from
from crossrank.errors import InvalidInputError
from crossrank.server import ServerSettings


def parse(*argv):
    return settings_from(build_parser().parse_args(["serve", *argv]))


def test_defaults_accept_a_top_100_rerank():
    s = ServerSettings()
    assert (s.host, s.port, s.api_key) == ("127.0.0.1", 8080, None)
    assert s.max_documents >= 100 and s.max_body_bytes >= 100 * 4096


def test_ray_only_flags_without_ray_are_refused(monkeypatch):
    """`serve --num-replicas 2` ran one plain process, silently; in the environment they stay allowed."""
    with pytest.raises(InvalidInputError, match="--num-replicas, --replica-cpus applies to .* serve --ray"):
        parse("--num-replicas", "2", "--replica-cpus", "0.5")
    assert parse("--ray", "--num-replicas", "2").num_replicas == 2
    monkeypatch.setenv("CROSSRANK_NUM_REPLICAS", "3")
    assert parse().num_replicas == 3
    monkeypatch.setenv("CROSSRANK_RAY", "true")  # --ray from the environment counts too
    assert parse("--max-replicas", "4").max_replicas == 4


def test_precedence_flags_env_file(tmp_path, monkeypatch):
    config = tmp_path / "server.toml"
    config.write_text('port = 9001\nmax-queue = 7\nmax_documents = 50\nmodel = "from-file"\n')
    monkeypatch.setenv("CROSSRANK_CONFIG_FILE", str(config))
    monkeypatch.setenv("CROSSRANK_MAX_QUEUE", "9")
    monkeypatch.setenv("CROSSRANK_MODEL", "from-env")
    s = parse("--model", "from-flag", "--no-v2-return-documents")
    assert (s.model, s.max_queue, s.port, s.max_documents) == ("from-flag", 9, 9001, 50)
    assert s.v2_return_documents is False


def test_json_config_file_and_none_values(tmp_path):
    config = tmp_path / "server.json"
    config.write_text(json.dumps({"max_wait_ms": 2.5, "window": 64}))
    s = parse("--config-file", str(config), "--stride", "none", "--no-v1-return-documents")
    assert (s.max_wait_ms, s.window, s.stride, s.v1_return_documents) == (2.5, 64, None, False)


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="port"):
        parse("--port", "not-a-port")
    with pytest.raises(InvalidInputError, match="placeholder"):
        parse("--api-key", "changeme")
    with pytest.raises(InvalidInputError, match="does not exist"):
        parse("--config-file", str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("port = = 1")
    with pytest.raises(InvalidInputError, match="not valid"):
        parse("--config-file", str(bad))
    with pytest.raises(InvalidInputError, match="extra|not permitted|Extra"):
        unknown = tmp_path / "unknown.json"
        unknown.write_text('{"prot": 1}')
        parse("--config-file", str(unknown))


def test_help_lists_every_field_with_its_description(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name, field in ServerSettings.model_fields.items():
        assert "--" + name.replace("_", "-") in out
        assert " ".join(field.description.split())[:30] in out


@pytest.mark.timeout(120)
def test_serve_command_starts_and_refuses_placeholder_key(tiny_xlmr_dir):
    env = {**os.environ, "CROSSRANK_API_KEY": "changeme"}
    refused = subprocess.run(
        [sys.executable, "-m", "crossrank.cli.main", "serve", "--model", str(tiny_xlmr_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "placeholder" in refused.stderr
    port = free_port()
    env = {**os.environ, "CROSSRANK_API_KEY": "a-long-enough-test-key"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crossrank.cli.main",
            "serve",
            "--model",
            str(tiny_xlmr_dir),
            "--port",
            str(port),
            "--max-length",
            "64",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout=90, proc=proc)
        response = httpx.post(
            f"{url}/v2/rerank",
            json={"query": "q", "documents": ["a", "b"]},
            headers={"Authorization": "Bearer a-long-enough-test-key"},
            timeout=30,
        )
        assert response.status_code == 200 and len(response.json()["results"]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=20)
