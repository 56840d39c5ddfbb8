"""``kill -9`` at several points: of ``crossrank serve`` under load, of ``crossrank models build`` and of
``crossrank export``. The previous state stays usable, nothing half-written is ever used, and the next
run completes. (``crossrank index add`` is covered in tests/retrieval/test_index.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from loopback import free_port, wait_ready

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "crossrank.cli.main"]
REQUEST = {"query": "capital of france", "documents": ["Paris is the capital of France.", "Berlin", "Köln"]}


def env_with_home(home: Path) -> dict:
    return {**os.environ, "CROSSRANK_HOME": str(home), "PYTHONWARNINGS": "ignore"}


def kill_when(proc: subprocess.Popen, ready, delay: float, timeout: float = 120) -> bool:
    """SIGKILL ``proc`` ``delay`` s after ``ready()`` first holds; False if it finished before that."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the process never reached the point to kill it at")
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return True


# --------------------------------------------------------------------------------------- serve


def start_serve(model: Path, port: int, home: Path) -> subprocess.Popen:
    command = [*CLI, "serve", "--model", str(model), "--port", str(port), "--log-level", "warning"]
    env = env_with_home(home)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_ready(f"http://127.0.0.1:{port}", timeout=120, proc=proc)
    return proc


def scores(port: int) -> list[tuple[int, float]]:
    response = httpx.post(f"http://127.0.0.1:{port}/v2/rerank", json=REQUEST, timeout=60)
    assert response.status_code == 200, response.text
    return [(r["index"], r["relevance_score"]) for r in response.json()["results"]]


@pytest.mark.timeout(300)
def test_serve_killed_under_load_restarts_with_the_same_answers(tiny_xlmr_dir, tmp_path):
    port = free_port()
    server = start_serve(tiny_xlmr_dir, port, tmp_path / "home")
    before = scores(port)
    statuses: list[int | str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            while not stop.is_set():
                try:
                    statuses.append(client.post("/v2/rerank", json=REQUEST).status_code)
                except httpx.TransportError:
                    statuses.append("gone")
                    return

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=30)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses.count(200) > 0 and set(statuses) <= {200, 429, "gone"}, statuses[-20:]
    restarted = start_serve(tiny_xlmr_dir, port, tmp_path / "home")  # the same port is free again
    try:
        after = scores(port)
    finally:
        restarted.terminate()
        restarted.wait(timeout=30)
    assert [i for i, _ in after] == [i for i, _ in before]
    assert [s for _, s in after] == pytest.approx([s for _, s in before], abs=1e-6)


# -------------------------------------------------------------------------------- models build


@pytest.mark.timeout(600)
def test_models_build_killed_keeps_the_previous_build_and_the_next_run_completes(tmp_path):
    from crossrank import Reranker

    home = tmp_path / "home"
    models = home / "models"
    first = subprocess.run(
        [*CLI, "models", "build", "embedded"], env=env_with_home(home), capture_output=True, timeout=300
    )
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    final = models / "embedded"
    reference = Reranker(str(final)).compute_score(["capital of france", "Paris is the capital"])

    def building() -> bool:
        return any(models.glob(".tmp-embedded.*"))

    killed = 0
    for delay in (0.0, 1.0, 2.5, 4.0):  # while the tokenizer, weights and files are written
        proc = subprocess.Popen(
            [*CLI, "models", "build", "embedded", "--force"],
            env=env_with_home(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        killed += kill_when(proc, building, delay)
        assert_usable_build(home, final, reference)
    assert killed >= 2, "the build finished before most kills: kill earlier"
    done = subprocess.run(
        [*CLI, "models", "build", "embedded", "--force"], env=env_with_home(home), capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert_usable_build(home, final, reference)
    assert not [p.name for p in models.iterdir() if p.name.startswith((".tmp-embedded", ".old-embedded"))]


def assert_usable_build(home: Path, final: Path, reference: list[float]) -> None:
    """The built folder is complete (by its fingerprint) and scores as before; listing it in another
    process with this home does not rebuild it."""
    from crossrank import Reranker
    from crossrank.models.build import build_fingerprint, is_complete

    assert is_complete(final, build_fingerprint("embedded")), sorted(p.name for p in final.iterdir())
    got = Reranker(str(final)).compute_score(["capital of france", "Paris is the capital"])
    assert got == pytest.approx(reference, abs=1e-6)
    listed = subprocess.run([*CLI, "models", "list"], env=env_with_home(home), capture_output=True, text=True)
    [line] = [x for x in listed.stdout.splitlines() if x.split()[:1] == ["embedded"]]
    assert "not built" not in line, line


def test_a_swap_interrupted_between_its_renames_is_restored(tmp_path, monkeypatch):
    """The one moment a killed swap leaves no final folder: the old one is put back, not rebuilt."""
    from crossrank.fsutil import restore_interrupted_swap

    final = tmp_path / "embedded"
    aside = tmp_path / ".old-embedded.abc123"
    aside.mkdir()
    (aside / "embedded").mkdir()
    (aside / "embedded" / "model.safetensors").write_bytes(b"weights")
    assert restore_interrupted_swap(final)
    assert (final / "model.safetensors").read_bytes() == b"weights"
    assert not restore_interrupted_swap(final)


# ------------------------------------------------------------------------------------- export


@pytest.mark.timeout(600)
def test_export_killed_leaves_previous_exports_usable_and_the_next_run_completes(tiny_xlmr_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from crossrank import Reranker
    from crossrank.backends.onnx_backend import OnnxBackend
    from crossrank.backends.onnx_export import cached_export, read_manifest

    home = tmp_path / "home"
    out = tmp_path / "fp32"
    env = env_with_home(home)
    first = subprocess.run(
        [*CLI, "export", str(tiny_xlmr_dir), "--out", str(out)], env=env, capture_output=True, timeout=300
    )
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    pair = ["capital of france", "Paris is the capital"]
    reference = Reranker(str(tiny_xlmr_dir), backend=OnnxBackend(out, dtype="fp32")).compute_score(pair)
    onnx_home = home / "onnx"

    def exporting() -> bool:
        return onnx_home.is_dir() and any(p.name.startswith(".tmp-") for p in onnx_home.iterdir())

    killed = 0
    for delay in (0.0, 0.5, 1.5):
        proc = subprocess.Popen(
            [*CLI, "export", str(tiny_xlmr_dir), "--int8"], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        killed += kill_when(proc, exporting, delay)
        assert read_manifest(out)["dtype"] == "fp32"  # the earlier export is untouched and loads
        got = Reranker(str(tiny_xlmr_dir), backend=OnnxBackend(out, dtype="fp32")).compute_score(pair)
        assert got == pytest.approx(reference, abs=1e-6)
        with pytest.MonkeyPatch.context() as patch:  # whatever the cache holds is complete or absent
            patch.setenv("CROSSRANK_HOME", str(home))
            for dtype in ("fp32", "int8"):
                folder = cached_export(Path(tiny_xlmr_dir).resolve(), dtype)
                assert folder is None or read_manifest(folder)["dtype"] == dtype
    assert killed >= 1, "every export finished before its kill: kill earlier"
    done = subprocess.run([*CLI, "export", str(tiny_xlmr_dir), "--int8"], env=env, capture_output=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    folder = Path(json.loads(done.stdout)["export"])
    assert read_manifest(folder)["dtype"] == "int8"
    int8 = Reranker(str(tiny_xlmr_dir), backend=OnnxBackend(folder, dtype="int8")).compute_score(pair)
    assert len(int8) == 1
    assert not [p.name for p in onnx_home.iterdir() if p.name.startswith((".tmp-", ".old-"))]
