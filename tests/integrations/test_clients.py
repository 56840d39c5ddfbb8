"""The ``rerankers`` package's API ranker against ``crossrank serve``: its Cohere, Jina and TEI providers,
each pointed at the matching route with ``url=`` (the full endpoint URL)."""

from __future__ import annotations

import pytest

from .conftest import API_KEY, assert_same_ranking, library_ranking

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("provider", "route"),
    [("cohere", "/v1/rerank"), ("jina", "/v1/rerank"), ("text-embeddings-inference", "/rerank")],
)
def test_rerankers_api_ranker(provider, route, server, embedded, arguana):
    from rerankers import Reranker as RerankersReranker

    queries, corpus = arguana
    query, texts = queries[1]["text"], [d["text"] for d in corpus[:6]]
    ranker = RerankersReranker(provider, api_key=API_KEY, url=server.url + route, verbose=0)
    ranked = ranker.rank(query=query, docs=texts)
    got = [(r.document.doc_id, r.score) for r in ranked.results]
    assert_same_ranking(got, library_ranking(embedded, query, texts))
    assert [r.document.text for r in ranked.results] == [texts[i] for i, _ in got]
