"""Table files for :mod:`crossrank.batch`: find inputs, cut them into shards, read a shard, write a part.

A shard is a row range of one input file; it is the unit of work and of resumption: shard ``i`` becomes
the output file ``part-{i:05d}.parquet``, written to a temporary name and renamed when complete, so an
output file that exists is finished. JSON lines are parsed line by line with :mod:`json` (not Arrow's
JSON reader, which fails a whole file on one malformed line or a number among strings), so that a bad
line becomes a row with an error instead of a failed job. Needs pyarrow (``pip install 'crossrank[ray]'``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidInputError, optional_import

SUFFIXES = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
PART = "part-{:05d}.parquet"
BAD_LINE = "__crossrank_bad_line"


def pyarrow():
    """pyarrow with its parquet module loaded (``pa.parquet``)."""
    optional_import("pyarrow.parquet", "ray")
    return optional_import("pyarrow", "ray")


@dataclass(frozen=True)
class Shard:
    """Rows ``[start, stop)`` of ``path`` (``offset``: the byte where row ``start`` begins, JSONL)."""

    index: int
    path: str
    format: str
    start: int
    stop: int
    offset: int = 0
    end: int = 0

    @property
    def rows(self) -> int:
        return self.stop - self.start


def input_files(inputs: list[str | Path]) -> list[Path]:
    """The Parquet/JSONL files named by ``inputs`` (files, or folders searched for them), sorted."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and not _hidden(p, path))
            if not found:
                raise InvalidInputError(f"{path} holds no .parquet or .jsonl files")
            files.extend(found)
        elif path.is_file():
            if path.suffix not in SUFFIXES:
                raise InvalidInputError(f"{path}: expected a .parquet or .jsonl file (gzip: decompress it)")
            files.append(path)
        else:
            raise InvalidInputError(f"input {path} does not exist")
    return files


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def plan_shards(files: list[Path], rows_per_file: int) -> list[Shard]:
    """Cut every file into shards of at most ``rows_per_file`` rows, numbered in input order."""
    shards: list[Shard] = []
    for path in files:
        if SUFFIXES[path.suffix] == "parquet":
            total = pyarrow().parquet.ParquetFile(path).metadata.num_rows
            for start in range(0, total, rows_per_file):
                stop = min(total, start + rows_per_file)
                shards.append(Shard(len(shards), str(path), "parquet", start, stop))
        else:
            for start, stop, offset, end in _jsonl_ranges(path, rows_per_file):
                shards.append(Shard(len(shards), str(path), "jsonl", start, stop, offset, end))
    return shards


def _jsonl_ranges(path: Path, rows_per_file: int) -> Iterator[tuple[int, int, int, int]]:
    """(first row, end row, first byte, end byte) of each run of ``rows_per_file`` non-blank lines."""
    row = start = offset = position = 0
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                row += 1
                if row - start == rows_per_file:
                    yield start, row, offset, position + len(line)
                    start, offset = row, position + len(line)
            position += len(line)
    if row > start:
        yield start, row, offset, position


def read_shard(shard: Shard) -> tuple[list[dict[str, Any]], list[str]]:
    """The shard's rows as dicts, and the column names in file order."""
    if shard.format == "parquet":
        pq = pyarrow().parquet
        file = pq.ParquetFile(shard.path)
        table = _parquet_rows(file, shard.start, shard.stop)
        return table.to_pylist(), table.column_names
    with open(shard.path, "rb") as handle:
        handle.seek(shard.offset)
        data = handle.read(shard.end - shard.offset)
    rows, names = [], {}
    for number, line in enumerate((x for x in data.splitlines() if x.strip()), start=shard.start + 1):
        row = _json_row(line, number)
        rows.append(row)
        names.update(dict.fromkeys(k for k in row if k != BAD_LINE))
    return rows, list(names)


