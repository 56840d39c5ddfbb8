"""crossrank.batch.rerank_table in this process (no Ray): parity with Reranker.rerank on real ArguAna
lists, bad rows, resumption, grouping long rows, and refusal to mix runs."""

from __future__ import annotations

import json
import sys

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


GOOD = {"query": "capital of france", "candidates": ["Paris is the capital.", "Berlin"]}
OUTPUT_FIELDS = ("scores", "ranking", "windows", "error")


def _parts_schemas(folder):
    import pyarrow.parquet as pq

    return [pq.read_schema(part) for part in sorted(folder.glob("part-*.parquet"))]


def test_parquet_parts_keep_the_input_schema_and_read_as_one_table(tmp_path, tiny_xlmr_dir):
    """Every part has the input's own column types (not types re-guessed from one part's values, such as
    int64 for int32 or null for a column whose first rows are null), so the folder reads as one table."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("qid", pa.int32()), ("query", pa.string()), ("candidates", pa.list_(pa.string())),
        ("weight", pa.float32()), ("opt", pa.string()), ("when", pa.date32()),
    ])
    rows = [
        {"qid": i, **GOOD, "weight": i / 2, "opt": None if i < 2 else f"o{i}",
         "when": datetime.date(2024, 1, 1 + i)}
        for i in range(5)
    ]
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), source, row_group_size=2)
    summary = rerank_table(source, tmp_path / "out", model=str(tiny_xlmr_dir), use_ray=False, rows_per_file=2,
                           progress=False, **MODEL)
    assert (summary.written, summary.errors) == (3, 0)
    schemas = _parts_schemas(tmp_path / "out")
    assert len(schemas) == 3 and all(s.equals(schemas[0]) for s in schemas)
    assert schemas[0].names == [*schema.names, *OUTPUT_FIELDS]
    for name in schema.names:
        assert schemas[0].field(name).type == schema.field(name).type, name
    assert schemas[0].field("scores").type == pa.list_(pa.float64())
    assert schemas[0].field("error").type == pa.string()
    table = pq.read_table(tmp_path / "out")
    assert table.num_rows == 5
    assert table.select(schema.names).to_pylist() == rows


def test_jsonl_parts_share_one_schema_whatever_each_part_holds(tmp_path, tiny_xlmr_dir):
    """A part whose only row has a null query, or whose candidates are one string, or whose extra column
    holds other types than elsewhere: still the same schema as every other part."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = [
        {**GOOD, "qid": 1, "note": "first", "hint": 1, "meta": {}},
        {**GOOD, "qid": 2, "note": 7, "hint": 2.5},
        {**GOOD, "qid": 3, "candidates": "one string, not a list", "note": None},
        {**GOOD, "qid": 4, "note": "fourth", "tags": ["a"]},
        {"qid": 5, "query": None, "candidates": ["x"]},
    ]
    source = write_jsonl(lines, tmp_path / "in.jsonl")
    summary = rerank_table(source, tmp_path / "out", model=str(tiny_xlmr_dir), use_ray=False, rows_per_file=2,
                           progress=False, **MODEL)
    assert (summary.written, summary.rows, summary.errors) == (3, 5, 2)
    schemas = _parts_schemas(tmp_path / "out")
    assert all(s.equals(schemas[0]) for s in schemas)
    assert schemas[0].names == ["query", "candidates", "qid", "note", "hint", "meta", "tags", *OUTPUT_FIELDS]
    assert schemas[0].field("query").type == pa.string()
    assert schemas[0].field("candidates").type == pa.list_(pa.string())
    assert schemas[0].field("hint").type == pa.float64()
    assert schemas[0].field("tags").type == pa.list_(pa.string())
    out = pq.read_table(tmp_path / "out").to_pylist()
    assert len(pd.read_parquet(tmp_path / "out")) == 5
    assert [r["candidates"] for r in out] == [GOOD["candidates"]] * 2 + [None, GOOD["candidates"], ["x"]]
    assert "candidates must be a list of texts, got str" in out[2]["error"]
    assert out[3]["error"] is None and len(out[3]["scores"]) == 2
    assert out[4]["query"] is None and "query" in out[4]["error"]
    # "note" holds texts and a number: JSON text in every part, so that no value is lost or re-typed.
    assert [r["note"] for r in out] == ['"first"', "7", None, '"fourth"', None]
    assert [r["meta"] for r in out] == ["{}", None, None, None, None]  # Parquet has no struct without fields


