"""deploy/ files and the Ray settings, checked without a cluster: YAML parses, Ray Serve's own schemas
accept them, their args are valid crossrank settings, and the key never travels in settings."""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from loopback import free_port

from crossrank.errors import InvalidInputError
from crossrank.server import ray as serve_ray
from crossrank.server.settings import ServerSettings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def serve_configs() -> dict[str, dict]:
    rayservice = yaml.safe_load((DEPLOY / "rayservice.yaml").read_text())
    return {
        "serve-config.yaml": yaml.safe_load((DEPLOY / "serve-config.yaml").read_text()),
        "rayservice.yaml": yaml.safe_load(rayservice["spec"]["serveConfigV2"]),
    }


@pytest.mark.parametrize("name", ["serve-config.yaml", "rayservice.yaml"])
def test_serve_configs_pass_rays_schema_and_our_settings(name):
    from ray.serve.schema import DeploymentSchema, ServeDeploySchema

    config = ServeDeploySchema.model_validate(serve_configs()[name])
    (app,) = config.applications
    assert app.import_path == "crossrank.server.ray:build_app"
    settings = ServerSettings(**app.args)
    assert "api_key" not in app.args and settings.max_replicas
    options = serve_ray.deployment_options(settings)
    options.pop("max_constructor_retry_count")  # a serve.deployment option the schema does not list
    schema = DeploymentSchema(name="crossrank", **options)
    assert schema.max_ongoing_requests == settings.max_queue and schema.backpressure_config.status_code == 429
    assert config.http_options.request_timeout_s > settings.request_timeout_s


