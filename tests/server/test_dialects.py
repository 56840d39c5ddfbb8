"""Each dialect's request and response shape over real HTTP (fake backend)."""

from __future__ import annotations

import httpx
import pytest

from crossrank.reranker import rank

QUERY = "what is the capital of france"
DOCS = [
    "Berlin is the capital of Germany.",
    "Paris is the capital of France.",
    "The capital of France is a large city.",
    "Bananas are yellow.",
]
TEI_HEADERS = (
    "x-compute-time",
    "x-compute-characters",
    "x-compute-tokens",
    "x-total-time",
    "x-tokenization-time",
    "x-queue-time",
    "x-inference-time",
)


def library_order(fake_reranker, query=QUERY, docs=DOCS):
    scored = fake_reranker.score_pairs([(query, d) for d in docs])
    return [(r.index, r.score, r.logit) for r in rank(scored, docs)]


def test_tei_bare_array_sorted_with_headers(client, fake_reranker):
    response = client.post("/rerank", json={"query": QUERY, "texts": DOCS, "unknown_field": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == len(DOCS)
    assert all(set(item) == {"index", "score"} for item in body)
    expected = library_order(fake_reranker)
    assert [item["index"] for item in body] == [i for i, _, _ in expected]
    assert [item["score"] for item in body] == pytest.approx([s for _, s, _ in expected])
    assert all(0.0 <= item["score"] <= 1.0 for item in body)
    for header in TEI_HEADERS:
        assert response.headers[header].isdigit(), header
    assert int(response.headers["x-compute-tokens"]) > 0


def test_tei_return_text_raw_scores(client, fake_reranker):
    body = client.post(
        "/rerank", json={"query": QUERY, "texts": DOCS, "return_text": True, "raw_scores": True}
    ).json()
    expected = library_order(fake_reranker)
    assert [item["score"] for item in body] == pytest.approx([logit for _, _, logit in expected])
    assert all(item["text"] == DOCS[item["index"]] for item in body)


def test_tei_truncate_and_windows(client):
    long_doc = "filler words about nothing in particular. " * 60 + "Paris is the capital of France."
    texts = [long_doc, "Bananas are yellow."]
    windowed = client.post("/rerank", json={"query": QUERY, "texts": texts, "return_windows": True}).json()
    cut = client.post(
        "/rerank",
        json={
            "query": QUERY,
            "texts": texts,
            "truncate": True,
            "truncation_direction": "Right",
            "return_windows": True,
        },
    ).json()
    win = {item["index"]: item for item in windowed}[0]["window"]
    assert win["count"] > 1 and not win["truncated"]
    assert "Paris" in long_doc[win["start"] : win["end"]]  # the winning window holds the answer
    cut_win = {item["index"]: item for item in cut}[0]
    assert cut_win["window"]["count"] == 1 and cut_win["window"]["truncated"]
    assert cut_win["score"] < {item["index"]: item for item in windowed}[0]["score"]
    left = client.post(
        "/rerank", json={"query": QUERY, "texts": texts, "truncate": True, "truncation_direction": "left"}
    ).json()
    assert {item["index"]: item for item in left}[0]["score"] == pytest.approx(
        {item["index"]: item for item in windowed}[0]["score"]
    )


def test_cohere_v2_shape(client, fake_reranker):
    response = client.post("/v2/rerank", json={"model": "x", "query": QUERY, "documents": DOCS, "top_n": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "model", "usage", "results", "meta"}
    assert body["meta"]["api_version"] == {"version": "2", "is_experimental": False}
    assert body["meta"]["billed_units"] == {"search_units": 1}
    assert body["meta"]["tokens"]["input_tokens"] > 0 and body["meta"]["tokens"]["output_tokens"] == 0
    assert body["usage"]["total_tokens"] == body["meta"]["tokens"]["input_tokens"]
    assert len(body["results"]) == 2
    assert all(set(r) == {"index", "relevance_score"} for r in body["results"])
    assert [r["index"] for r in body["results"]] == [i for i, _, _ in library_order(fake_reranker)][:2]


def test_cohere_v2_legacy_fields_and_objects(client):
    docs = [{"text": d, "id": f"doc-{i}"} for i, d in enumerate(DOCS)]
    body = client.post(
        "/v2/rerank",
        json={"query": QUERY, "documents": docs, "return_documents": True, "max_chunks_per_doc": 2},
    ).json()
    for r in body["results"]:
        assert r["document"] == {"text": DOCS[r["index"]], "id": f"doc-{r['index']}"}


def test_cohere_v1_defaults_and_rank_fields(client):
    body = client.post("/v1/rerank", json={"query": QUERY, "documents": DOCS}).json()
    assert body["meta"]["api_version"]["version"] == "1"
    # Jina's default (documents echoed as {"text"}), which Cohere v1 clients accept as well
    assert all(r["document"] == {"text": DOCS[r["index"]]} for r in body["results"])
    off = {"query": QUERY, "documents": DOCS, "return_documents": False}
    bare = client.post("/v1/rerank", json=off).json()
    assert all("document" not in r for r in bare["results"])
    docs = [
        {"title": "France", "body": "Paris is the capital of France."},
        {"title": "Fruit", "body": "Bananas."},
    ]
    ranked = client.post(
        "/v1/rerank",
        json={"query": QUERY, "documents": docs, "rank_fields": ["title", "body"], "return_documents": True},
    ).json()
    assert ranked["results"][0]["index"] == 0
    assert ranked["results"][0]["document"]["text"] == "title: France\nbody: Paris is the capital of France."
    assert ranked["results"][0]["document"]["title"] == "France"


def test_jina_on_v1_with_explicit_return_documents(client):
    body = client.post(
        "/v1/rerank",
        json={
            "model": "jina-reranker-v2",
            "query": QUERY,
            "documents": DOCS,
            "top_n": 3,
            "return_documents": True,
        },
    ).json()
    assert body["usage"]["total_tokens"] > 0 and body["model"]
    assert len(body["results"]) == 3
    assert all(r["document"] == {"text": DOCS[r["index"]]} for r in body["results"])


def test_rerank_with_documents_is_jina_vllm(client):
    body = client.post(
        "/rerank",
        json={"query": QUERY, "documents": DOCS, "top_n": 0, "truncate_prompt_tokens": 64, "priority": 3},
    ).json()
    assert len(body["results"]) == len(DOCS)  # top_n 0 = all
    assert all(r["document"]["text"] == DOCS[r["index"]] for r in body["results"])  # vLLM/Jina default
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    raw = client.post("/rerank", json={"query": QUERY, "documents": DOCS, "use_activation": False}).json()
    assert any(r["relevance_score"] < 0 for r in raw["results"])


def test_threshold_extension_in_every_dialect(client):
    docs = DOCS
    tei = client.post("/rerank", json={"query": QUERY, "texts": docs, "threshold": 0.5}).json()
    assert tei and all(item["score"] >= 0.5 for item in tei) and len(tei) < len(docs)
    v2 = client.post("/v2/rerank", json={"query": QUERY, "documents": docs, "threshold": "dynamic"}).json()
    assert 0.4 <= v2["threshold"] <= 0.65
    assert all(r["relevance_score"] >= v2["threshold"] for r in v2["results"])
    bad = client.post("/v2/rerank", json={"query": QUERY, "documents": docs, "threshold": 2})
    assert bad.status_code == 422 and "threshold" in bad.json()["message"]


def test_max_tokens_per_doc_windows_long_documents(client):
    long_doc = "filler words about nothing in particular. " * 40 + "Paris is the capital of France."
    body = client.post(
        "/v2/rerank",
        json={"query": QUERY, "documents": [long_doc], "max_tokens_per_doc": 16, "return_windows": True},
    ).json()
    window = body["results"][0]["window"]
    assert window["count"] > 10
    assert "Paris" in long_doc[window["start"] : window["end"]]


def test_ties_break_by_index(client):
    body = client.post(
        "/rerank", json={"query": "zebra", "texts": ["same text", "same text", "same text"]}
    ).json()
    assert [item["index"] for item in body] == [0, 1, 2]


def test_usage_counts_every_window_the_model_reads(make_server):
    """Token usage (TEI's x-compute-tokens, Cohere's input_tokens, vLLM's prompt_tokens) is what the
    model read: a windowed document counts each window with its own copy of the query."""
    from .fakes import FakeBackend

    long_doc = "filler words about nothing in particular. " * 60 + "Paris is the capital of France."
    texts = [long_doc, "Bananas are yellow."]
    backend = FakeBackend()
    with make_server(backend=backend) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        tei = http.post("/rerank", json={"query": QUERY, "texts": texts})
        read_by_tei = sum(len(row) for row in backend.seen)
        backend.seen.clear()
        v2 = http.post("/v2/rerank", json={"query": QUERY, "documents": texts}).json()
        read_by_v2 = sum(len(row) for row in backend.seen)
    assert len(backend.rows) >= 1 and read_by_tei == read_by_v2
    assert read_by_tei > 2 * 128  # the long document really was split into windows
    assert int(tei.headers["x-compute-tokens"]) == read_by_tei
    assert v2["meta"]["tokens"]["input_tokens"] == read_by_tei
