"""Fixtures for the framework tests: the embedded model, a real ``crossrank serve`` on loopback (with an API
key, as a deployment would have) and a small real corpus (ArguAna, read in place)."""

from __future__ import annotations

import gzip
import json

import pytest

API_KEY = "integration-secret"
TOLERANCE = 1e-4  # the server batches differently: fp32 rounding only
CORPUS_DOCS = 40


@pytest.fixture(scope="session")
def embedded():
    from crossrank import Reranker

    # fp32 torch, pinned, as the server tests do: remote and in-process scores then agree to fp32 noise
    return Reranker("embedded", backend="torch", dtype="fp32", max_length=256)


@pytest.fixture(scope="session")
def server(embedded):
    from server.fakes import live_server

    from crossrank.server import ServerSettings, create_app

    settings = ServerSettings(max_length=256, max_wait_ms=5, api_key=API_KEY)
    with live_server(create_app(settings, embedded)) as live:
        yield live


@pytest.fixture(scope="session")
def arguana(shared_data):
    """``(queries, docs)``: the first CORPUS_DOCS ArguAna documents (``{"id", "title", "text"}``) and two
    queries whose counter-argument is among them (the query's own text is left out of the corpus)."""
    folder = shared_data / "arguana"
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        docs = [json.loads(line) for _, line in zip(range(CORPUS_DOCS + 10), handle, strict=False)]
    ids = {d["_id"] for d in docs}
    relevant = {}
    for line in (folder / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        query_id, doc_id, _ = line.split("\t")
        if doc_id in ids and query_id in ids:
            relevant[query_id] = doc_id
    with gzip.open(folder / "queries.jsonl.gz", "rt", encoding="utf-8") as handle:
        queries = [json.loads(line) for line in handle]
    chosen = [q for q in queries if q["_id"] in relevant][:2]
    asked = {q["_id"] for q in chosen}
    corpus = [
        {"id": d["_id"], "title": d.get("title", ""), "text": d["text"]}
        for d in docs
        if d["_id"] not in asked
    ][:CORPUS_DOCS]
    # a short question-like query (the first line of the argument) keeps the tests quick
    return [{"id": q["_id"], "text": q["text"][:300], "relevant": relevant[q["_id"]]} for q in chosen], corpus


@pytest.fixture(scope="session")
def query(arguana):
    return arguana[0][0]["text"]


def library_ranking(reranker, query: str, texts: list[str]) -> list[tuple[int, float]]:
    """The library's (index, score) ranking: what every component and client must reproduce."""
    return [(r.index, r.score) for r in reranker.rerank(query, texts, return_documents=False)]


def assert_same_ranking(got: list[tuple[int, float]], expected: list[tuple[int, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in expected[: len(got)]]
    for (_, a), (_, b) in zip(got, expected, strict=False):
        assert a == pytest.approx(b, abs=TOLERANCE)
