"""LangChain: CrossrankRerank in a ContextualCompressionRetriever over BM25 (in process and through
``crossrank serve``), and LangChain's own CohereRerank pointed at the server."""

from __future__ import annotations

import asyncio
import copy

import pytest

from crossrank.errors import InvalidInputError
from crossrank.thresholds import dynamic_threshold

from .conftest import API_KEY, assert_same_ranking, library_ranking

pytestmark = pytest.mark.slow
CANDIDATES, TOP_N = 6, 3


@pytest.fixture(scope="module")
def lc_docs(arguana):
    from langchain_core.documents import Document

    return [
        Document(page_content=d["text"], metadata={"id": d["id"], "title": d["title"]}) for d in arguana[1]
    ]


@pytest.fixture(scope="module")
def bm25(lc_docs):
    from langchain_community.retrievers import BM25Retriever  # needs rank-bm25

    return BM25Retriever.from_documents(lc_docs, k=CANDIDATES)


def pipeline(compressor, bm25):
    from langchain_classic.retrievers import ContextualCompressionRetriever

    return ContextualCompressionRetriever(base_compressor=compressor, base_retriever=bm25)


def expected_for(embedded, bm25, query):
    candidates = bm25.invoke(query)
    return candidates, library_ranking(embedded, query, [d.page_content for d in candidates])


def ranking_of(results, candidates):
    ids = [d.metadata["id"] for d in candidates]
    return [(ids.index(d.metadata["id"]), d.metadata["relevance_score"]) for d in results]


@pytest.fixture(scope="module", params=["in-process", "remote"])
def compressor(request, embedded, server):
    from crossrank.integrations.langchain import CrossrankRerank

    if request.param == "remote":
        return CrossrankRerank(url=server.url, api_key=API_KEY, top_n=TOP_N)
    return CrossrankRerank(reranker=embedded, top_n=TOP_N)


def test_retriever_reranks_like_the_library(compressor, bm25, embedded, query, lc_docs):
    before = copy.deepcopy(lc_docs)
    candidates, expected = expected_for(embedded, bm25, query)
    results = pipeline(compressor, bm25).invoke(query)
    assert len(results) == TOP_N
    assert_same_ranking(ranking_of(results, candidates), expected)
    by_id = {d.metadata["id"]: d for d in lc_docs}
    for doc in results:
        original = by_id[doc.metadata["id"]]
        assert (
            doc.page_content == original.page_content and doc.metadata["title"] == original.metadata["title"]
        )
        window = doc.metadata["crossrank_window"]
        assert 0 <= window["start"] < window["end"] <= len(doc.page_content)
        assert window["count"] >= 1
    assert any(d.metadata["crossrank_window"]["count"] > 1 for d in results)  # long ArguAna docs: windowed
    assert lc_docs == before  # the caller's documents are untouched


def test_async_retriever(compressor, bm25, embedded, query):
    candidates, expected = expected_for(embedded, bm25, query)
    results = asyncio.run(pipeline(compressor, bm25).ainvoke(query))
    assert_same_ranking(ranking_of(results, candidates), expected)


def test_threshold_and_bad_input(compressor, embedded, query, lc_docs):
    from langchain_core.documents import Document

    from crossrank.integrations.langchain import CrossrankRerank

    assert compressor.compress_documents([], query) == []
    assert asyncio.run(compressor.acompress_documents([], query)) == []
    with pytest.raises(InvalidInputError, match=r"documents\[1\] has no text"):
        compressor.compress_documents([lc_docs[0], Document(page_content="  ")], query)
    dynamic = compressor.model_copy(update={"threshold": "dynamic", "top_n": None})
    kept = dynamic.compress_documents(lc_docs[:6], query)
    everything = compressor.model_copy(update={"top_n": None}).compress_documents(lc_docs[:6], query)
    bar = dynamic_threshold([d.metadata["relevance_score"] for d in everything])
    assert len(everything) == 6
    want = [d.metadata["id"] for d in everything if d.metadata["relevance_score"] >= bar]
    assert [d.metadata["id"] for d in kept] == want
    with pytest.raises(ValueError, match="threshold must be a number in"):  # pydantic wraps ours
        CrossrankRerank(reranker=embedded, threshold=2.0)


def test_langchain_cohere_rerank_against_the_server(server, bm25, embedded, query):
    """LangChain's CohereRerank (langchain-cohere) needs only ``base_url`` and a key."""
    from langchain_cohere import CohereRerank

    candidates, expected = expected_for(embedded, bm25, query)
    cohere = CohereRerank(base_url=server.url, cohere_api_key=API_KEY, model="crossrank", top_n=TOP_N)
    results = pipeline(cohere, bm25).invoke(query)
    assert_same_ranking(ranking_of(results, candidates), expected)


def test_remote_errors_are_clear(server, query, lc_docs):
    from crossrank.errors import BackendError
    from crossrank.integrations.langchain import CrossrankRerank

    with pytest.raises(BackendError, match="401.*api_key"):
        CrossrankRerank(url=server.url, api_key="wrong").compress_documents(lc_docs[:2], query)
    with pytest.raises(BackendError, match="could not reach"):
        CrossrankRerank(url="http://127.0.0.1:9", timeout=2).compress_documents(lc_docs[:2], query)
