"""Table files for :mod:`crossrank.batch`: find inputs, cut them into shards, read a shard, write a part.

A shard is a row range of one input file; it is the unit of work and of resumption: shard ``i`` becomes
the output file ``part-{i:05d}.parquet``, written to a temporary name and renamed when complete, so an
output file that exists is finished. JSON lines are parsed line by line with :mod:`json` (not Arrow's
JSON reader, which fails a whole file on one malformed line or a number among strings), so that a bad
line becomes a row with an error instead of a failed job. Every part has one schema, decided once for the
whole input (:func:`part_schema`). Needs pyarrow (``pip install 'crossrank[ray]'``).
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


def read_shard(shard: Shard) -> tuple[list[dict[str, Any]], Any]:
    """The shard's rows as dicts, and its Arrow table (Parquet; ``None`` for JSON lines)."""
    if shard.format == "parquet":
        pq = pyarrow().parquet
        file = pq.ParquetFile(shard.path)
        table = _parquet_rows(file, shard.start, shard.stop)
        return table.to_pylist(), table
    with open(shard.path, "rb") as handle:
        handle.seek(shard.offset)
        data = handle.read(shard.end - shard.offset)
    lines = (x for x in data.splitlines() if x.strip())
    return [_json_row(line, number) for number, line in enumerate(lines, start=shard.start + 1)], None


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


def write_part(table, folder: Path, index: int) -> Path:
    """Write ``table`` as ``part-{index}.parquet`` in ``folder``, atomically (temporary name, then rename)."""
    pa = pyarrow()
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
JSON_TEXT = {b"crossrank": b"json"}  # field metadata: this input column holds JSON text (mixed JSON types)
INFER_ROWS = 10_000  # JSON lines typed this many rows at a time, the types widened from chunk to chunk


def part_schema(files: list[Path], query_column: str, candidates_column: str):
    """The one schema of every part: the input columns, then the outputs (``OUTPUT_TYPES``). Refuses an
    input without the query or candidates column.

    It is decided once, from the whole input, because types guessed from each part's own values differ
    between parts (int32 read back as int64, a column whose rows in that part are all null typed null, one
    bad value turning a column into JSON text in that part only), and a folder of parts with different
    schemas cannot be read as one table. Parquet: each file's own schema (several files: unified, types
    widened). JSON lines: the query is text and the candidates a list of texts (a row's value that is not
    is stored as null, its error says why); any other column gets the type that all its values across the
    input share, or else, in every part, JSON text (field metadata ``JSON_TEXT``).
    """
    pa = pyarrow()
    required = (query_column, candidates_column)
    schemas = []
    for path in (p for p in files if SUFFIXES[p.suffix] == "parquet"):
        schema = pa.parquet.ParquetFile(path).schema_arrow.remove_metadata()  # pandas' index: whole file
        _check_required(str(path), schema.names, required)
        schemas.append(schema)
    lines = [p for p in files if SUFFIXES[p.suffix] == "jsonl"]
    if lines:
        fixed = {query_column: pa.string(), candidates_column: pa.list_(pa.string())}
        schema = _jsonl_schema(lines, fixed)
        where = str(lines[0]) if len(lines) == 1 else f"the JSON lines input ({len(lines)} files)"
        if schema.names:  # no names: every line is malformed, and each row says so
            _check_required(where, schema.names, required)
        schemas.append(schema)
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInputError(
            f"the input files' columns do not combine into one table ({exc}); rerank them separately"
        ) from None
    fields = [
        f if all(f.name in s.names for s in schemas) else f.with_nullable(True)  # null in the other files
        for f in unified
        if f.name not in OUTPUT_TYPES
    ]
    return pa.schema(fields + [pa.field(name, kind(pa)) for name, kind in OUTPUT_TYPES.items()])


def _check_required(where: str, names: list[str], required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in names]
    if missing:
        raise InvalidInputError(
            f"{where} has no column {', '.join(missing)} (it has {', '.join(names)}); "
            "name the columns with query_column/candidates_column, or use group_by for long rows"
        )


