"""Pipeline search with a (tiny, random) cross-encoder, and `crossrank ask` against a stub
OpenAI-compatible server on 127.0.0.1 that stands in for the LLM."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crossrank.answer import build_messages
from crossrank.cli.main import main
from crossrank.pipeline import Pipeline
from crossrank.retrieval import EmbeddedIndex, IndexConfig
from crossrank.retrieval.sources import chunk_documents


@pytest.fixture()
def index_dir(tmp_path, docs):
    folder = tmp_path / "ix"
    EmbeddedIndex.create(folder, IndexConfig(embedder="hash")).add(chunk_documents(docs))
    return folder


@pytest.fixture(scope="module")
def tiny_reranker(tiny_xlmr_dir):
    from crossrank.reranker import Reranker

    return Reranker(str(tiny_xlmr_dir))


def test_pipeline_reranks_first_stage_candidates(index_dir, tiny_reranker):
    pipeline = Pipeline(index_dir, tiny_reranker, k=6, top_n=3)
    hits = pipeline.search("capital of France")
    assert len(hits) == 3 and [h.rank for h in hits] == [1, 2, 3]
    scores = [h.rerank_score for h in hits]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    assert all(1 <= h.first_stage_rank <= 6 and h.first_stage_method == "hybrid" for h in hits)
    record = hits[0].to_dict()
    assert {"first_stage", "rerank_score", "text", "source", "start", "end"} <= set(record)
    json.dumps(record)  # plain JSON types only
    assert pipeline.last_timings.rerank_ms > 0


def test_pipeline_search_k_is_checked_and_none_keeps_the_default(index_dir):
    from crossrank.errors import InvalidInputError

    pipeline = Pipeline(index_dir, None, k=2, top_n=0, method="dense")  # dense: always k candidates
    assert len(pipeline.search("coffee tea")) == 2 and len(pipeline.search("coffee tea", k=None)) == 2
    assert len(pipeline.search("coffee tea", k=1)) == 1
    for bad in (0, -1):  # 0 took the pipeline's k, as None does
        with pytest.raises(InvalidInputError, match="k must be a positive integer"):
            pipeline.search("coffee", k=bad)


def test_pipeline_without_reranker_keeps_first_stage_order(index_dir):
    hits = Pipeline(index_dir, None, top_n=2, method="bm25").search("长城 军事 防御")
    assert hits[0].chunk.doc_id == "greatwall" and hits[0].rerank_score is None
    assert [h.first_stage_rank for h in hits] == [1, 2][: len(hits)]


def test_pipeline_checks_top_n_and_threshold_with_or_without_a_reranker(index_dir, tiny_reranker):
    """Without a reranker, top_n=-1 silently dropped the last hit and any threshold (even 'banana')
    was ignored."""
    from crossrank.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="top_n must be a non-negative integer"):
        Pipeline(index_dir, None, top_n=-1)
    with pytest.raises(InvalidInputError, match="top_n must be a non-negative integer"):
        Pipeline(index_dir, None, method="dense").search("coffee", top_n=-1)
    for threshold in (0.5, "dynamic", "banana"):
        with pytest.raises(InvalidInputError, match="applies to rerank scores, and there is no reranker"):
            Pipeline(index_dir, None, threshold=threshold)
    with pytest.raises(InvalidInputError, match="threshold must be a number in"):
        Pipeline(index_dir, tiny_reranker, threshold="banana")
    assert len(Pipeline(index_dir, None, top_n=0, method="dense").search("coffee", k=4)) == 4


def test_pipeline_threshold_one_keeps_nothing(index_dir, tiny_reranker):
    assert Pipeline(index_dir, tiny_reranker, threshold=1.0).search("tea") == []


def test_prompt_numbers_passages_and_asks_for_citations(index_dir):
    hits = Pipeline(index_dir, None, top_n=2, method="bm25").search("茶 中国")
    messages = build_messages("茶里有咖啡因吗？", hits)
    assert messages[0]["role"] == "system" and "[n]" in messages[0]["content"]
    user = messages[1]["content"]
    assert user.startswith("Context passages:\n\n[1] 茶 (") and "[2]" in user
    assert user.endswith("Question: 茶里有咖啡因吗？")


def test_ask_without_llm_prints_the_prompt(index_dir, capsys, monkeypatch):
    monkeypatch.delenv("CROSSRANK_LLM_BASE_URL", raising=False)
    assert (
        main(["ask", "--index", str(index_dir), "--rerank", "none", "--top-n", "2", "Where is Paris?"]) == 0
    )
    out = capsys.readouterr().out
    assert "No LLM is configured" in out and "--- user ---" in out and "Paris is the capital" in out


ANSWER = {"choices": [{"message": {"role": "assistant", "content": "Paris is France's capital [1]."}}]}


class _StubLLM(BaseHTTPRequestHandler):
    requests: list = []
    reply: dict = ANSWER

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        data = json.dumps(type(self).reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def stub_llm():
    _StubLLM.requests, _StubLLM.reply = [], ANSWER
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubLLM)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", _StubLLM.requests
    server.shutdown()
    server.server_close()


def test_ask_sends_context_and_prints_answer_with_sources(index_dir, stub_llm, capsys, monkeypatch):
    url, requests = stub_llm
    monkeypatch.setenv("CROSSRANK_LLM_API_KEY", "test-key")
    code = main(
        [
            "ask",
            "--index",
            str(index_dir),
            "--rerank",
            "none",
            "--top-n",
            "2",
            "--llm-base-url",
            url,
            "--llm-model",
            "stub-model",
            "What is the capital of France?",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("Paris is France's capital [1].") and "Sources:\n[1] paris#0" in out
    (request,) = requests
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer test-key"
    assert request["body"]["model"] == "stub-model"
    assert "Paris is the capital" in request["body"]["messages"][1]["content"]


def test_ask_reports_a_reply_without_text(index_dir, stub_llm, capsys):
    """content null (a refusal, a tool call): `ask` died with AttributeError: 'NoneType' ... 'strip'."""
    url, _ = stub_llm
    _StubLLM.reply = {"choices": [{"message": {"role": "assistant", "content": None, "refusal": "I can't"}}]}
    code = main(["ask", "--index", str(index_dir), "--rerank", "none", "--llm-base-url", url, "Paris?"])
    err = capsys.readouterr().err
    assert code == 2 and "sent no text (choices[0].message.content is null; refusal: I can't)" in err


def test_ask_reports_a_slow_llm_with_the_timeout_to_raise(index_dir, capsys):
    """A read timeout said "could not reach the LLM ...; check --llm-base-url" of an endpoint that was
    reached and was only slow."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts the connection, never answers
        url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        argv = ["ask", "--index", str(index_dir), "--rerank", "none", "--llm-base-url", url]
        assert main([*argv, "--llm-timeout", "0.3", "Paris?"]) == 2
    err = capsys.readouterr().err
    assert "did not answer within 0.3 s" in err and "raise --llm-timeout" in err


