"""The official cohere Python SDK, pointed at our server, reranks (v2 and legacy v1 clients)."""

from __future__ import annotations

import pytest

KEY = "sdk-test-key-0123456789"
QUERY = "what is the capital of france"
DOCS = ["Berlin is in Germany.", "Paris is the capital of France.", "Bananas are yellow."]


@pytest.fixture(scope="module")
def sdk_server(make_server):
    with make_server(api_key=KEY) as live:
        yield live


def test_cohere_client_v2(sdk_server):
    import cohere

    client = cohere.ClientV2(api_key=KEY, base_url=sdk_server.url)
    response = client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=2)
    assert [r.index for r in response.results][0] == 1
    assert len(response.results) == 2 and all(0 <= r.relevance_score <= 1 for r in response.results)
    assert response.id and response.meta.api_version.version == "2"
    assert response.meta.tokens.input_tokens > 0


def test_cohere_client_v2_max_tokens_per_doc(sdk_server):
    import cohere

    client = cohere.ClientV2(api_key=KEY, base_url=sdk_server.url)
    long_doc = "nothing relevant here at all. " * 80 + "Paris is the capital of France."
    response = client.rerank(model="m", query=QUERY, documents=[DOCS[0], long_doc], max_tokens_per_doc=32)
    assert response.results[0].index == 1


def test_cohere_client_v1_with_documents(sdk_server):
    import cohere

    client = cohere.Client(api_key=KEY, base_url=sdk_server.url)
    response = client.rerank(model="rerank-english-v3.0", query=QUERY, documents=DOCS, return_documents=True)
    assert response.results[0].index == 1
    assert response.results[0].document.text == DOCS[1]
    objects = client.rerank(
        model="m",
        query=QUERY,
        documents=[{"title": "France", "text": DOCS[1]}, {"title": "Fruit", "text": DOCS[2]}],
        rank_fields=["title", "text"],
        top_n=1,
    )
    assert [r.index for r in objects.results] == [0]


def test_cohere_client_wrong_key_raises(sdk_server):
    import cohere
    from cohere.core.api_error import ApiError

    client = cohere.ClientV2(api_key="wrong-key-but-long", base_url=sdk_server.url)
    with pytest.raises(ApiError) as info:
        client.rerank(model="m", query=QUERY, documents=DOCS)
    assert info.value.status_code == 401
