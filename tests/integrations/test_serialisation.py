"""What a framework component dumps: a given ``Reranker`` as its model name and every option it was built
with (the backend and dtype as asked for), so the loaded component scores exactly as the original; and
never the API key, which the remote mode still sends. A tiny model (random weights, real tokenizer) and
ArguAna documents, scored with short windows so that windowing and truncation differ."""

from __future__ import annotations

import json

import pytest

from crossrank import Reranker
from crossrank.errors import BackendError

from .conftest import TOLERANCE

KEY = "serialisation-secret"
MAX_LENGTH = 64  # ArguAna arguments are far longer: several windows each


@pytest.fixture(scope="module")
def truncating(tiny_xlmr_dir):
    return Reranker(
        str(tiny_xlmr_dir),
        backend="torch",
        truncate="right",
        max_length=MAX_LENGTH,
        max_document_chars=50_000,
    )


@pytest.fixture(scope="module")
def texts(arguana):
    return [d["text"] for d in arguana[1][:8]]


@pytest.fixture(scope="module")
def tiny_server(tiny_xlmr_dir):
    from server.fakes import live_server

    from crossrank.server import ServerSettings, create_app

    reranker = Reranker(str(tiny_xlmr_dir), backend="torch", dtype="fp32", max_length=MAX_LENGTH)
    settings = ServerSettings(max_length=MAX_LENGTH, max_wait_ms=5, api_key=KEY)
    with live_server(create_app(settings, reranker)) as live:
        yield live, reranker


def ranking(reranker, query, texts):
    return [(r.index, r.score, r.window, r.truncated) for r in reranker.rerank(query, texts)]


def assert_same(got, expected):
    assert [g[0] for g in got] == [e[0] for e in expected]
    for g, e in zip(got, expected, strict=True):
        assert g[1] == pytest.approx(e[1], abs=TOLERANCE) and g[2:] == e[2:]


def assert_same_scores(got, expected):
    """``got``: a component's ``(index, score)`` ranking; ``expected``: :func:`ranking`."""
    assert [i for i, _ in got] == [e[0] for e in expected]
    assert [score for _, score in got] == pytest.approx([e[1] for e in expected], abs=TOLERANCE)


def run_langchain(compressor, query, texts):
    from langchain_core.documents import Document

    documents = [Document(page_content=t, metadata={"i": i}) for i, t in enumerate(texts)]
    return [
        (d.metadata["i"], d.metadata["relevance_score"])
        for d in compressor.compress_documents(documents, query)
    ]


def run_llama_index(rerank, query, texts):
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    nodes = [NodeWithScore(node=TextNode(text=t, id_=str(i))) for i, t in enumerate(texts)]
    return [(int(n.node.node_id), n.score) for n in rerank.postprocess_nodes(nodes, QueryBundle(query))]


RUN = {"langchain": run_langchain, "llama_index": run_llama_index}


def test_config_is_what_was_asked_and_rebuilds_the_reranker(tiny_xlmr_dir, truncating, query, texts):
    config = truncating.config()
    assert config["backend"] == "torch" and config["dtype"] == "auto" and config["device"] is None
    assert config["truncate"] == "right" and config["max_document_chars"] == 50_000
    assert config["max_length"] == MAX_LENGTH and config["query_max_length"] is None
    again = Reranker(truncating.model.name, **config)
    assert again.config() == config
    assert_same(ranking(again, query, texts), ranking(truncating, query, texts))
    # without truncate the scores differ: every window is scored and the best one kept
    windowed = Reranker(str(tiny_xlmr_dir), backend="torch", max_length=MAX_LENGTH)
    scores = [r[1] for r in ranking(truncating, query, texts)]
    assert [r[1] for r in ranking(windowed, query, texts)] != scores
    auto = Reranker(str(tiny_xlmr_dir)).config()  # whatever auto chose here, it chooses again when loaded
    assert (auto["backend"], auto["dtype"]) == ("auto", "auto")


def test_haystack_to_dict_records_every_option(tiny_xlmr_dir, truncating, query, texts):
    from haystack import Document

    from crossrank.integrations.haystack import CrossrankRanker

    ranker = CrossrankRanker(model=truncating, top_k=None)
    data = ranker.to_dict()
    assert data["init_parameters"]["model"] == str(tiny_xlmr_dir)
    options = data["init_parameters"]["reranker_options"]
    assert (options["truncate"], options["max_document_chars"], options["max_length"]) == (
        "right",
        50_000,
        MAX_LENGTH,
    )
    assert (options["backend"], options["dtype"]) == ("torch", "auto")  # as asked (torch chose fp32 here)
    loaded = CrossrankRanker.from_dict(json.loads(json.dumps(data)))
    assert loaded.to_dict() == data
    documents = [Document(id=str(i), content=t) for i, t in enumerate(texts)]
    got = loaded.run(query=query, documents=documents)["documents"]
    expected = ranking(truncating, query, texts)
    assert [int(d.id) for d in got] == [e[0] for e in expected]
    assert [d.meta["crossrank_window"]["truncated"] for d in got] == [e[3] for e in expected]
    assert [d.score for d in got] == pytest.approx([e[1] for e in expected], abs=TOLERANCE)
    auto = CrossrankRanker(model=Reranker(str(tiny_xlmr_dir))).to_dict()["init_parameters"]
    assert (auto["reranker_options"]["backend"], auto["reranker_options"]["dtype"]) == ("auto", "auto")


def test_langchain_dump_is_json_that_rebuilds_the_component(truncating, query, texts):
    from crossrank.integrations.langchain import CrossrankRerank

    compressor = CrossrankRerank(reranker=truncating, top_n=None)
    dumped = json.loads(compressor.model_dump_json())
    assert dumped == compressor.model_dump()
    assert dumped["reranker"] == truncating.model.name and dumped["reranker_options"] == truncating.config()
    loaded = CrossrankRerank(**dumped)
    assert loaded.model_dump() == dumped
    assert_same_scores(run_langchain(loaded, query, texts), ranking(truncating, query, texts))


def test_llama_index_to_json_rebuilds_the_component(truncating, query, texts):
    from crossrank.integrations.llama_index import CrossrankRerank

    rerank = CrossrankRerank(reranker=truncating, top_n=None)
    data = json.loads(rerank.to_json())  # was a TypeError: a Reranker is not JSON serialisable
    assert data["reranker"] == truncating.model.name and data["reranker_options"] == truncating.config()
    loaded = CrossrankRerank.from_json(rerank.to_json())
    assert json.loads(loaded.to_json()) == data
    assert_same_scores(run_llama_index(loaded, query, texts), ranking(truncating, query, texts))


@pytest.mark.parametrize("framework", ["langchain", "llama_index"])
def test_api_key_is_never_dumped_and_still_sent(framework, tiny_server, query, texts):
    import importlib

    live, reranker = tiny_server
    component = importlib.import_module(f"crossrank.integrations.{framework}").CrossrankRerank
    remote = component(url=live.url, api_key=KEY, top_n=None)
    dumps = [repr(remote), repr(remote.model_dump()), remote.model_dump_json()]
    if framework == "llama_index":
        dumps += [remote.to_json(), repr(remote.to_dict())]
    assert all(KEY not in dump for dump in dumps)
    assert "api_key" not in remote.model_dump()
    assert remote.api_key.get_secret_value() == KEY
    assert_same_scores(RUN[framework](remote, query, texts), ranking(reranker, query, texts))
    with pytest.raises(BackendError, match="401"):  # the key is what lets it in
        RUN[framework](component(url=live.url, api_key="wrong"), query, texts)