def _parquet_rows(file, start: int, stop: int):
    """Rows ``[start, stop)`` of a Parquet file, reading only the row groups that hold them."""
    groups, first, seen = [], None, 0
    for i in range(file.metadata.num_row_groups):
        n = file.metadata.row_group(i).num_rows
        if seen + n > start and seen < stop:
            groups.append(i)
            first = seen if first is None else first
        seen += n
    table = file.read_row_groups(groups)
    return table.slice(start - (first or 0), stop - start)


def _json_row(line: bytes, number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return {BAD_LINE: f"line {number} is not valid JSON ({exc}); write one JSON object per line"}
    if not isinstance(value, dict):
        return {BAD_LINE: f"line {number} is a JSON {type(value).__name__}, not an object"}
    # A lone surrogate, which no column can store, comes from a \u escape or from the bytes ED A0..BF xx
    # (json.loads decodes bytes with "surrogatepass").
    if b"\\u" in line or b"\xed" in line:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return {BAD_LINE: f"line {number} holds a lone surrogate (an unpaired \\ud800-\\udfff escape), "
                    "which is not valid Unicode; fix that text"}
    return value


def write_part(rows: list[dict[str, Any]], columns: list[str], folder: Path, index: int) -> Path:
    """Write ``rows`` as ``part-{index}.parquet`` in ``folder``, atomically (temporary name, then rename)."""
    pa = pyarrow()
    table = pa.table({name: _column([row.get(name) for row in rows], name) for name in columns})
    final = folder / PART.format(index)
    temporary = folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
    pa.parquet.write_table(table, temporary)
    os.replace(temporary, final)
    return final


OUTPUT_TYPES = {
    "scores": lambda pa: pa.list_(pa.float64()),
    "ranking": lambda pa: pa.list_(pa.int32()),
    "windows": lambda pa: pa.list_(
        pa.struct([(k, pa.int32()) for k in ("index", "start", "end", "count")] + [("truncated", pa.bool_())])
    ),
    "error": lambda pa: pa.string(),
}


def _column(values: list[Any], name: str):
    """An Arrow column; input values Arrow cannot type (mixed JSON types) are kept as JSON text."""
    pa = pyarrow()
    if name in OUTPUT_TYPES:
        return pa.array(values, type=OUTPUT_TYPES[name](pa))
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values])


def group_rows(
    files: list[Path], group_by: str, query_column: str, document_column: str, target: Path
) -> Path:
    """Long rows (query id, query, document) → one Parquet row per query id with its documents as a list,
    in first-appearance order (ids and documents alike). Done once: an existing ``target`` is reused."""
    if target.is_file():
        return target
    pa = pyarrow()
    columns = (group_by, query_column, document_column)
    tables = [_long_table(path, columns) for path in files]
    grouped = pa.concat_tables(tables, promote_options="permissive").group_by(group_by, use_threads=False)
    table = grouped.aggregate([(query_column, "first"), (document_column, "list")])
    table = table.rename_columns([group_by, query_column, "candidates"])
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    pa.parquet.write_table(table, temporary)
    os.replace(temporary, target)
    return target


def _long_table(path: Path, columns: tuple[str, ...]):
    pa = pyarrow()
    if SUFFIXES[path.suffix] == "parquet":
        names = pa.parquet.ParquetFile(path).schema_arrow.names
        rows = None
    else:
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        rows = [_json_row(line, number) for number, line in enumerate(lines, start=1)]
        bad = next((row[BAD_LINE] for row in rows if BAD_LINE in row), None)
        if bad:
            raise InvalidInputError(f"{path}: {bad}")
        names = list(dict.fromkeys(k for row in rows for k in row))
    missing = [c for c in columns if c not in names]
    if missing:
        raise InvalidInputError(f"{path} has no column {', '.join(missing)}; it has {', '.join(names)}")
    if rows is None:
        return pa.parquet.read_table(path, columns=list(columns))
    return pa.table({c: _column([row.get(c) for row in rows], c) for c in columns})