def _jsonl_schema(files: list[Path], fixed: dict[str, Any]):
    """JSON lines columns in first-appearance order: ``fixed`` types, the others inferred (see
    :func:`part_schema`). A column whose type widened after it was first typed (int to double, say) is
    checked again against its final type, as a value of an earlier chunk may not fit it (an integer
    above 2**53 as a double): if one does not, the column is JSON text."""
    pa = pyarrow()
    types: dict[str, Any] = {}  # column → Arrow type, or None for JSON text
    widened: set[str] = set()
    for chunk in _jsonl_chunks(files):
        for name, values in chunk.items():
            types.setdefault(name, pa.null())
            if name in fixed or types[name] is None:
                continue
            merged = _merged_type(types[name], values)
            if merged is not None and types[name] not in (pa.null(), merged):
                widened.add(name)
            types[name] = merged
    check = {name for name in widened if types[name] is not None}
    for chunk in _jsonl_chunks(files, check) if check else ():
        for name, values in chunk.items():
            if types[name] is not None and not _fits(values, types[name]):
                types[name] = None
    return pa.schema([
        pa.field(name, fixed[name]) if name in fixed
        else pa.field(name, pa.string(), metadata=JSON_TEXT) if kind is None or not _storable(kind)
        else pa.field(name, kind)
        for name, kind in types.items()
    ])


def _storable(kind) -> bool:
    """Whether Parquet stores ``kind``: not a struct without fields (a column of empty JSON objects)."""
    pa = pyarrow()
    if pa.types.is_struct(kind):
        return kind.num_fields > 0 and all(_storable(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _storable(kind.value_type)
    return True


def _jsonl_chunks(files: list[Path], only: set[str] | None = None) -> Iterator[dict[str, list]]:
    """The values of each column (``only`` those), ``INFER_ROWS`` rows at a time; lines split as
    :func:`read_shard` splits them."""
    chunk: dict[str, list] = {}
    rows = 0
    for path in files:
        with path.open("rb") as handle:
            for line in (part for raw in handle for part in raw.splitlines() if part.strip()):
                for name, value in _json_row(line, 0).items():
                    if name != BAD_LINE and (only is None or name in only):
                        chunk.setdefault(name, []).append(value)
                rows += 1
                if rows % INFER_ROWS == 0:
                    yield chunk
                    chunk = {}
    if chunk:
        yield chunk


def _merged_type(kind, values: list[Any]):
    """``kind`` widened to hold ``values`` too, or ``None`` (JSON text) when no Arrow type holds both."""
    pa = pyarrow()
    try:
        new = pa.array(values).type
        merged = pa.unify_schemas(
            [pa.schema([("v", kind)]), pa.schema([("v", new)])], promote_options="permissive"
        ).field("v").type
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    return merged if _fits(values, merged) else None


def _fits(values: list[Any], kind) -> bool:
    pa = pyarrow()
    try:
        pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return False
    return True


def part_table(schema, rows: list[dict[str, Any]], source=None):
    """The part's table in ``schema``: the outputs from ``rows``; the input columns from the shard's Arrow
    table ``source`` (Parquet, types kept) or from ``rows`` (JSON lines)."""
    pa = pyarrow()
    columns = []
    for field in schema:
        if source is not None and field.name not in OUTPUT_TYPES:
            columns.append(_source_column(source, field))
        elif field.metadata == JSON_TEXT:
            columns.append(_json_text([row.get(field.name) for row in rows]))
        else:
            columns.append(_typed([row.get(field.name) for row in rows], field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _source_column(table, field):
    pa = pyarrow()
    if field.name not in table.column_names:
        return pa.nulls(table.num_rows, field.type)
    column = table.column(field.name)
    if column.type == field.type:
        return column
    try:
        return column.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.array(column.to_pylist(), type=field.type)


def _typed(values: list[Any], kind):
    """Values as an Arrow array of type ``kind``. Only a query or candidates value can fail to fit (the
    other columns' types hold every value): it is stored as null, and its row's error says why. A text is
    no list (Arrow would store it as a list of its characters)."""
    pa = pyarrow()
    listed = pa.types.is_list(kind) or pa.types.is_large_list(kind)
    if not (listed and any(isinstance(v, str) for v in values)):
        try:
            return pa.array(values, type=kind)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    return pa.array([None if listed and isinstance(v, str) or not _fits([v], kind) else v for v in values],
                    type=kind)


def _json_text(values: list[Any]):
    return pyarrow().array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values])


def _column(values: list[Any]):
    """An Arrow column typed from its values (long rows, grouped once); values Arrow cannot type (mixed
    JSON types) are kept as JSON text."""
    pa = pyarrow()
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return _json_text(values)


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
    return pa.table({c: _column([row.get(c) for row in rows]) for c in columns})
