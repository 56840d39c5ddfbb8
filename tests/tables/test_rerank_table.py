"""crossrank.batch.rerank_table in this process (no Ray): parity with Reranker.rerank on real ArguAna
lists, bad rows, resumption, grouping long rows, and refusal to mix runs."""

from __future__ import annotations

import json

import pytest

from crossrank.batch import rerank_table
from crossrank.errors import InvalidInputError

from .data import BAD_ROW, arguana_rows, assert_same_as_library, read_output, write_jsonl, write_parquet

MODEL = {"max_length": 96, "backend": "torch"}


@pytest.fixture(scope="module")
def reranker(tiny_xlmr_dir):
    from crossrank import Reranker

    return Reranker(str(tiny_xlmr_dir), **MODEL)


@pytest.fixture(scope="module")
def rows(shared_data):
    return arguana_rows(shared_data)


def test_jsonl_rows_match_the_library_and_bad_rows_get_an_error(tmp_path, rows, reranker, tiny_xlmr_dir):
    source = write_jsonl([*rows[:3], BAD_ROW, *rows[3:]], tmp_path / "in.jsonl", extra_lines=("{not json",))
    summary = rerank_table(
        source, tmp_path / "out", model=str(tiny_xlmr_dir), use_ray=False, rows_per_file=3, top_n=3,
        progress=False, **MODEL,
    )
    assert (summary.written, summary.rows, summary.errors) == (3, len(rows) + 2, 2)
    out = read_output(tmp_path / "out")
    ids = [r["qid"] for r in rows]
    assert [r["qid"] for r in out] == ids[:3] + [None] + ids[3:] + [None]
    assert "document 1 is empty" in out[3]["error"] and out[3]["scores"] is None
    assert "line 8 is not valid JSON" in out[-1]["error"]
    for row in out[:3] + out[4:-1]:
        assert_same_as_library(reranker, row, top_n=3)


def test_rerun_skips_finished_parts_and_refuses_other_options(tmp_path, rows, tiny_xlmr_dir):
    source = write_parquet(rows, tmp_path / "in.parquet")
    args = {"model": str(tiny_xlmr_dir), "use_ray": False, "rows_per_file": 2, "progress": False, **MODEL}
    first = rerank_table(source, tmp_path / "out", **args)
    assert (first.written, first.skipped) == (3, 0)
    part = tmp_path / "out" / "part-00001.parquet"
    part.unlink()  # as if the job had stopped before this part
    finished = (tmp_path / "out" / "part-00000.parquet").stat().st_mtime_ns
    second = rerank_table(source, tmp_path / "out", **args)
    assert (second.written, second.skipped, second.rows) == (1, 2, 2)
    assert part.is_file() and (tmp_path / "out" / "part-00000.parquet").stat().st_mtime_ns == finished
    with pytest.raises(InvalidInputError, match="other inputs or options"):
        rerank_table(source, tmp_path / "out", **{**args, "top_n": 1})
    assert rerank_table(source, tmp_path / "out", overwrite=True, **{**args, "top_n": 1}).written == 3


def test_long_rows_are_grouped_once_in_input_order(tmp_path, rows, reranker, tiny_xlmr_dir):
    long = [
        {"qid": row["qid"], "query": row["query"], "document": doc}
        for position in range(6) for row in rows[:3] for doc in row["candidates"][position : position + 1]
    ]
    source = write_jsonl(long, tmp_path / "long.jsonl")
    model = str(tiny_xlmr_dir)
    out_dir = tmp_path / "out"
    rerank_table(source, out_dir, model=model, group_by="qid", use_ray=False, progress=False, **MODEL)
    out = read_output(tmp_path / "out")
    assert [r["qid"] for r in out] == [r["qid"] for r in rows[:3]]
    for row, original in zip(out, rows, strict=False):
        assert row["candidates"] == original["candidates"]
        assert_same_as_library(reranker, row)
    assert (tmp_path / "out" / "_grouped" / "grouped.parquet").is_file()


def test_missing_columns_and_inputs_are_clear_errors(tmp_path, tiny_xlmr_dir):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"question": "q", "docs": ["d"]}) + "\n")
    with pytest.raises(InvalidInputError, match="no column query, candidates"):
        rerank_table(source, tmp_path / "out", model=str(tiny_xlmr_dir), use_ray=False, progress=False)
    with pytest.raises(InvalidInputError, match="does not exist"):
        rerank_table(tmp_path / "missing.parquet", tmp_path / "out2", use_ray=False)


def test_cli_rerank_table_in_process(tmp_path, rows, tiny_xlmr_dir, capsys):
    from crossrank.cli.main import main

    source = write_jsonl(rows[:2], tmp_path / "in.jsonl")
    code = main(["rerank-table", str(source), "-o", str(tmp_path / "out"), "--in-process", "--model",
                 str(tiny_xlmr_dir), "--max-length", "96", "--backend", "torch", "--top-n", "2"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["parts_written"], report["rows"], report["rows_with_error"]) == (1, 2, 0)
    assert all(len(r["ranking"]) == 2 for r in read_output(tmp_path / "out"))


def test_rows_with_lone_surrogates_get_an_error_and_the_rest_is_written(tmp_path, tiny_xlmr_dir):
    """A \\ud800 escape (or its raw bytes) in any column: that row's error, the other rows scored."""
    source = tmp_path / "in.jsonl"
    good = {"query": "capital of france", "candidates": ["Paris", "Berlin"]}
    source.write_bytes(
        b"".join(
            [
                json.dumps(good).encode() + b"\n",
                json.dumps({**good, "query": "caf\ud800"}).encode() + b"\n",
                json.dumps({**good, "note": "\udfff"}).encode() + b"\n",
                b'{"query": "q\xed\xa0\x80", "candidates": ["a"]}\n',
                json.dumps({**good, "query": "caf\u00e9 \\u escapes are fine"}).encode() + b"\n",
            ]
        )
    )
    summary = rerank_table(source, tmp_path / "out", model=str(tiny_xlmr_dir), use_ray=False, progress=False,
                           **MODEL)
    assert (summary.rows, summary.errors) == (5, 3)
    out = read_output(tmp_path / "out")
    assert [r["error"] is None for r in out] == [True, False, False, False, True]
    assert all("lone surrogate" in r["error"] for r in out[1:4])
    assert out[4]["query"] == "café \\u escapes are fine" and len(out[4]["scores"]) == 2
