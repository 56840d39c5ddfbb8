"""Haystack: InMemoryBM25Retriever → CrossrankRanker pipelines (in process and through ``crossrank serve``,
sync and async, serialised and loaded back), and cohere-haystack's CohereRanker pointed at the server."""

from __future__ import annotations

import asyncio
import copy

import pytest

from crossrank.errors import InvalidInputError

from .conftest import API_KEY, assert_same_ranking, library_ranking

pytestmark = pytest.mark.slow
CANDIDATES, TOP_K = 6, 3


@pytest.fixture(scope="module")
def store(arguana):
    from haystack import Document
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    store = InMemoryDocumentStore()
    store.write_documents(
        [Document(id=d["id"], content=d["text"], meta={"title": d["title"]}) for d in arguana[1]]
    )
    return store


def pipeline(store, ranker):
    from haystack import Pipeline
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever

    pipe = Pipeline()
    pipe.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=CANDIDATES))
    pipe.add_component("ranker", ranker)
    pipe.connect("retriever.documents", "ranker.documents")
    return pipe


def inputs(query):
    return {"retriever": {"query": query}, "ranker": {"query": query}}


def expected_for(store, embedded, query):
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever

    candidates = InMemoryBM25Retriever(document_store=store, top_k=CANDIDATES).run(query=query)["documents"]
    return candidates, library_ranking(embedded, query, [d.content for d in candidates])


def ranking_of(documents, candidates):
    ids = [d.id for d in candidates]
    return [(ids.index(d.id), d.score) for d in documents]


@pytest.fixture(params=["in-process", "remote"])  # a Haystack component joins one pipeline only
def ranker(request, embedded, server):
    from haystack.utils import Secret

    from crossrank.integrations.haystack import CrossrankRanker

    if request.param == "remote":
        return CrossrankRanker(url=server.url, api_key=Secret.from_token(API_KEY), top_k=TOP_K)
    return CrossrankRanker(embedded, top_k=TOP_K)


def test_pipeline_ranks_like_the_library(ranker, store, embedded, query):
    candidates, expected = expected_for(store, embedded, query)
    before = copy.deepcopy(candidates)
    documents = pipeline(store, ranker).run(inputs(query))["ranker"]["documents"]
    assert len(documents) == TOP_K
    assert_same_ranking(ranking_of(documents, candidates), expected)
    for d in documents:
        window = d.meta["crossrank_window"]
        assert 0 <= window["start"] < window["end"] <= len(d.content) and d.meta["title"] is not None
    # the store's documents keep their BM25-free state: the ranker returned copies
    assert [
        store.filter_documents({"field": "id", "operator": "==", "value": d.id})[0].score for d in documents
    ] == [None] * TOP_K
    assert candidates == before


def test_async_pipeline(ranker, store, embedded, query):
    candidates, expected = expected_for(store, embedded, query)
    result = asyncio.run(pipeline(store, ranker).run_async(inputs(query)))  # Haystack 3: Pipeline.run_async
    assert_same_ranking(ranking_of(result["ranker"]["documents"], candidates), expected)


def test_serialised_pipeline_round_trips(ranker, store, embedded, query, monkeypatch):
    from haystack import Pipeline

    from crossrank.integrations.haystack import CrossrankRanker

    if ranker.url is not None:  # a token Secret does not serialise; deployments name a variable
        monkeypatch.setenv("CROSSRANK_API_KEY", API_KEY)
        ranker = CrossrankRanker(url=ranker.url, top_k=TOP_K)
    data = ranker.to_dict()
    assert data["init_parameters"]["model"] == "embedded" and API_KEY not in repr(data)
    again = CrossrankRanker.from_dict(copy.deepcopy(data))
    assert again.to_dict() == data
    candidates, expected = expected_for(store, embedded, query)
    yaml = pipeline(store, ranker).dumps()
    # Haystack 3 loads classes only from trusted modules: the caller names ours
    loaded = Pipeline.loads(yaml, allowed_modules=["crossrank.integrations.haystack"])
    documents = loaded.run(inputs(query))["ranker"]["documents"]
    assert_same_ranking(ranking_of(documents, candidates), expected)


def test_run_time_top_k_threshold_and_bad_input(ranker, query, store):
    from haystack import Document

    assert ranker.run(query=query, documents=[]) == {"documents": []}
    some = store.filter_documents()[:5]
    assert len(ranker.run(query=query, documents=some, top_k=1)["documents"]) == 1
    everything = ranker.run(query=query, documents=some, top_k=0)["documents"]
    assert len(everything) == 5
    strict = ranker.run(query=query, documents=some, top_k=0, threshold=0.999)["documents"]
    assert all(d.score >= 0.999 for d in strict)
    with pytest.raises(InvalidInputError, match=r"documents\[1\] has no text"):
        ranker.run(query=query, documents=[some[0], Document(content=None)])


def test_cohere_haystack_ranker_against_the_server(server, store, embedded, query):
    """cohere-haystack's CohereRanker needs ``api_base_url`` (the server's root) and a key."""
    from haystack.utils import Secret
    from haystack_integrations.components.rankers.cohere import CohereRanker

    candidates, expected = expected_for(store, embedded, query)
    cohere = CohereRanker(
        model="crossrank", top_k=TOP_K, api_key=Secret.from_token(API_KEY), api_base_url=server.url
    )
    documents = pipeline(store, cohere).run(inputs(query))["ranker"]["documents"]
    assert_same_ranking(ranking_of(documents, candidates), expected)
