"""Helpers for tests that start a real server on loopback: a free port, waiting for ``/ready``."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, timeout: float = 300, proc: subprocess.Popen | None = None) -> None:
    """Until ``url``/ready answers 200. Fails after ``timeout``, or as soon as the server process ``proc``
    exits (with the end of its stderr when that is piped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            stderr = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
            raise AssertionError(f"the server exited with {proc.returncode}: {stderr}")
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    if proc is not None:
        proc.kill()
    raise AssertionError(f"{url} did not become ready in {timeout:g}s")
