"""The evaluation harness on small slices of the real data (CI speed), the eval CLI (--json, --plot),
and in ``slow`` the full sets next to the published reference points."""

from __future__ import annotations

import json

import pytest

from crossrank.cli.main import main
from crossrank.eval.datasets import load_dataset
from crossrank.eval.harness import run_eval
from crossrank.eval.metrics import METRICS
from crossrank.retrieval.dense import HashEmbedder


@pytest.fixture(scope="module")
def tiny_reranker(tiny_xlmr_dir):
    from crossrank.reranker import Reranker

    return Reranker(str(tiny_xlmr_dir))


def _check(block, n_metrics=METRICS):
    assert set(n_metrics) <= set(block) and block["latency_ms"] >= 0
    assert all(0.0 <= block[m] <= 1.0 for m in n_metrics)


def test_wikiqa_slice_first_stage_and_rerank(shared_data, tiny_reranker):
    evalset = load_dataset(shared_data / "wikiqa", "wikiqa").limit(8)
    result = run_eval(evalset, method="bm25", k=100, reranker=tiny_reranker)
    assert result["n_queries"] == 8
    _check(result["first_stage"])
    _check(result["reranked"])
    # every candidate is in both lists, so recall is complete and reranking only reorders
    assert result["first_stage"]["recall@100"] == result["reranked"]["recall@100"] == 1.0


def test_cmrc_chinese_passage_ranking_slice(shared_data):
    evalset = load_dataset(shared_data / "cmrc2018", "cmrc").limit(30)
    result = run_eval(evalset, method="bm25", k=100)
    assert result["reranked"] is None
    assert result["first_stage"]["mrr@10"] > 0.6  # jieba BM25 finds the question's own paragraph


def test_cmrc_sentence_selection_slice_hybrid(shared_data):
    evalset = load_dataset(shared_data / "cmrc2018", "cmrc-sent").limit(20)
    result = run_eval(evalset, method="hybrid", k=100, embedder=HashEmbedder())
    _check(result["first_stage"])
    assert result["config"]["embedder"] == "hash"


BLANK_CMRC = ("TRIAL_776_QUERY_4", "TRIAL_20_QUERY_0")  # the trial file's two blank questions


@pytest.mark.parametrize("first_stage", ["bm25", "dense", "hybrid"])
def test_eval_cli_cmrc_skips_blank_questions(shared_data, tiny_xlmr_dir, capsys, first_stage):
    """The 748th question of the trial file is blank: dense and hybrid handed it to the reranker (which
    refused the empty query), bm25 counted it as a miss in the means."""
    args = ["eval", "--dataset", str(shared_data / "cmrc2018"), "--format", "cmrc"]
    args += ["--first-stage", first_stage, "--embedder", "hash", "--k", "1", "--limit", "810"]
    assert main([*args, "--rerank", str(tiny_xlmr_dir), "--json"]) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert result["n_queries"] == 810 and "2 blank questions skipped" in result["config"]["notes"]
    evalset = load_dataset(shared_data / "cmrc2018", "cmrc")
    assert not set(BLANK_CMRC) & set(evalset.queries) and all(t.strip() for t in evalset.queries.values())


def _no_nan(constant):
    raise AssertionError(f"{constant} is not JSON")


def test_eval_cli_undefined_cutoff_metrics_are_null_not_nan(shared_data, tiny_xlmr_dir, capsys):
    """The hash embedder's top 1 for the first question is not its paragraph: no reranked list holds a
    relevant candidate, so the kept-set means are over nothing."""
    args = ["eval", "--dataset", str(shared_data / "cmrc2018"), "--format", "cmrc", "--first-stage", "dense"]
    args += ["--embedder", "hash", "--limit", "1", "--k", "1", "--rerank", str(tiny_xlmr_dir)]
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out, parse_constant=_no_nan)  # NaN, Infinity: invalid JSON
    assert result["first_stage"]["recall@100"] == 0.0
    for values in result["scores"]["cutoffs"].values():
        assert values["queries"] == 0
        assert [values[m] for m in ("precision", "recall", "f1", "keeps_relevant", "mean_kept")] == [None] * 5
    assert result["scores"]["calibration"]["pairs"] == 1
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "nan" not in text.lower() and "n/a: no reranked list holds a relevant candidate" in text
    assert text.split("top_3", 1)[1].split()[:5] == ["n/a"] * 5


def test_beir_self_hits_are_dropped(shared_data):
    evalset = load_dataset(shared_data / "arguana", "beir").limit(20)
    assert evalset.exclude_self and "dropped" in evalset.notes[0]
    from crossrank.eval.harness import FirstStage

    stage = FirstStage(evalset, "bm25").prepare()
    for qid in evalset.queries:
        assert qid not in stage.rank(qid, 10)