def test_rayservice_takes_the_key_from_a_secret():
    spec = yaml.safe_load((DEPLOY / "rayservice.yaml").read_text())
    assert (spec["apiVersion"], spec["kind"]) == ("ray.io/v1", "RayService")
    cluster = spec["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == "2.60.0"
    pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
    for group in pods:
        env = {e["name"]: e for e in group["template"]["spec"]["containers"][0]["env"]}
        assert env["RAY_USAGE_STATS_ENABLED"]["value"] == "0"
        assert "secretKeyRef" in env["CROSSRANK_API_KEY"]["valueFrom"]


def test_deployment_options_follow_the_settings():
    fixed = serve_ray.deployment_options(ServerSettings(num_replicas=3, max_queue=40, replica_cpus=2))
    assert (fixed["num_replicas"], fixed["max_ongoing_requests"], fixed["max_queued_requests"]) == (3, 40, 40)
    assert fixed["ray_actor_options"]["num_cpus"] == 2
    assert fixed["ray_actor_options"]["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "2"
    scaled = serve_ray.deployment_options(
        ServerSettings(min_replicas=0, max_replicas=5, max_ongoing_requests=8, max_queued_requests=3)
    )
    assert "num_replicas" not in scaled and scaled["autoscaling_config"]["max_replicas"] == 5
    assert scaled["autoscaling_config"]["min_replicas"] == 0 and scaled["max_ongoing_requests"] == 8


TOKENIZER_THREADS = """
import os
from tokenizers import Tokenizer, models, pre_tokenizers
tok = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
tok.pre_tokenizer = pre_tokenizers.Whitespace()
tok.encode_batch(["a b " * 200] * 2000)
print(len(os.listdir("/proc/self/task")))
"""


LINUX_MULTICORE = Path("/proc/self/task").exists() and (os.cpu_count() or 1) >= 2


@pytest.mark.skipif(not LINUX_MULTICORE, reason="counts threads in /proc; needs 2+ cores")
def test_a_one_cpu_replica_tokenizes_on_one_thread():
    """The Rust tokenizer's batch pool is one thread per core unless told: a 1-CPU replica starts one."""

    def threads(env):
        run = subprocess.run([sys.executable, "-c", TOKENIZER_THREADS], env=env, capture_output=True,
                             text=True)
        assert run.returncode == 0, run.stderr
        return int(run.stdout)

    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAYON", "TOKENIZERS"))}
    assert threads(base) >= 3  # main thread + one pool thread per core
    assert threads({**base, **serve_ray.thread_env(1.0)}) == 2


TORCH_THREADS = """
import sys
from crossrank.server.ray import limit_threads
if sys.argv[1] == "before":
    import torch
limit_threads(1)
imported = "torch" in sys.modules
import torch
print(imported, torch.get_num_threads())
"""


@pytest.mark.parametrize("torch_first", [False, True], ids=["torch-not-imported", "torch-imported"])
def test_limit_threads_keeps_torch_to_the_workers_cpus_without_importing_it(torch_first):
    """Replicas and table actors on the OpenVINO/ONNX default never load torch: sizing its thread pool
    must not import it (~1.5 s, ~230 MB each), yet a torch loaded before or after keeps to one thread."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    arg = "before" if torch_first else "after"
    run = subprocess.run([sys.executable, "-c", TORCH_THREADS, arg], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(torch_first), "1"]


def test_ray_settings_are_checked():
    with pytest.raises(ValueError, match="max_ongoing_requests"):
        ServerSettings(max_queue=4, max_ongoing_requests=5)
    with pytest.raises(ValueError, match="needs max_replicas"):
        ServerSettings(min_replicas=1)
    with pytest.raises(ValueError, match="min_replicas"):
        ServerSettings(min_replicas=3, max_replicas=2)


def test_replicas_get_settings_without_the_key_and_a_plain_builder_function():
    settings = ServerSettings(api_key="a-real-secret-0123456789", model="embedded")
    values = serve_ray.replica_values(settings)
    assert "api_key" not in values and "a-real-secret" not in repr(values)
    deployment = serve_ray.build_deployment(settings)
    assert hasattr(deployment.func_or_class, "check_health")
    cells = [c.cell_contents for c in deployment.func_or_class.__init__.__closure__]
    (builder,) = [c for c in cells if inspect.isfunction(c) and c.__name__ == "make_app"]
    assert builder.__code__.co_argcount == 0  # Serve calls it on each replica; a partial would be pickled
    captured = [c.cell_contents for c in builder.__closure__]
    assert "a-real-secret" not in repr(captured)


def test_replicas_get_a_local_model_folder_as_an_absolute_path(tmp_path, monkeypatch):
    """Replicas run in Ray's working folder, not the driver's: ``--model ./my-model`` must still name it.
    Built-in names and hub ids pass unchanged."""
    (tmp_path / "my-model").mkdir()
    monkeypatch.chdir(tmp_path)
    assert serve_ray.replica_values(ServerSettings(model="my-model"))["model"] == str(tmp_path / "my-model")
    for name in ("embedded", "BAAI/bge-reranker-v2-m3"):
        assert serve_ray.replica_values(ServerSettings(model=name))["model"] == name


@pytest.mark.parametrize("command", ["serve --ray", "rerank-table {source} --output {out}"])
def test_a_ray_address_nothing_answers_on_is_a_clear_error_in_seconds(command, tmp_path):
    """Ray itself retries such an address for about a quarter of an hour, printing warnings."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"query": "q", "candidates": ["a"]}\n')
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    argv = command.format(source=source, out=tmp_path / "out").split() + ["--ray-address", address]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    run = subprocess.run([sys.executable, "-m", "crossrank.cli.main", *argv], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2, run.stderr[-2000:]
    assert f"cannot reach the Ray cluster at {address}" in run.stderr and "--ray-address" in run.stderr
    assert "Traceback" not in run.stderr


def test_num_replicas_with_autoscaling_bounds_is_refused_before_ray_starts():
    """Serve refuses both too; crossrank used to drop num_replicas silently and autoscale from 1."""
    with pytest.raises(InvalidInputError, match="give one of them"):
        serve_ray.deployment_options(ServerSettings(num_replicas=3, max_replicas=5))
    assert "autoscaling_config" in serve_ray.deployment_options(ServerSettings(max_replicas=5))
    command = [sys.executable, "-m", "crossrank.cli.main", "serve", "--ray", "--num-replicas", "3",
               "--max-replicas", "5"]
    run = subprocess.run(command, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and "give one of them" in run.stderr, run.stderr[-2000:]


def test_the_builder_refuses_a_key_in_its_args():
    """Args are part of the Serve config (``serve config`` prints them); replicas never get that key."""
    with pytest.raises(InvalidInputError, match="CROSSRANK_API_KEY") as info:
        serve_ray.build_app({"model": "embedded", "api_key": "a-real-secret-0123456789"})
    assert "a-real-secret" not in str(info.value)


def test_the_deploy_commands_start_ray_with_usage_stats_off():
    """Ray's CLI starts Ray with usage stats on unless told; the config's runtime_env reaches replicas."""
    header = " ".join(
        line.removeprefix("#").strip()
        for line in (DEPLOY / "serve-config.yaml").read_text().splitlines() if line.startswith("#")
    )
    commands = re.findall(r"`([^`]*(?:serve run|ray start)[^`]*)`", header)
    assert commands and all(c.startswith("RAY_USAGE_STATS_ENABLED=0 ") for c in commands), commands


def test_a_refused_key_stays_out_of_the_builders_error(monkeypatch):
    """Serve writes the builder's (and a replica's) error to its status and logs."""
    key = "0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("CROSSRANK_API_KEY", key + "\n")  # as from a Secret made from a file
    with pytest.raises(ValueError, match="api_key must be at least") as info:
        serve_ray.build_app({"model": "embedded"})
    assert key not in str(info.value)
