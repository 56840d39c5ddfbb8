"""Accuracy gate: does a fast backend rank like the fp32 reference on real query lists?

Pure metrics (Spearman per query list, top-1 agreement, max absolute logit difference), a runner that
scores query lists with a reranker through the one scoring engine, and the gate set shipped in the package
(:func:`gate_set`: permissively licensed English and Chinese query lists, see ``GATE_SET.md``) on which
``backend="auto"`` gates every fast backend against torch fp32 before choosing it (:mod:`.auto`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

MIN_SPEARMAN = 0.99  # mean over query lists
MIN_TOP1 = 0.95  # share of query lists whose best document is the same
MAX_ABS_FP32 = 1e-3  # exact backends (fp32 ONNX vs fp32 torch): max |logit difference|


@dataclass(frozen=True, slots=True)
class GateResult:
    """How a candidate's logits compare with the reference's, and whether that passes."""

    spearman_mean: float
    spearman_min: float
    top1_agreement: float
    max_abs_diff: float
    n_queries: int
    n_pairs: int
    passed: bool
    rule: str

    def as_dict(self) -> dict:
        return asdict(self)


def rankdata(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (as ``scipy.stats.rankdata``)."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    for end in range(1, len(x) + 1):
        if end == len(x) or sorted_x[end] != sorted_x[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson on average ranks); 1.0 for lists shorter than two."""
    if len(a) < 2:
        return 1.0
    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return 1.0 if ra.std() == rb.std() else 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def compare(
    reference: Sequence[Sequence[float]],
    candidate: Sequence[Sequence[float]],
    *,
    min_spearman: float = MIN_SPEARMAN,
    min_top1: float = MIN_TOP1,
    max_abs: float | None = None,
) -> GateResult:
    """Compare per-query logit lists. With ``max_abs`` the gate is exactness; else ranking agreement."""
    rhos = [spearman(r, c) for r, c in zip(reference, candidate, strict=True)]
    top1 = [int(np.argmax(r)) == int(np.argmax(c)) for r, c in zip(reference, candidate, strict=True)]
    diffs = [float(np.max(np.abs(np.subtract(r, c)))) for r, c in zip(reference, candidate, strict=True)]
    result = {
        "spearman_mean": float(np.mean(rhos)),
        "spearman_min": float(np.min(rhos)),
        "top1_agreement": float(np.mean(top1)),
        "max_abs_diff": float(np.max(diffs)),
    }
    if max_abs is not None:
        passed, rule = result["max_abs_diff"] <= max_abs, f"max |logit diff| <= {max_abs:g}"
    else:
        passed = result["spearman_mean"] >= min_spearman and result["top1_agreement"] >= min_top1
        rule = f"mean Spearman >= {min_spearman:g} and same top-1 on >= {min_top1:.0%} of queries"
    return GateResult(
        **result, n_queries=len(rhos), n_pairs=sum(map(len, reference)), passed=passed, rule=rule
    )


GATE_SET_FILE = Path(__file__).with_name("gate_set.jsonl.gz")


@dataclass(frozen=True, slots=True)
class GateList:
    """One query of the shipped gate set with its candidate texts (``licence``: of its ``source``)."""

    id: str
    lang: str
    source: str
    licence: str
    query: str
    candidates: tuple[str, ...]


def gate_set(path: str | Path | None = None) -> list[GateList]:
    """The query lists of the shipped gate set (built by ``scripts/build_gate_set.py``)."""
    import gzip
    import json

    from ..errors import BackendError

    path = Path(path) if path else GATE_SET_FILE
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
        return [
            GateList(r["id"], r["lang"], r["source"], r["licence"], r["query"], tuple(r["candidates"]))
            for r in rows
        ]
    except (OSError, ValueError, KeyError) as exc:
        raise BackendError(
            f"the accuracy gate set {path} is missing or damaged ({exc}); reinstall crossrank"
        ) from exc


def gate_set_sha256(path: str | Path | None = None) -> str:
    import hashlib

    return hashlib.sha256(Path(path or GATE_SET_FILE).read_bytes()).hexdigest()


def wikiqa_lists(
    path: str | Path, n_questions: int | None = None, min_candidates: int = 3
) -> list[tuple[str, list[str]]]:
    """``(question, candidate sentences)`` from WikiQA's TSV, in file order, lists of ``min_candidates``+.

    Questions without a correct sentence are kept: the gate compares rankings, not relevance."""
    from ..eval.datasets import read_wikiqa

    lists = [
        (q.question, [text for _, text, _ in q.sentences])
        for q in read_wikiqa([Path(path)]).values()
        if len(q.sentences) >= min_candidates
    ]
    return lists[:n_questions] if n_questions else lists


def score_lists(reranker, lists: Sequence[tuple[str, Sequence[str]]], progress=None) -> list[list[float]]:
    """Logits per query list, all pairs scored in one engine call (so batching matches real use);
    ``progress(rows_done, rows_total)`` as in :meth:`crossrank.Reranker.score_pairs`."""
    pairs = [(q, d) for q, docs in lists for d in docs]
    logits = [s.logit for s in reranker.score_pairs(pairs, progress=progress)]
    out, i = [], 0
    for _, docs in lists:
        out.append(logits[i : i + len(docs)])
        i += len(docs)
    return out


def gate_record(result: GateResult, data: str) -> dict:
    """What is stored in an export's manifest after a gate run."""
    now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    return {**result.as_dict(), "data": data, "reference": "torch fp32", "checked_at": now}


def torch_gate_file(model_dir: str | Path, dtype: str) -> Path:
    """Where the gate of torch ``dtype`` on this machine is recorded for this model's current weights:
    ``$CROSSRANK_HOME/gates/<fingerprint>-torch-<dtype>.json`` (the fingerprint covers the source files,
    crossrank and torch versions, so a changed model or library is never covered by an old record)."""
    import torch

    from .. import __version__
    from ..models.build import crossrank_home
    from .onnx_export import cache_key, source_fingerprint

    key = cache_key(
        {
            "source": source_fingerprint(Path(model_dir)),
            "crossrank": __version__,
            "torch": torch.__version__,
        }
    )
    return crossrank_home() / "gates" / f"{key}-torch-{dtype}.json"


def save_torch_gate(model_dir: str | Path, dtype: str, record: dict) -> Path:
    import json

    from ..fsutil import write_text_atomic

    path = torch_gate_file(model_dir, dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")
    return path


def torch_gate_passed(model_dir: str | Path, dtype: str) -> bool:
    import json

    try:
        return bool(json.loads(torch_gate_file(model_dir, dtype).read_text(encoding="utf-8")).get("passed"))
    except (OSError, ValueError):
        return False
