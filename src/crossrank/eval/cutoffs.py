"""Pure functions: how well normalised scores serve as cut-offs and read as probabilities.

Input is each query's reranked list as ``(doc_id, score)`` pairs, best first, with scores in [0, 1],
and the qrels (``{qid: {doc_id: grade}}``, grade > 0 = relevant).

Kept-set metrics apply a cut-off rule (:func:`crossrank.thresholds.select`, the rule the library
applies) to each list and average over the queries whose list holds at least one relevant candidate:
precision of the kept set (0 when nothing is kept: the reader got no answer), recall against the
relevant candidates of the list, their F1, and the share of queries that keep at least one relevant
candidate. The Brier score and the expected calibration error (ECE) are taken over every pair of
every list; ECE uses equal-width bins weighted by their number of pairs (Naeini et al. 2015).

A mean over nothing (no list holds a relevant candidate, no pair was scored) is ``None`` in the reports,
not NaN: it is undefined, and NaN is not JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..thresholds import select

# The rules `crossrank eval` reports: the σ rule, a fixed bar, and plain top-n cuts.
RULES: dict[str, dict] = {
    "dynamic": {"threshold": "dynamic"},
    "fixed_0.5": {"threshold": 0.5},
    "top_1": {"top_n": 1},
    "top_3": {"top_n": 3},
}
BINS = 10

Scored = Mapping[str, Sequence[tuple[str, float]]]
Qrels = Mapping[str, Mapping[str, int]]


def kept_set_metrics(scored: Scored, qrels: Qrels, rule: Mapping) -> dict[str, float | None]:
    """Mean per-query precision, recall, F1 of the kept set, share keeping a relevant one, mean kept
    (each ``None`` when no list holds a relevant candidate), and ``queries``, how many lists do."""
    totals = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "keeps_relevant": 0.0, "mean_kept": 0.0}
    n = 0
    for qid, ranked in scored.items():
        relevant = {d for d, g in qrels.get(qid, {}).items() if g > 0}
        n_relevant = sum(1 for d, _ in ranked if d in relevant)
        if not n_relevant:
            continue
        kept, _ = select(list(ranked), **rule)
        hits = sum(1 for d, _ in kept if d in relevant)
        precision = hits / len(kept) if kept else 0.0
        recall = hits / n_relevant
        totals["precision"] += precision
        totals["recall"] += recall
        totals["f1"] += 2 * precision * recall / (precision + recall) if hits else 0.0
        totals["keeps_relevant"] += hits > 0
        totals["mean_kept"] += len(kept)
        n += 1
    return {k: v / n if n else None for k, v in totals.items()} | {"queries": n}


def _pairs(scored: Scored, qrels: Qrels) -> tuple[list[float], list[int]]:
    probs, labels = [], []
    for qid, ranked in scored.items():
        grades = qrels.get(qid, {})
        for doc, score in ranked:
            probs.append(float(score))
            labels.append(int(grades.get(doc, 0) > 0))
    return probs, labels


def brier_score(probs: Sequence[float], labels: Sequence[int]) -> float:
    """Mean squared difference between probabilities and 0/1 outcomes (Brier 1950)."""
    if not probs:
        return float("nan")
    return sum((p - y) ** 2 for p, y in zip(probs, labels, strict=True)) / len(probs)


def reliability_bins(probs: Sequence[float], labels: Sequence[int], bins: int = BINS) -> list[dict]:
    """Per equal-width bin of the score: pairs, mean score and share relevant (empty bins left out)."""
    sums = [[0, 0.0, 0] for _ in range(bins)]
    for p, y in zip(probs, labels, strict=True):
        b = sums[min(int(p * bins), bins - 1)]
        b[0] += 1
        b[1] += p
        b[2] += y
    return [
        {"low": i / bins, "high": (i + 1) / bins, "pairs": n, "mean_score": s / n, "share_relevant": r / n}
        for i, (n, s, r) in enumerate(sums)
        if n
    ]


def expected_calibration_error(probs: Sequence[float], labels: Sequence[int], bins: int = BINS) -> float:
    """Σ over bins of (pairs in bin / all pairs) × |mean score − share relevant|."""
    total = len(probs)
    if not total:
        return float("nan")
    return sum(
        b["pairs"] / total * abs(b["mean_score"] - b["share_relevant"])
        for b in reliability_bins(probs, labels, bins)
    )


def score_report(scored: Scored, qrels: Qrels, rules: Mapping[str, Mapping] = RULES) -> dict:
    """Kept-set metrics per rule, and the calibration of the scores, for ``crossrank eval``."""
    probs, labels = _pairs(scored, qrels)
    return {
        "cutoffs": {name: kept_set_metrics(scored, qrels, rule) for name, rule in rules.items()},
        "calibration": {
            "pairs": len(probs),
            "share_relevant": sum(labels) / len(labels) if labels else None,
            "brier": brier_score(probs, labels) if probs else None,
            "ece": expected_calibration_error(probs, labels) if probs else None,
            "bins": reliability_bins(probs, labels),
        },
    }
