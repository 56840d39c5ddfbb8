"""Server test fixtures: a tokenizer-backed Reranker with a fake backend, and live servers."""

from __future__ import annotations

import httpx
import pytest

from .fakes import FakeBackend, live_server, with_backend


@pytest.fixture(scope="session")
def fake_reranker(tiny_xlmr_dir):
    from crossrank import Reranker

    return Reranker(str(tiny_xlmr_dir), backend=FakeBackend(), max_length=128)


@pytest.fixture(scope="session")
def make_server(fake_reranker):
    """``make_server(backend=None, **settings)`` → a context manager yielding a LiveServer."""
    from crossrank.server import ServerSettings, create_app

    def make(backend=None, **settings):
        reranker = fake_reranker if backend is None else with_backend(fake_reranker, backend)
        values = {"max_length": 128, **settings}
        return live_server(create_app(ServerSettings(**values), reranker))

    return make


@pytest.fixture(scope="module")
def server(make_server):
    with make_server() as live:
        yield live


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c
