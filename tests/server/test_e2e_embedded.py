"""End to end with the real embedded model: every dialect over HTTP, and concurrent clients getting the
library's scores (cross-request batching changes nothing beyond fp32 noise)."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from crossrank.reranker import rank

pytestmark = pytest.mark.slow

QUERY = "what is the capital of france?"
DOCS = [
    "Berlin is the capital and largest city of Germany.",
    "Paris is the capital and most populous city of France.",
    "Bananas are an elongated, edible fruit.",
    "France is a country in Western Europe; its capital city is Paris.",
]
TOLERANCE = 1e-4  # padding differs between batch compositions: fp32 rounding only


@pytest.fixture(scope="module")
def embedded():
    from crossrank import Reranker

    # fp32 torch, pinned: backend="auto" may pick bf16 on a machine where its gate passed, and bf16 logits
    # move with batch composition (GEMM blocking), which is not what this test is about.
    return Reranker("embedded", backend="torch", dtype="fp32", max_length=256)


@pytest.fixture(scope="module")
def real_server(embedded):
    from crossrank.server import ServerSettings, create_app

    from .fakes import live_server

    with live_server(create_app(ServerSettings(max_length=256, max_wait_ms=20), embedded)) as live:
        yield live


def test_every_dialect_matches_the_library(real_server, embedded):
    expected = rank(embedded.score_pairs([(QUERY, d) for d in DOCS]), DOCS)
    order = [r.index for r in expected]
    scores = {r.index: r.score for r in expected}
    assert order[0] in (1, 3)
    with httpx.Client(base_url=real_server.url, timeout=120) as c:
        tei = c.post("/rerank", json={"query": QUERY, "texts": DOCS})
        assert tei.status_code == 200 and "x-inference-time" in tei.headers
        assert [x["index"] for x in tei.json()] == order
        for route in ("/rerank", "/v1/rerank", "/v2/rerank"):
            body = c.post(route, json={"model": "m", "query": QUERY, "documents": DOCS, "top_n": 4}).json()
            assert [r["index"] for r in body["results"]] == order
            for r in body["results"]:
                assert r["relevance_score"] == pytest.approx(scores[r["index"]], abs=TOLERANCE)
        info = c.get("/info").json()
        assert info["model"] == "embedded" and info["backend"] == embedded.backend.name


def first_texts(path, count: int, chars: int) -> list[str]:
    import gzip
    import json

    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["text"][:chars] for _, line in zip(range(count), handle, strict=False)]


def test_concurrent_clients_get_library_scores(real_server, embedded, shared_data):
    queries = first_texts(shared_data / "arguana" / "queries.jsonl.gz", 6, 300)
    passages = first_texts(shared_data / "arguana" / "corpus.jsonl.gz", 30, 400)
    requests_ = [(q, passages[i * 5 : i * 5 + 5]) for i, q in enumerate(queries)]

    def call(item):
        query, docs = item
        with httpx.Client(base_url=real_server.url, timeout=300) as c:
            return c.post(
                "/v2/rerank", json={"query": query, "documents": docs, "use_activation": False}
            ).json()

    with concurrent.futures.ThreadPoolExecutor(len(requests_)) as pool:
        answers = list(pool.map(call, requests_))
    for (query, docs), body in zip(requests_, answers, strict=True):
        expected = [s.logit for s in embedded.score_pairs([(query, d) for d in docs])]
        got = {r["index"]: r["relevance_score"] for r in body["results"]}
        assert got == {i: pytest.approx(v, abs=TOLERANCE) for i, v in enumerate(expected)}


def test_cohere_sdk_with_the_real_model(real_server):
    import cohere

    client = cohere.ClientV2(api_key="unused-without-auth", base_url=real_server.url)
    response = client.rerank(model="embedded", query=QUERY, documents=DOCS, top_n=2)
    assert response.results[0].index in (1, 3)
