"""The CLI end to end, in subprocesses, on a tiny XLM-R cross-encoder with the real tokenizer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crossrank import Reranker
from crossrank.cli.main import build_parser


def crossrank(*args, stdin=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "crossrank.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def subcommand_paths(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from subcommand_paths(sub, (*prefix, name))


def test_every_command_has_help(capsys):
    paths = list(subcommand_paths(build_parser()))
    assert {("score",), ("rerank",), ("models", "build"), ("models", "path"), ("demo",)} <= set(paths)
    for path in paths:
        with pytest.raises(SystemExit) as exit_info:
            build_parser().parse_args([*path, "--help"])
        assert exit_info.value.code == 0
        assert "usage: crossrank" in capsys.readouterr().out


def test_score_reads_jsonl_pairs(tmp_path, tiny_xlmr_dir):
    pairs = [["what is panda?", "hi"], {"query": "what is panda?", "document": "a bear from China"}]
    file = tmp_path / "pairs.jsonl"
    file.write_text("\n".join(json.dumps(p) for p in pairs) + "\n", encoding="utf-8")
    result = crossrank("score", str(file), "--model", str(tiny_xlmr_dir))
    assert result.returncode == 0, result.stderr
    scores = [json.loads(line)["score"] for line in result.stdout.splitlines()]
    expected = Reranker(str(tiny_xlmr_dir)).compute_score(
        [["what is panda?", "hi"], ["what is panda?", "a bear from China"]]
    )
    assert scores == pytest.approx(expected, abs=1e-6)


def test_rerank_json_from_stdin(tiny_xlmr_dir):
    docs = ["The giant panda eats bamboo.", "Paris is in France.", "熊猫生活在中国。"]
    result = crossrank(
        "rerank", "--query", "panda", "--docs", "-", "--json", "--model", str(tiny_xlmr_dir), "--top-n", "2",
        stdin="\n".join(docs) + "\n",
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    expected = Reranker(str(tiny_xlmr_dir)).rerank("panda", docs, top_n=2)
    assert [r["index"] for r in out] == [r.index for r in expected]
    assert [r["score"] for r in out] == pytest.approx([r.score for r in expected], abs=1e-6)
    assert set(out[0]) == {"index", "line", "score", "document", "window"}
    assert all(r["line"] == r["index"] + 1 for r in out)
    assert set(out[0]["window"]) == {"index", "start", "end", "count"}
    assert out[0]["document"] == docs[out[0]["index"]]


def test_rerank_table_and_threshold(tmp_path, tiny_xlmr_dir):
    file = tmp_path / "docs.txt"
    file.write_text("first document\nsecond document\n", encoding="utf-8")
    result = crossrank("rerank", "-q", "document", "-d", str(file), "--model", str(tiny_xlmr_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["rank", "line", "score", "window", "document"]
    assert len(result.stdout.splitlines()) == 3
    none = crossrank(
        "rerank", "-q", "document", "-d", str(file), "--model", str(tiny_xlmr_dir), "--threshold", "1"
    )
    best = Reranker(str(tiny_xlmr_dir)).rerank("document", ["first document", "second document"])[0].score
    assert f"no document reached the threshold 1.000; the best score was {best:.4f}" in none.stdout
    dynamic = crossrank(
        "rerank", "-q", "document", "-d", str(file), "--model", str(tiny_xlmr_dir), "--threshold", "Dynamic",
        "--json",
    )
    expected = Reranker(str(tiny_xlmr_dir)).rerank(
        "document", ["first document", "second document"], threshold="dynamic"
    )
    assert [r["index"] for r in json.loads(dynamic.stdout)] == [r.index for r in expected]


@pytest.mark.parametrize(
    "args,message",
    [
        (("score", "/no/such/file.jsonl"), "does not exist"),
        (("score", "/"), "is a folder"),
        (("rerank", "-q", "x", "-d", "-", "--max-document-chars", "0"), "positive number of characters"),
        (("rerank", "-q", "x", "-d", "-", "--max-document-chars", "5"), "over max_document_chars=5"),
        (("rerank", "-q", "", "-d", "-"), "query is empty"),
        (("rerank", "-q", "x", "-d", "-", "--threshold", "high"), "threshold must be a number"),
        (("rerank", "-q", "x", "-d", "-", "--model", "nope"), "unknown model"),
        (("models", "path", "nope"), "unknown model"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message, tiny_xlmr_dir):
    extra = () if "--model" in args or args[0] != "rerank" else ("--model", str(tiny_xlmr_dir))
    result = crossrank(*args, *extra, stdin="a document\n")
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_blank_lines_are_skipped_and_lines_reported(tmp_path, tiny_xlmr_dir):
    docs = tmp_path / "docs.txt"
    docs.write_text("a panda eats bamboo\n\nParis is in France\n   \nbamboo forests\n", encoding="utf-8")
    result = crossrank("rerank", "-q", "panda", "-d", str(docs), "--json", "--model", str(tiny_xlmr_dir))
    assert result.returncode == 0, result.stderr
    by_line = {r["line"]: r["document"] for r in json.loads(result.stdout)}
    assert by_line == {1: "a panda eats bamboo", 3: "Paris is in France", 5: "bamboo forests"}
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('["q", "d"]\n\n["q", "e"]\n', encoding="utf-8")
    scored = crossrank("score", str(pairs), "--model", str(tiny_xlmr_dir))
    assert [json.loads(x)["line"] for x in scored.stdout.splitlines()] == [1, 3]


@pytest.mark.parametrize(
    "content,message",
    [('["q", "d"]\n["q", " "]\n', ":2: the document is empty"), ('["", "d"]\n', ":1: the query is empty")],
)
def test_a_blank_text_names_its_line(tmp_path, tiny_xlmr_dir, content, message):
    file = tmp_path / "pairs.jsonl"
    file.write_text(content, encoding="utf-8")
    result = crossrank("score", str(file), "--model", str(tiny_xlmr_dir))
    assert result.returncode == 2 and message in result.stderr


def test_malformed_jsonl_names_the_line(tmp_path, tiny_xlmr_dir):
    file = tmp_path / "pairs.jsonl"
    file.write_text('["q", "d"]\n{not json\n', encoding="utf-8")
    result = crossrank("score", str(file), "--model", str(tiny_xlmr_dir))
    assert result.returncode == 2 and f"{file}:2" in result.stderr


def test_models_list_and_path():
    listing = crossrank("models", "list")
    assert listing.returncode == 0 and "embedded" in listing.stdout
    path = crossrank("models", "path", "xlmr-tokenizer")
    assert path.returncode == 0
    from pathlib import Path

    assert (Path(path.stdout.strip()) / "tokenizer.json").is_file()


@pytest.mark.slow
def test_demo_runs_on_the_embedded_model():
    from crossrank.demo import FLAG_PAIRS, SIMILARITY_DEMOS

    result = crossrank("demo", timeout=600)
    assert result.returncode == 0, result.stderr
    assert "FlagReranker" in result.stdout and FLAG_PAIRS[1][1][:60] in result.stdout
    for demo in SIMILARITY_DEMOS:  # the seed's queries and documents, printed in full
        assert demo.query in result.stdout
        assert all(doc in result.stdout for doc in demo.documents)
    lines = result.stdout.splitlines()
    tables = [i for i, line in enumerate(lines) if "vector sim" in line]
    best = [lines[i + 1].split()[0] for i in tables]
    # the answering document ranks first: green tea + L-theanine, the M4 chip, FSD document A
    assert best == ["2", "2", "0"]
    footers = [line for line in lines if "dynamic threshold" in line]
    assert len(footers) == 3 and all("σ of the top scores" in f for f in footers)


def test_seed_demo_one_is_the_four_lines_of_flagembedding_usage():
    source = (Path(__file__).resolve().parents[1] / "examples" / "test.py").read_text(encoding="utf-8")
    code = [line for line in source.splitlines() if line.strip()]
    assert len(code) == 4
    assert code[0] == "from crossrank import FlagReranker"
    assert 'FlagReranker("embedded", use_fp16=True)' in code[1]
    assert "compute_score([[" in code[2] and code[2].count('["what is panda?"') == 2
    assert code[3] == "print(score)"


def test_an_unwritable_cache_is_a_clear_error_or_the_reference(tmp_path, tiny_xlmr_dir, monkeypatch):
    """A cache folder that cannot be created: backend='auto' runs the exact reference without
    preparing, and a backend that needs the cache says which folder and how to fix it (no traceback)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("CROSSRANK_HOME", str(blocker / "home"))  # mkdir fails here, even as root
    monkeypatch.setenv("CROSSRANK_AUTO_PREPARE", "1")
    docs = tmp_path / "docs.txt"
    docs.write_text("a panda eats bamboo\nParis is in France\n", encoding="utf-8")
    model = ("--model", str(tiny_xlmr_dir))
    auto = crossrank("rerank", "-q", "panda", "-d", str(docs), *model, "-v", "--json")
    assert auto.returncode == 0, auto.stderr
    assert "torch fp32: the exact reference" in auto.stderr
    assert "not gated yet: Not a directory" in auto.stderr
    onnx = crossrank("rerank", "-q", "panda", "-d", str(docs), *model, "--backend", "onnx")
    assert onnx.returncode == 2 and "Traceback" not in onnx.stderr
    assert "set CROSSRANK_HOME to a writable folder" in onnx.stderr


@pytest.mark.slow
def test_models_build_prepares_a_local_folder(tmp_path, tiny_xlmr_dir, monkeypatch):
    """`models build FOLDER --force` gates a local model's CPU backends again (what a timed-out
    preparation's message tells the user to run)."""
    monkeypatch.setenv("CROSSRANK_HOME", str(tmp_path / "home"))
    result = crossrank("models", "build", str(tiny_xlmr_dir), "--force", timeout=900)
    assert result.returncode == 0, result.stderr
    assert f"{tiny_xlmr_dir}: CPU backend " in result.stdout
    assert f"{tiny_xlmr_dir}: CPU fp32 backend (FlagReranker) " in result.stdout
