"""Training data: read ``rank_*`` JSON lines, validate each line, split off a held-out set, sample groups.

A ``rank_*`` line is ``{"source", "lang", "query", "pos": [text], "neg": [text], "neg_kind", "graded"?}``.
Malformed lines are logged with their file and line number and skipped; the rest of the file is used.

Graded records (``graded``: ``[[text, grade], ...]``) are mapped to positives and negatives by one rule:
``grade >= min_positive_grade`` (default 2) is a positive, ``grade <= max_negative_grade`` (default 0) a
negative, and grades in between (partially relevant) are left out. The record's own ``pos``/``neg`` lists
are then replaced by that mapping.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError

logger = logging.getLogger(__name__)

MIN_POSITIVE_GRADE = 2
MAX_NEGATIVE_GRADE = 0


@dataclass(frozen=True, slots=True)
class RankRecord:
    """One query with its relevant (``pos``) and non-relevant (``neg``) passages."""

    source: str
    lang: str
    query: str
    pos: tuple[str, ...]
    neg: tuple[str, ...]
    origin: str = ""  # "file:line", for messages


@dataclass(slots=True)
class LoadReport:
    """What loading skipped, line by line: ``(file, line number, reason)``."""

    problems: list[tuple[str, int, str]] = field(default_factory=list)
    loaded: int = 0

    def skip(self, path: str, number: int, reason: str) -> None:
        self.problems.append((path, number, reason))
        logger.warning("%s:%d: skipped: %s", path, number, reason)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    from ..textfiles import read_lines  # UTF-8 (BOM dropped); a bad byte is an error naming file:line

    yield from read_lines(path)


def _text_list(value, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{name!r} must be a list of strings, got {type(value).__name__}")
    bad = [i for i, t in enumerate(value) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"{name!r} item {bad[0]} is not a string")
    return tuple(t for t in value if t.strip())


def _graded(value, min_pos: int, max_neg: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if not isinstance(value, list):
        raise ValueError("'graded' must be a list of [text, grade] pairs")
    pos, neg = [], []
    for i, item in enumerate(value):
        ok = isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
        if not ok or isinstance(item[1], bool) or not isinstance(item[1], int | float):
            raise ValueError(f"'graded' item {i} is not a [text, number] pair")
        if not item[0].strip():
            continue
        if item[1] >= min_pos:
            pos.append(item[0])
        elif item[1] <= max_neg:
            neg.append(item[0])
    return tuple(pos), tuple(neg)


def parse_record(
    line: str, origin: str, min_pos: int = MIN_POSITIVE_GRADE, max_neg: int = MAX_NEGATIVE_GRADE
) -> RankRecord:
    """Validate one JSON line; raise ``ValueError`` saying what is wrong."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "a" in obj and "b" in obj and "query" not in obj:
        raise ValueError(
            "a pair_* record (a, b, label); `crossrank train` needs rank_* records (query, pos, neg)"
        )
    for key in ("query", "lang"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise ValueError(f"missing or empty {key!r} (a non-empty string)")
    if "pos" not in obj and "graded" not in obj:
        raise ValueError("missing 'pos' (a list of relevant passages)")
    pos = _text_list(obj.get("pos", []), "pos")
    neg = _text_list(obj.get("neg", []), "neg")
    if obj.get("graded") is not None:
        pos, neg = _graded(obj["graded"], min_pos, max_neg)
    if not pos:
        raise ValueError("no positive passage (empty 'pos', or no graded item reaches the positive grade)")
    source = obj.get("source") if isinstance(obj.get("source"), str) else ""
    neg = tuple(n for n in dict.fromkeys(neg) if n not in set(pos))
    return RankRecord(
        source or origin.split(":")[0], obj["lang"].strip(), obj["query"].strip(), pos, neg, origin
    )


def load_rank_file(path: str | Path, report: LoadReport | None = None, **grades) -> list[RankRecord]:
    """Read one ``rank_*`` JSON-lines file (optionally gzipped); malformed lines are reported and skipped."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"training file {path} does not exist")
    report = report if report is not None else LoadReport()
    records = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            records.append(parse_record(line, f"{path.name}:{number}", **grades))
        except ValueError as exc:
            report.skip(str(path), number, str(exc))
    report.loaded += len(records)
    logger.info("%s: %d records", path.name, len(records))
    return records


def load_rank_files(
    paths: Sequence[str | Path], report: LoadReport | None = None, **grades
) -> list[RankRecord]:
    """Read several files; raise when none of them holds a usable record."""
    report = report if report is not None else LoadReport()
    records = [r for p in paths for r in load_rank_file(p, report, **grades)]
    if not records:
        raise InvalidInputError(
            f"no usable training records in {', '.join(map(str, paths))} "
            f"({len(report.problems)} malformed lines); see the log for line numbers"
        )
    return records


def is_held_out(record: RankRecord, percent: float, seed: int) -> bool:
    """Deterministic split by a hash of (seed, source, query): the same query is always on the same side."""
    digest = hashlib.sha256(f"{seed}\x1f{record.source}\x1f{record.query}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percent * 100


def split_held_out(records: Sequence[RankRecord], percent: float, seed: int):
    """``(train, held_out)``; ``percent`` of each source's queries (by hash) are held out."""
    train, held = [], []
    for record in records:
        (held if is_held_out(record, percent, seed) else train).append(record)
    return train, held


class GroupSampler:
    """Language-balanced groups: one positive and ``group_size - 1`` negatives per query.

    Each step's groups are a pure function of ``(seed, step)``, so a resumed run draws exactly what an
    uninterrupted one would. A language is drawn uniformly (English and Chinese equally often), then a
    source within it (by ``source_weights``, default proportional to the square root of its size), then a
    query. Negatives are drawn from the record's own negatives plus mined ones; when too few, passages of
    other queries of the same source fill the group.
    """

    def __init__(
        self,
        records: Sequence[RankRecord],
        group_size: int,
        seed: int,
        mined: dict[int, tuple[str, ...]] | None = None,
        source_weights: dict[str, float] | None = None,
    ):
        if group_size < 2:
            raise InvalidInputError(
                f"group_size must be at least 2 (one positive, one negative), got {group_size}"
            )
        self.records, self.group_size, self.seed = list(records), group_size, seed
        self.mined = mined or {}
        by_source: dict[str, list[int]] = {}
        for i, r in enumerate(self.records):
            by_source.setdefault(r.source, []).append(i)
        self.by_source = by_source
        self.langs = sorted({r.lang for r in self.records})
        self.sources = {
            lang: sorted(s for s, ids in by_source.items() if self.records[ids[0]].lang == lang)
            for lang in self.langs
        }
        self.weights = {lang: self._weights(srcs, source_weights) for lang, srcs in self.sources.items()}

    def _weights(self, sources: list[str], given: dict[str, float] | None) -> np.ndarray:
        if given:
            w = np.array([float(given.get(s, 0.0)) for s in sources])
            if w.sum() <= 0:
                w = np.ones(len(sources))
        else:
            w = np.sqrt([len(self.by_source[s]) for s in sources])
        return w / w.sum()

    def groups(self, step: int, n_groups: int) -> list[tuple[str, list[str]]]:
        """The ``(query, [positive, negatives...])`` groups of optimisation step ``step``."""
        rng = np.random.default_rng([self.seed, step])
        return [self._group(rng) for _ in range(n_groups)]

    def _group(self, rng: np.random.Generator) -> tuple[str, list[str]]:
        lang = self.langs[rng.integers(len(self.langs))]
        sources = self.sources[lang]
        source = sources[rng.choice(len(sources), p=self.weights[lang])]
        ids = self.by_source[source]
        index = ids[rng.integers(len(ids))]
        record = self.records[index]
        positive = record.pos[rng.integers(len(record.pos))]
        pool = list(dict.fromkeys(record.neg + self.mined.get(index, ())))
        need = self.group_size - 1
        take = [pool[i] for i in rng.permutation(len(pool))[:need]]
        for attempt in range(40 * need):
            if len(take) >= need:
                break
            pool_ids = ids if attempt < 20 * need else range(len(self.records))  # then any source
            other = self.records[pool_ids[rng.integers(len(pool_ids))]]
            cand = other.pos[0] if rng.random() < 0.5 or not other.neg else other.neg[0]
            if cand not in record.pos and cand not in take:
                take.append(cand)
        if len(take) < need:
            raise InvalidInputError(f"cannot find {need} negatives for {record.origin}; lower group_size")
        return record.query, [positive, *take]