def test_a_jsonl_shard_without_the_candidates_key_is_a_row_error_not_a_job_error(tmp_path, tiny_xlmr_dir):
    """The columns are checked once for the whole input: a part whose only line lacks "candidates" is that
    row's error (as with one part for the whole file), and a rerun resumes instead of failing again."""
    source = write_jsonl([GOOD, {"query": "missing candidates key"}, GOOD], tmp_path / "miss.jsonl")
    args = {"model": str(tiny_xlmr_dir), "use_ray": False, "rows_per_file": 1, "progress": False, **MODEL}
    summary = rerank_table(source, tmp_path / "out", **args)
    assert (summary.written, summary.rows, summary.errors) == (3, 3, 1)
    out = read_output(tmp_path / "out")
    assert "no candidates" in out[1]["error"] and out[1]["candidates"] is None
    assert [r["error"] is None for r in out] == [True, False, True]
    (tmp_path / "out" / "part-00001.parquet").unlink()
    again = rerank_table(source, tmp_path / "out", **args)
    assert (again.written, again.skipped, again.errors) == (1, 2, 1)



def test_missing_columns_are_refused_before_anything_is_written(tmp_path, tiny_xlmr_dir):
    """A wrong column name is refused up front, so the corrected run is not taken for "other options"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "in.parquet"
    row = {"question": GOOD["query"], "candidates": GOOD["candidates"]}
    pq.write_table(pa.Table.from_pylist([row]), source)
    args = {"model": str(tiny_xlmr_dir), "use_ray": False, "progress": False, **MODEL}
    with pytest.raises(InvalidInputError, match="has no column query"):
        rerank_table(source, tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()
    assert rerank_table(source, tmp_path / "out", query_column="question", **args).errors == 0


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"top_n": -1}, "top_n must be a non-negative integer"),
        ({"threshold": 1.5}, "threshold must be a number in"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"window": 0}, "window must be a positive integer"),
        ({"min_score": 0.5}, "unknown Reranker option min_score"),
        ({"dtype": "int8"}, "int8"),  # found when the model is loaded, still before anything is written
    ],
)
def test_bad_options_are_refused_before_anything_is_written(tmp_path, tiny_xlmr_dir, bad, message):
    """A refused run leaves no manifest, so the corrected rerun is not refused as one with other options."""
    source = write_jsonl([GOOD], tmp_path / "in.jsonl")
    args = {"model": str(tiny_xlmr_dir), "use_ray": False, "progress": False, **MODEL}
    with pytest.raises(InvalidInputError, match=message):
        rerank_table(source, tmp_path / "out", **args, **bad)
    assert not (tmp_path / "out").exists()
    assert rerank_table(source, tmp_path / "out", **args).written == 1


def test_cli_refuses_bad_cutoffs_before_writing_and_takes_any_dynamic(tmp_path, tiny_xlmr_dir, capsys):
    from crossrank.cli.main import main

    source = write_jsonl([GOOD], tmp_path / "in.jsonl")
    command = ["rerank-table", str(source), "-o", str(tmp_path / "out"), "--in-process", "--model",
               str(tiny_xlmr_dir), "--max-length", "96", "--backend", "torch"]
    assert main([*command, "--top-n", "-1"]) == 2
    assert main([*command, "--threshold", "1.5"]) == 2
    assert "threshold must be a number in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert main([*command, "--threshold", "Dynamic"]) == 0
    assert json.loads(capsys.readouterr().out)["parts_written"] == 1
    assert main([*command, "--threshold", "DYNAMIC"]) == 0  # the same options: a resumed run
    assert json.loads(capsys.readouterr().out)["parts_skipped"] == 1


def test_without_ray_installed_the_cli_names_the_extra_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from crossrank.cli.main import main

    for name in ("ray", "ray.data"):  # as if Ray were not installed
        monkeypatch.setitem(sys.modules, name, None)
    source = write_jsonl([GOOD], tmp_path / "in.jsonl")
    assert main(["rerank-table", str(source), "-o", str(tmp_path / "out")]) == 2
    assert "pip install 'crossrank[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_on_a_local_ray_a_wrong_model_is_refused_before_anything_is_written(tmp_path, capsys):
    """Found here, in seconds: the actors used to fail one by one and leave a manifest behind, so that the
    corrected rerun was refused as a run with other options."""
    from crossrank.cli.main import main

    source = write_jsonl([GOOD], tmp_path / "in.jsonl")
    for where in ([], ["--ray-address", "local"]):  # "local": Ray's name for a new local Ray
        command = ["rerank-table", str(source), "-o", str(tmp_path / "out"), "--model", "/no/such/model"]
        assert main([*command, *where]) == 2
        assert "unknown model '/no/such/model'" in capsys.readouterr().err
        assert not (tmp_path / "out").exists()