def test_ask_reports_an_unreachable_llm(index_dir, capsys):
    code = main(
        [
            "ask",
            "--index",
            str(index_dir),
            "--rerank",
            "none",
            "--llm-base-url",
            "http://127.0.0.1:9/v1",
            "q?",
        ]
    )
    assert code == 2 and "could not reach the LLM" in capsys.readouterr().err


def test_search_cli_with_a_reranker_prints_both_scores(index_dir, tiny_xlmr_dir, capsys):
    code = main(
        [
            "search",
            "--index",
            str(index_dir),
            "--rerank",
            str(tiny_xlmr_dir),
            "--k",
            "4",
            "--top-n",
            "2",
            "--threshold",
            "dynamic",
            "--json",
            "长城在哪里",
        ]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert 1 <= len(payload["hits"]) <= 2 and payload["timings_ms"]["rerank"] > 0
    for hit in payload["hits"]:
        assert 0 < hit["rerank_score"] < 1 and 1 <= hit["first_stage"]["rank"] <= 4
    assert main(["search", "--index", str(index_dir), "--rerank", "none", "tea"]) == 0
    assert "rank  first" in capsys.readouterr().out


def test_search_and_ask_check_the_index_and_options_before_loading_the_reranker(tmp_path, index_dir, capsys):
    """A missing index or a bad --threshold was reported only after the reranker had loaded (the first
    time: the model built, converted and gated, minutes); a model that is not there hid the index error."""
    missing = tmp_path / "no-index"
    for command in ("search", "ask"):
        argv = [command, "--index", str(missing), "--rerank", str(tmp_path / "no-model"), "q?"]
        assert main(argv) == 2
        assert "is not a crossrank index" in capsys.readouterr().err
    argv = ["search", "--index", str(index_dir), "--rerank", str(tmp_path / "no-model"), "--threshold", "2"]
    assert main([*argv, "q"]) == 2
    assert "threshold must be a number in [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["-1", "0", "nan", "soon"])
def test_ask_refuses_a_timeout_that_is_not_a_positive_number(index_dir, capsys, bad):
    """--llm-timeout -1 died in the socket layer with 'ValueError: Timeout value out of range'."""
    from crossrank.answer import chat
    from crossrank.errors import InvalidInputError

    argv = ["ask", "--index", str(index_dir), "--rerank", "none", "--llm-base-url", "http://127.0.0.1:9/v1"]
    with pytest.raises(SystemExit):
        main([*argv, "--llm-timeout", bad, "Paris?"])
    assert "--llm-timeout: expected a positive number of seconds" in capsys.readouterr().err
    with pytest.raises(InvalidInputError, match="timeout must be a positive number"):
        chat([], base_url="http://127.0.0.1:9/v1", model="m", timeout=-1)
