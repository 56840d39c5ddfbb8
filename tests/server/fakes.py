"""A deterministic fake backend and a live uvicorn server on a free loopback port."""

from __future__ import annotations

import copy
import socket
import threading
import time
from contextlib import contextmanager

import numpy as np

from crossrank.scoring import ScoringEngine

XLMR_EOS = 2


class FakeBackend:
    """Logits from token overlap: ``5 * |query ∩ passage| / |query| - 2.5`` per row (padding ignored).

    ``delay`` seconds are slept per forward pass; ``fail`` makes every pass raise. ``rows`` records the
    rows of every pass, ``calls`` the number of passes.
    """

    name, dtype, device = "fake", "fp32", "cpu"

    def __init__(self, delay: float = 0.0, fail: bool = False, eos: int = XLMR_EOS):
        self.delay, self.fail, self.eos = delay, fail, eos
        self.rows: list[int] = []
        self.seen: list[tuple[int, ...]] = []
        self.lock = threading.Lock()

    def forward(self, batch) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("fake backend failure with /secret/internal/path")
        out = []
        for ids, mask in zip(batch.input_ids, batch.attention_mask, strict=True):
            row = [int(x) for x, m in zip(ids, mask, strict=True) if m]
            with self.lock:
                self.seen.append(tuple(row))
            out.append(self.score_row(row))
        with self.lock:
            self.rows.append(len(out))
        return np.asarray(out, dtype=np.float32)

    def score_row(self, row: list[int]) -> float:
        body = row[1:-1]
        split = body.index(self.eos) if self.eos in body else len(body)
        query = set(body[:split])
        passage = set(x for x in body[split:] if x != self.eos)
        if not query:
            return -2.5
        return 5.0 * len(query & passage) / len(query) - 2.5


def with_backend(reranker, backend):
    """A shallow copy of ``reranker`` (sharing its tokenizer) whose engine runs ``backend``."""
    clone = copy.copy(reranker)
    engine = reranker.engine
    clone.backend = backend
    clone.engine = ScoringEngine(
        engine.tokenizer, backend, engine.options, engine.batch_size, engine.max_batch_tokens
    )
    return clone


class LiveServer:
    """uvicorn serving ``app`` in a thread on a free 127.0.0.1 port (real sockets)."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout: float = 60.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@contextmanager
def live_server(app):
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()