def test_eval_cli_json_and_plot(shared_data, tmp_path, capsys):
    plot = tmp_path / "cmp.png"
    code = main(
        [
            "eval",
            "--dataset",
            str(shared_data / "wikiqa"),
            "--format",
            "wikiqa",
            "--first-stage",
            "bm25",
            "--rerank",
            "none",
            "--limit",
            "5",
            "--json",
            "--plot",
            str(plot),
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert (
        result["n_queries"] == 5 and result["reranked"] is None and set(METRICS) <= set(result["first_stage"])
    )
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("name", "message"), [(".", "is a folder"), ("cmp.txt", "image extension"), ("cmp", "image extension")]
)
def test_eval_cli_checks_the_plot_path_before_evaluating(shared_data, tmp_path, capsys, name, message):
    """--plot cmp.txt raised matplotlib's ValueError after the whole evaluation (its results lost); a
    folder or a name without extension had matplotlib write FOLDER.png / cmp.png beside it."""
    args = ["eval", "--dataset", str(shared_data / "wikiqa"), "--format", "wikiqa", "--rerank", "none"]
    plot = tmp_path / "plots" / name
    if name == ".":
        plot.mkdir(parents=True)
    assert main([*args, "--first-stage", "bm25", "--limit", "2", "--plot", str(plot)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert not list(tmp_path.rglob("*.png"))


def test_eval_cli_errors(tmp_path, capsys):
    assert main(["eval", "--dataset", str(tmp_path / "nope"), "--format", "beir", "--rerank", "none"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--dataset", str(tmp_path), "--format", "msmarco"])


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_eval_cli_refuses_a_limit_below_one(shared_data, capsys, limit):
    args = ["eval", "--dataset", str(shared_data / "wikiqa"), "--format", "wikiqa", "--rerank", "none"]
    assert main([*args, "--first-stage", "bm25", "--limit", limit]) == 2
    assert f"--limit must be a positive number of queries, got {limit}" in capsys.readouterr().err


@pytest.mark.slow
def test_full_sets_first_stage(shared_data):
    """Full data sets, BM25 (fast); reference: ArguAna NDCG@10 0.315 (BEIR paper) / ≈ 0.327 (bm25s here)."""
    arguana = load_dataset(shared_data / "arguana", "beir")
    dropped = run_eval(arguana, method="bm25", k=100)["first_stage"]
    assert dropped["ndcg@10"] == pytest.approx(0.411, abs=0.005)
    arguana.exclude_self = (
        False  # the protocol of the BEIR paper's era: the query's own text may be retrieved
    )
    kept = run_eval(arguana, method="bm25", k=100)["first_stage"]
    assert kept["ndcg@10"] == pytest.approx(0.306, abs=0.005)
    assert abs(kept["ndcg@10"] - 0.315) < 0.02
    cmrc = run_eval(load_dataset(shared_data / "cmrc2018", "cmrc"), method="bm25")["first_stage"]
    assert cmrc["mrr@10"] > 0.8
    sent = run_eval(load_dataset(shared_data / "cmrc2018", "cmrc-sent"), method="bm25")["first_stage"]
    assert 0.3 < sent["map"] < 1.0


@pytest.mark.slow
def test_full_wikiqa_dense_with_e5_and_embedded_reranker_slice(shared_data):
    wikiqa = load_dataset(shared_data / "wikiqa", "wikiqa")
    result = run_eval(wikiqa, method="dense", k=100)
    assert result["first_stage"]["map"] > 0.6  # e5-small is a strong answer selector (≈ 0.77 MAP on test)
    from crossrank.reranker import Reranker

    reranked = run_eval(wikiqa.limit(10), method="bm25", reranker=Reranker("embedded"))
    _check(reranked["reranked"])


class _OracleReranker:
    """Knows the answers: logit 1 for a relevant text, 0 otherwise. Proves that the harness sorts by the
    reranker's scores (best first) and maps them back to the right candidates."""

    def __init__(self, evalset):
        self.relevant = {
            (evalset.queries[q], evalset.corpus[d][1]) for q in evalset.qrels for d in evalset.qrels[q]
        }

    def score_pairs(self, pairs, progress=None):
        from crossrank.types import PairScore, WindowSpan

        window = WindowSpan(0, 0, 0, 1)
        return [PairScore(float((q, d) in self.relevant), window, False, 1) for q, d in pairs]


@pytest.mark.parametrize("fmt", ["wikiqa", "cmrc-sent"])
def test_a_perfect_reranker_gives_perfect_metrics(shared_data, fmt):
    folder = "wikiqa" if fmt == "wikiqa" else "cmrc2018"
    evalset = load_dataset(shared_data / folder, fmt).limit(15)
    result = run_eval(evalset, method="bm25", k=100, reranker=_OracleReranker(evalset))
    assert result["reranked"]["mrr@10"] == result["reranked"]["map"] == 1.0
    assert result["first_stage"]["map"] < 1.0
