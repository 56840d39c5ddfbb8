"""``rerank_table``: rerank every (query, candidates) row of a table, on Ray Data or in this process.

Input: Parquet or JSON-lines files (or folders of them) with a ``query`` column and a ``candidates``
column (a list of texts), or long rows (query id, query, document) that are grouped once into that shape
(``group_by``). Output: a folder of Parquet files holding the input columns plus

- ``scores``: the normalised (sigmoid) score of each candidate, in input order;
- ``ranking``: candidate indices, best first, after ``top_n`` and ``threshold``;
- ``windows``: per candidate, the winning window (index, character span, count) and ``truncated``;
- ``error``: why a row could not be scored (bad text, malformed line); its other outputs are null.

Scores come from :class:`crossrank.Reranker`'s one inference path (``score_pairs`` and
:func:`crossrank.reranker.rank`, the same as ``Reranker.rerank``), several rows per engine call so that
rows with few candidates still fill token-budget batches.

Resumable: the input is cut into shards of ``rows_per_file`` rows (:mod:`crossrank.tables`), shard ``i``
becomes ``part-{i:05d}.parquet``, written under a temporary name and renamed when complete; a rerun skips
the parts that exist. ``_crossrank.json`` records the inputs and options, and a rerun with other ones is
refused. On Ray, the shards are the rows of a Ray Data dataset mapped by an actor pool
(``map_batches(ShardScorer, concurrency=N, num_cpus=..., num_gpus=...)``); each actor loads the model
once, reads its shard, scores it and writes its part. Ray Data's ``write_parquet`` is not used because its
file names and blocks do not map to input rows, so a rerun could not tell what is finished.
Paths must be visible to every node (a shared filesystem) when ``ray_address`` names a cluster.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import BackendError, InvalidInputError, optional_import
from .models.resolve import absolute_model
from .tables import (
    BAD_LINE,
    PART,
    Shard,
    group_rows,
    input_files,
    part_schema,
    part_table,
    plan_shards,
    read_shard,
    write_part,
)

logger = logging.getLogger(__name__)

MANIFEST = "_crossrank.json"
PAIRS_PER_CALL = 1024  # rows are scored together until this many pairs: full batches, bounded memory
RESERVED_CPUS = 1.0  # left free for Ray Data's own tasks: a job whose actors hold every CPU hangs


@dataclass(frozen=True)
class TableJob:
    """What to do with each row (everything but where the rows are)."""

    model: str = "embedded"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    query_column: str = "query"
    candidates_column: str = "candidates"
    top_n: int | None = None
    threshold: float | str | None = None


@dataclass
class TableSummary:
    """What a run did: parts written now and skipped as finished, rows scored, rows with an error."""

    output: Path
    written: int
    skipped: int
    rows: int
    errors: int
    seconds: float


def rerank_table(
    inputs: str | Path | Sequence[str | Path],
    output: str | Path,
    *,
    model: str = "embedded",
    query_column: str = "query",
    candidates_column: str = "candidates",
    group_by: str | None = None,
    document_column: str = "document",
    top_n: int | None = None,
    threshold: float | str | None = None,
    rows_per_file: int = 10_000,
    use_ray: bool = True,
    ray_address: str | None = None,
    concurrency: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    overwrite: bool = False,
    progress: bool | Callable[[int, int], None] = True,
    **model_kwargs: Any,
) -> TableSummary:
    """Rerank each row's candidates for its query and write the table with the results to ``output``.

    Args:
        inputs: Parquet/JSONL files or folders of them.
        output: folder for ``part-*.parquet`` (created; finished parts of an earlier run are kept).
        group_by: the query-id column of long input (one document per row, ``document_column``); rows are
            grouped once, in first-appearance order, into ``output/_grouped/``.
        top_n, threshold: cut-offs applied to ``ranking`` (``threshold``: a number or ``"dynamic"``).
        rows_per_file: rows per shard and output file (the unit of resumption).
        use_ray: run on Ray Data (a local Ray is started, and stopped after, unless Ray is already
            initialised or ``ray_address`` is given); ``False``: a plain loop in this process.
        concurrency, num_cpus, num_gpus: Ray actors, and the CPUs/GPUs each one holds (also its model
            threads).
        overwrite: delete the parts and manifest of an earlier run first.
        progress: a tqdm bar on stderr, or a ``progress(rows_done, rows_total)`` callable, or ``False``.
        model_kwargs: :class:`~crossrank.Reranker` options (backend, device, dtype, max_length, batch_size,
            window, stride, max_windows, aggregate, truncate, max_document_chars).
    """
    start = time.perf_counter()
    threshold = check_options(top_n, threshold, rows_per_file, concurrency, model_kwargs)
    if use_ray:  # before anything is written; without Ray, say which extra brings it
        optional_import("ray.data", "ray")
    ray_address = None if ray_address == "local" else ray_address  # Ray's name for a new local Ray
    # Absolute paths: Ray's workers do not share this process's working folder.
    out = Path(output).resolve()
    files = [f.resolve() for f in input_files([inputs] if isinstance(inputs, str | Path) else list(inputs))]
    candidates = candidates_column if group_by is None else "candidates"
    job = TableJob(absolute_model(model), dict(model_kwargs), query_column, candidates, top_n, threshold)
    wanted = manifest(files, job, rows_per_file, group_by, document_column)
    # The manifest is written only once every check has passed (options, columns, grouping and loading the
    # model in this process, or finding it for a local Ray), and a Ray job that fails before writing a part
    # removes it: a run refused after writing it would make its corrected rerun look like a run with other
    # options, refused in turn.
    prepare_output(out, wanted, overwrite)
    if group_by is not None:
        target = out / "_grouped" / "grouped.parquet"
        files = [group_rows(files, group_by, query_column, document_column, target)]
    schema = part_schema(files, query_column, candidates)
    shards = plan_shards(files, rows_per_file)
    pending = [s for s in shards if not (out / PART.format(s.index)).is_file()]
    scorer = ShardScorer(asdict(job), schema, str(out)) if pending and not use_ray else None
    if pending and use_ray and ray_address is None:  # a wrong model fails here, in seconds, not in each actor
        from .models.resolve import resolve_model

        resolve_model(model)
    fresh = not (out / MANIFEST).is_file()
    write_manifest(out, wanted)
    logger.info("%d of %d parts to write in %s", len(pending), len(shards), out)
    report = _progress(progress, sum(s.rows for s in pending))
    try:
        if not pending:
            results = []
        elif use_ray:
            resources = (concurrency, num_cpus, num_gpus)
            try:
                results = run_on_ray(pending, job, schema, out, ray_address, *resources, report)
            except BaseException:  # e.g. the actors could not load the model (a dtype its backend lacks)
                if fresh and not any(out.glob("part-*.parquet")):  # nothing to resume: the corrected rerun
                    (out / MANIFEST).unlink(missing_ok=True)  # must not be refused as one with other options
                raise
        else:
            results = [scorer.score_shard(shard, report.update) for shard in pending]
    finally:
        report.close()
    return TableSummary(
        output=out,
        written=len(results),
        skipped=len(shards) - len(pending),
        rows=sum(r["rows"] for r in results),
        errors=sum(r["errors"] for r in results),
        seconds=time.perf_counter() - start,
    )


def manifest(files: list[Path], job: TableJob, rows_per_file: int, group_by, document_column) -> dict:
    """What the parts depend on: a rerun with a different manifest would mix results."""
    stats = [{"path": str(p.resolve()), "bytes": p.stat().st_size, "mtime": p.stat().st_mtime} for p in files]
    grouping = None if group_by is None else {"group_by": group_by, "document_column": document_column}
    return {
        "version": 1,
        "inputs": stats,
        "grouping": grouping,
        "rows_per_file": rows_per_file,
        "job": asdict(job),
    }


def check_options(top_n, threshold, rows_per_file, concurrency, model_kwargs: dict) -> float | str | None:
    """Refuse bad options before anything is read or written. Returns ``threshold`` normalised (``"dynamic"``
    in any capitalisation, a number as a float), so that equal options are recorded alike."""
    from .thresholds import check_threshold, check_top_n

    for name, value in (("rows_per_file", rows_per_file), ("concurrency", concurrency)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    check_top_n(top_n)
    threshold = check_threshold(threshold)
    check_model_options(model_kwargs)
    return threshold


def check_model_options(options: dict[str, Any]) -> None:
    """The :class:`~crossrank.Reranker` options that can be checked without loading the model (on Ray the
    model is loaded by the actors, after the manifest is written)."""
    import inspect

    from .backends.base import check_device
    from .reranker import BACKENDS, Reranker
    from .scoring import ScoreOptions

    known = [name for name in inspect.signature(Reranker).parameters if name != "model"]
    unknown = [name for name in options if name not in known]
    if unknown:
        raise InvalidInputError(
            f"unknown Reranker option {', '.join(unknown)}; the options are {', '.join(known)}"
        )
    backend = options.get("backend", "auto")
    if isinstance(backend, str) and backend not in BACKENDS:
        raise InvalidInputError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    check_device(options.get("device"))
    for name in ("max_length", "batch_size", "max_batch_tokens"):
        value = options.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
    ScoreOptions(**{k: v for k, v in options.items() if k in ScoreOptions.__dataclass_fields__}).validated()


def prepare_output(out: Path, wanted: dict, overwrite: bool) -> None:
    """Refuse to resume a run made with other inputs or options; with ``overwrite``, delete its results
    first. Grouped rows that no manifest vouches for (a run refused before writing its manifest) are
    deleted too. The manifest itself is written later, by :func:`write_manifest`."""
    path = out / MANIFEST
    if overwrite and out.is_dir():
        for part in out.glob("part-*.parquet"):
            part.unlink()
        path.unlink(missing_ok=True)
    if not path.is_file():
        shutil.rmtree(out / "_grouped", ignore_errors=True)
        return
    found = json.loads(path.read_text(encoding="utf-8"))
    if found != json.loads(json.dumps(wanted)):
        raise InvalidInputError(
            f"{out} holds results of a run with other inputs or options ({path}); "
            "write to a new output folder, or pass overwrite=True (--overwrite) to start again"
        )


def write_manifest(out: Path, wanted: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / MANIFEST
    if not path.is_file():
        path.write_text(json.dumps(wanted, indent=1), encoding="utf-8")


class ShardScorer:
    """Loads the model once; each call scores one shard and writes its part (also the Ray Data UDF).
    ``schema``: every part's schema (:func:`crossrank.tables.part_schema`)."""

    def __init__(self, job: dict[str, Any], schema, output: str, threads: int | None = None):
        from .reranker import Reranker
        from .server.ray import limit_threads

        limit_threads(threads)
        self.job = TableJob(**job)
        self.schema = schema
        self.output = Path(output)
        self.reranker = Reranker(self.job.model, **self.job.model_kwargs)

    def score_shard(self, shard: Shard, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        rows, source = read_shard(shard)
        results = score_rows(self.reranker, rows, self.job, progress)
        for row, result in zip(rows, results, strict=True):
            row.update(result)
            row.pop(BAD_LINE, None)
        write_part(part_table(self.schema, rows, source), self.output, shard.index)
        return {"index": shard.index, "rows": len(rows), "errors": sum(r["error"] is not None for r in rows)}

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ray Data: ``batch`` holds one shard descriptor per item (``batch_size=1``)."""
        done = [self.score_shard(_shard(batch, i)) for i in range(len(batch["index"]))]
        return {key: [d[key] for d in done] for key in ("index", "rows", "errors")}


def _shard(batch: dict[str, Any], i: int) -> Shard:
    return Shard(**{name: _plain(batch[name][i]) for name in Shard.__dataclass_fields__})


def _plain(value):
    return value.item() if hasattr(value, "item") else value  # numpy scalars from Ray Data batches


def score_rows(reranker, rows: list[dict], job: TableJob, progress=None) -> list[dict[str, Any]]:
    """``scores``/``ranking``/``windows``/``error`` for each row, in order. Rows are validated first (a bad
    one gets an error, the others are scored); valid rows are scored together, ``PAIRS_PER_CALL`` pairs
    per engine call."""
    limit = reranker.options.max_document_chars
    results: list[dict[str, Any] | None] = [None] * len(rows)
    valid: list[tuple[int, list[tuple[str, str]]]] = []
    for i, row in enumerate(rows):
        try:
            valid.append((i, _pairs(row, job, limit)))
        except InvalidInputError as exc:
            results[i] = failed(exc)
    if progress and len(valid) < len(rows):
        progress(len(rows) - len(valid))
    for chunk in _chunks(valid):
        for i, outcome in _score_chunk(reranker, chunk, job):
            results[i] = outcome
        if progress:
            progress(len(chunk))
    return results


def failed(exc: Exception) -> dict[str, Any]:
    return {"scores": None, "ranking": None, "windows": None, "error": str(exc)}


def _pairs(row: dict, job: TableJob, limit: int | None) -> list[tuple[str, str]]:
    """The row's (query, candidate) pairs, checked as the engine checks them (InvalidInputError)."""
    from .scoring import check_text, validate_pairs

    if BAD_LINE in row:
        raise InvalidInputError(row[BAD_LINE])
    for name in (job.query_column, job.candidates_column):  # columns are checked for the whole input
        if row.get(name) is None:
            raise InvalidInputError(f"the row has no {name} (no such key, or null)")
    query, candidates = row[job.query_column], row[job.candidates_column]
    check_text(query, "the query")
    if not isinstance(candidates, list):
        kind = type(candidates).__name__
        raise InvalidInputError(f"{job.candidates_column} must be a list of texts, got {kind}")
    return validate_pairs([(query, text) for text in candidates], limit) if candidates else []


def _chunks(valid: list[tuple[int, list]]) -> list[list[tuple[int, list]]]:
    chunks, current, size = [], [], 0
    for item in valid:
        if current and size + len(item[1]) > PAIRS_PER_CALL:
            chunks.append(current)
            current, size = [], 0
        current.append(item)
        size += len(item[1])
    return chunks + ([current] if current else [])


def _score_chunk(reranker, chunk: list[tuple[int, list]], job: TableJob):
    """Score a chunk in one engine call; if it fails (a NaN, say), score its rows one by one so that only
    the failing rows get an error."""
    pairs = [pair for _, row_pairs in chunk for pair in row_pairs]
    try:
        scored = reranker.score_pairs(pairs) if pairs else []
    except BackendError as exc:
        if len(chunk) == 1:
            return [(chunk[0][0], failed(exc))]
        return [item for one in chunk for item in _score_chunk(reranker, [one], job)]
    out, offset = [], 0
    for i, row_pairs in chunk:
        part = scored[offset : offset + len(row_pairs)]
        offset += len(row_pairs)
        out.append((i, row_result(part, [d for _, d in row_pairs], job)))
    return out


def row_result(scored: list, documents: list[str], job: TableJob) -> dict[str, Any]:
    """One row's outputs from its scored pairs, ranked exactly as ``Reranker.rerank`` ranks them."""
    from .reranker import rank
    from .thresholds import sigmoid

    kept = rank(scored, documents, top_n=job.top_n, threshold=job.threshold, return_documents=False)
    windows = [{**asdict(s.window), "truncated": s.truncated} for s in scored]
    return {
        "scores": [sigmoid(s.logit) for s in scored],
        "ranking": [r.index for r in kept],
        "windows": windows,
        "error": None,
    }


def run_on_ray(shards, job, schema, out, address, concurrency, num_cpus, num_gpus, report) -> list[dict]:
    """The shards as a Ray Data dataset, mapped by ``concurrency`` actors; parts are written by them."""
    from .server.ray import disable_usage_stats, thread_env, threads_for

    disable_usage_stats()
    import ray

    started = not ray.is_initialized()
    if started:
        _init_ray(ray, address, concurrency * num_cpus)
    try:
        check_cpus(ray.cluster_resources().get("CPU", 0.0), concurrency, num_cpus)
        if started and address is None:  # a cluster may add GPU nodes on demand; this machine cannot
            check_gpus(ray.cluster_resources().get("GPU", 0.0), concurrency, num_gpus)
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts rows
        dataset = ray.data.from_items([asdict(s) for s in shards], override_num_blocks=len(shards))
        results = dataset.map_batches(
            ShardScorer,
            fn_constructor_kwargs={
                "job": asdict(job), "schema": schema, "output": str(out), "threads": threads_for(num_cpus)
            },
            batch_size=1,
            # one shard in flight per actor: shards are large units, queueing them would unbalance actors
            compute=ray.data.ActorPoolStrategy(size=concurrency, max_tasks_in_flight_per_actor=1),
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            runtime_env={"env_vars": thread_env(num_cpus)},
        )
        done = []
        for row in results.iter_rows():
            done.append(row)
            report.update(int(row["rows"]))
        return done
    finally:
        if started:
            ray.shutdown()


def _init_ray(ray, address: str | None, actor_cpus: float) -> None:
    if address is not None:
        from .server.ray import connect

        connect(address)
        return
    # Logical CPUs: the actors' share plus room for Ray Data's own tasks, at least the machine's cores.
    cpus = max(os.cpu_count() or 1, math.ceil(actor_cpus + RESERVED_CPUS))
    ray.init(address="local", num_cpus=cpus, include_dashboard=False)


def check_cpus(cluster_cpus: float, concurrency: int, num_cpus: float) -> None:
    if concurrency * num_cpus + RESERVED_CPUS > cluster_cpus:
        raise InvalidInputError(
            f"{concurrency} actors x {num_cpus:g} CPUs leave less than {RESERVED_CPUS:g} of the cluster's "
            f"{cluster_cpus:g} CPUs for Ray Data's own tasks, and the job would hang; lower concurrency "
            "or num_cpus (fractions such as 0.5 are allowed)"
        )


def check_gpus(machine_gpus: float, concurrency: int, num_gpus: float) -> None:
    if concurrency * num_gpus > machine_gpus:
        raise InvalidInputError(
            f"{concurrency} actors x {num_gpus:g} GPUs do not fit this machine's {machine_gpus:g} GPUs, and "
            "the job would wait for them forever; lower concurrency or num_gpus (0: run on CPU)"
        )


class _Report:
    def __init__(self, fn: Callable[[int, int], None] | None, bar, total: int):
        self.fn, self.bar, self.total, self.done = fn, bar, total, 0

    def update(self, rows: int) -> None:
        self.done += rows
        if self.bar is not None:
            self.bar.update(rows)
        if self.fn is not None:
            self.fn(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress(progress, total: int) -> _Report:
    if callable(progress):
        return _Report(progress, None, total)
    if not progress:
        return _Report(None, None, total)
    import sys

    from tqdm import tqdm

    bar = tqdm(total=total, desc="reranking", unit="row", disable=None, file=sys.stderr)
    return _Report(None, bar, total)

