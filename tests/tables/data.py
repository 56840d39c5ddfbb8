"""Small (query, candidates) tables built from real ArguAna lists (read in place), with bad rows."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

BAD_ROW = {"query": "is this scored?", "candidates": ["a fine candidate", "   "]}


def arguana_rows(shared_data: Path, queries: int = 6, per_query: int = 6) -> list[dict]:
    """Each of the first ``queries`` ArguAna test queries with its relevant argument and other passages
    (texts cut to 200/600 characters to keep the tests short; long ones still span several windows)."""
    folder = shared_data / "arguana"
    with gzip.open(folder / "queries.jsonl.gz", "rt", encoding="utf-8") as handle:
        texts = {q["_id"]: q["text"] for q in map(json.loads, handle)}
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as handle:
        corpus = {d["_id"]: d["text"][:600] for d in map(json.loads, itertools.islice(handle, 400))}
    lines = (folder / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows, others = [], list(corpus.values())
    for i, line in enumerate(x for x in lines if x.split("\t")[1] in corpus):
        if len(rows) == queries:
            break
        query_id, doc_id, _ = line.split("\t")
        candidates = others[i * 5 : i * 5 + per_query - 1]
        candidates.insert(i % per_query, corpus[doc_id])
        rows.append({"qid": query_id, "query": texts[query_id][:200], "candidates": candidates})
    return rows


def write_jsonl(rows: list[dict], path: Path, extra_lines: tuple[str, ...] = ()) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        for line in extra_lines:
            handle.write(line + "\n")
    return path


def write_parquet(rows: list[dict], path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)
    return path


def read_output(folder: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [row for part in sorted(folder.glob("part-*.parquet")) for row in pq.read_table(part).to_pylist()]


def assert_same_as_library(reranker, row: dict, top_n=None, threshold=None) -> None:
    """The row's outputs equal ``Reranker.rerank`` on the same query and candidates."""
    import pytest

    expected = reranker.rerank(row["query"], row["candidates"], top_n=top_n, threshold=threshold)
    full = {r.index: r for r in reranker.rerank(row["query"], row["candidates"])}
    assert row["error"] is None
    assert row["ranking"] == [r.index for r in expected]
    in_order = [full[i] for i in range(len(row["candidates"]))]
    assert row["scores"] == pytest.approx([r.score for r in in_order], abs=1e-6)
    spans = [(r.window.start, r.window.end, r.window.count) for r in in_order]
    assert [(w["start"], w["end"], w["count"]) for w in row["windows"]] == spans
