"""`crossrank serve --ray --num-replicas 2`: a local Ray started by the command answers the cohere SDK,
and SIGTERM stops every process it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from loopback import free_port, wait_ready

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]

KEY = "cli-ray-key-31d7a0c9e2"


def test_serve_ray_answers_cohere_and_sigterm_leaves_no_ray_process(tiny_xlmr_dir, tmp_path):
    import cohere
    import psutil

    port = free_port()
    command = [
        sys.executable, "-m", "crossrank.cli.main", "serve", "--ray", "--num-replicas", "2",
        "--model", str(tiny_xlmr_dir), "--backend", "torch", "--max-length", "128", "--port", str(port),
    ]
    env = {**os.environ, "CROSSRANK_API_KEY": KEY, "RAY_USAGE_STATS_ENABLED": "0"}
    log = (tmp_path / "serve.log").open("w")  # a file, not a pipe: Ray logs a lot, a full pipe blocks
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    started: list[psutil.Process] = []
    try:
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc=proc)
        except AssertionError:
            raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from None
        client = cohere.ClientV2(api_key=KEY, base_url=f"http://127.0.0.1:{port}")
        docs = ["Berlin is in Germany.", "Paris is the capital of France.", "Bananas are yellow."]
        response = client.rerank(model="m", query="capital of france", documents=docs, top_n=2)
        assert len(response.results) == 2 and all(0 <= r.relevance_score <= 1 for r in response.results)
        started = psutil.Process(proc.pid).children(recursive=True)
        names = {p.name() for p in started}
        assert {"raylet", "gcs_server"} <= names, names
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        log.close()
    assert code == 0
    time.sleep(1)
    left = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], [(p.pid, p.name()) for p in left]


def serve_ray(*flags: str, timeout: float = 300) -> subprocess.CompletedProcess:
    port = str(free_port())
    command = [sys.executable, "-m", "crossrank.cli.main", "serve", "--ray", "--port", port, *flags]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def test_replicas_needing_gpus_this_machine_lacks_are_refused_not_waited_for():
    run = serve_ray("--replica-gpus", "1000")  # Serve would wait for them forever
    assert run.returncode == 2, run.stderr[-3000:]
    assert "1 replicas x 1000 GPUs do not fit this machine's" in run.stderr


def test_a_model_the_replicas_cannot_load_is_a_clear_error(tiny_xlmr_dir):
    """Serve used to end in a traceback saying only 'Failed to update the deployments'."""
    run = serve_ray("--model", str(tiny_xlmr_dir), "--backend", "torch", "--dtype", "int8")
    assert run.returncode == 2, run.stderr[-3000:]
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("crossrank: error: the crossrank replicas did not start:") and "int8" in line, line


def test_a_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = [sys.executable, "-m", "crossrank.cli.main", "serve", "--ray", "--port", str(port)]
        run = subprocess.run(command, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
                             capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-3000:]
    assert f"could not listen on 127.0.0.1:{port}" in run.stderr.strip().splitlines()[-1]


def test_ray_address_local_is_the_local_ray_with_the_key_handed_on(tiny_xlmr_dir, tmp_path):
    """--ray-address local (Ray's name for a new local Ray) used to be treated as a cluster: the key given
    by flag never reached the replicas, which refused to start."""
    port = free_port()
    command = [
        sys.executable, "-m", "crossrank.cli.main", "serve", "--ray", "--ray-address", "local",
        "--api-key", KEY, "--model", str(tiny_xlmr_dir), "--backend", "torch", "--port", str(port),
    ]
    env = {k: v for k, v in os.environ.items() if k != "CROSSRANK_API_KEY"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(command, env={**env, "RAY_USAGE_STATS_ENABLED": "0"}, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc=proc)
        except AssertionError:
            raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from None
        body = {"model": "m", "query": "q", "documents": ["a", "b"]}
        url = f"http://127.0.0.1:{port}/v2/rerank"
        assert httpx.post(url, json=body, timeout=60).status_code == 401
        auth = {"Authorization": f"Bearer {KEY}"}
        assert httpx.post(url, json=body, headers=auth, timeout=60).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        log.close()
    assert code == 0
