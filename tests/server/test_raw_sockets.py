"""Misbehaving clients on raw sockets against a real uvicorn server on loopback: a body dripped byte by
byte, a body shorter than its Content-Length, oversized headers, clients that leave mid-request. None
may hang the server, block other clients or leave work in the batcher's queue; afterwards the server
still answers 200."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from .fakes import FakeBackend

BODY = json.dumps({"query": "capital of france", "documents": ["paris is the capital of france", "berlin"]})


@pytest.fixture(scope="module")
def live(make_server):
    with make_server(FakeBackend(delay=0.2), max_wait_ms=1) as server:
        yield server


def connect(live, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def head(path: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def read_status(sock: socket.socket) -> int | None:
    """The status code of the response on ``sock``, or None when the server closed without one."""
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    return int(data.split(b" ", 2)[1])


def batcher(live):
    return live.server.config.app.state.server.batcher


def assert_healthy_and_idle(live) -> None:
    """No work left queued or running, and the server answers a normal request."""
    deadline = time.monotonic() + 10
    while batcher(live).waiting and time.monotonic() < deadline:
        time.sleep(0.05)
    assert batcher(live).waiting == 0, "work was left in the batcher"
    with httpx.Client(base_url=live.url, timeout=30) as client:
        assert client.get("/ready").status_code == 200
        response = client.post("/v2/rerank", content=BODY, headers={"content-type": "application/json"})
        assert response.status_code == 200 and len(response.json()["results"]) == 2
        metrics = client.get("/metrics").text
    assert "crossrank_queue_depth 0.0" in metrics


@pytest.mark.timeout(60)
def test_a_dripped_body_blocks_no_one_and_is_answered(live):
    payload = BODY.encode()
    with connect(live) as slow:
        slow.sendall(head("/v2/rerank", len(payload)))
        started = time.monotonic()
        for i, byte in enumerate(payload):
            slow.sendall(bytes([byte]))
            if i % 20 == 0:
                time.sleep(0.05)
            if i == len(payload) // 2:  # others are served while this body is still dripping in
                with httpx.Client(base_url=live.url, timeout=10) as client:
                    t0 = time.monotonic()
                    assert client.post("/v2/rerank", content=BODY, headers={
                        "content-type": "application/json"}).status_code == 200
                    assert time.monotonic() - t0 < 5
        assert time.monotonic() - started > 0.2
        assert read_status(slow) == 200
    assert_healthy_and_idle(live)


@pytest.mark.timeout(60)
def test_a_truncated_body_then_close_leaves_nothing_behind(live):
    payload = BODY.encode()
    for cut in (0, 1, len(payload) // 2, len(payload) - 1):
        with connect(live) as sock:
            sock.sendall(head("/rerank", len(payload) + 100) + payload[:cut])
            sock.shutdown(socket.SHUT_WR)  # the client gives up: the rest never comes
            sock.settimeout(10)
            status = read_status(sock)
        assert status in (None, 400), status
    assert_healthy_and_idle(live)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("size", [40_000, 400_000, 4_000_000])
def test_oversized_headers_get_a_clean_refusal(live, size):
    """Headers over max_header_bytes (32 KiB) are refused (431, or 400 from the HTTP parser) or the
    connection is closed, quickly; never a hang, never served."""
    with connect(live) as sock:
        started = time.monotonic()
        try:
            sock.sendall(head("/v2/rerank", len(BODY), extra=f"X-Big: {'a' * size}\r\n") + BODY.encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection while we were still sending: a clean refusal
        status = read_status(sock)
        assert status in (None, 400, 431), status
        assert time.monotonic() - started < 10
    assert_healthy_and_idle(live)


@pytest.mark.timeout(60)
def test_clients_that_leave_mid_request_leak_no_work(live):
    """Requests queued behind a slow batch whose clients hang up are dropped before compute."""
    payload = BODY.encode()
    socks = [connect(live) for _ in range(6)]
    try:
        for sock in socks:
            sock.sendall(head("/v2/rerank", len(payload)) + payload)
        time.sleep(0.05)  # the first is being scored (0.2 s), the others wait in the queue
    finally:
        for sock in socks:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()  # RST: gone without reading the answer
    assert_healthy_and_idle(live)


@pytest.mark.timeout(60)
def test_many_idle_connections_do_not_block_requests(live):
    """Connections that open and send nothing (or half a request line) do not starve others."""
    idle = [connect(live) for _ in range(50)]
    for i, sock in enumerate(idle):
        if i % 2:
            sock.sendall(b"POST /v2/rer")
    try:
        results: list[int] = []

        def call() -> None:
            with httpx.Client(base_url=live.url, timeout=20) as client:
                results.append(client.get("/health").status_code)

        threads = [threading.Thread(target=call) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200] * 5
    finally:
        for sock in idle:
            sock.close()
    assert_healthy_and_idle(live)
