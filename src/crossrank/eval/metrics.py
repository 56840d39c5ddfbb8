"""Ranking metrics via ``ranx`` (Bassani 2022); no hand-written formulas.

Runs are given as ranked id lists (best first) and handed to ranx with strictly decreasing scores, so
the metrics see exactly our order (ranx would otherwise break score ties its own way).
"""

from __future__ import annotations

import logging
import warnings

from ..errors import optional_import

logger = logging.getLogger(__name__)

METRICS = ("ndcg@10", "mrr@10", "map", "recall@100")


def to_ranx_run(ranked: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Ranked lists → ``{qid: {doc: score}}`` with scores ``n, n-1, ..., 1`` (pure)."""
    return {q: {d: float(len(docs) - i) for i, d in enumerate(docs)} for q, docs in ranked.items()}


def evaluate(
    qrels: dict[str, dict[str, int]], ranked: dict[str, list[str]], metrics: tuple[str, ...] = METRICS
) -> dict[str, float]:
    """Mean of each metric over the queries of ``qrels``; a query with no ranked list scores 0."""
    per_query = evaluate_per_query(qrels, ranked, metrics)
    n = len(qrels)
    return {m: sum(per_query[m].values()) / n if n else 0.0 for m in metrics}


def evaluate_per_query(
    qrels: dict[str, dict[str, int]], ranked: dict[str, list[str]], metrics: tuple[str, ...] = METRICS
) -> dict[str, dict[str, float]]:
    """``{metric: {qid: value}}`` for every query of ``qrels`` (0 where the list is empty or missing)."""
    ranx = optional_import("ranx", "retrieval")
    present = [q for q in qrels if ranked.get(q)]
    out = {m: dict.fromkeys(qrels, 0.0) for m in metrics}
    if not present:
        return out
    run = ranx.Run(to_ranx_run({q: ranked[q] for q in present}))
    judged = ranx.Qrels({q: qrels[q] for q in present})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety chatter
        ranx.evaluate(judged, run, list(metrics), return_mean=False, make_comparable=False)
    for metric in metrics:
        values = run.scores[metric]
        for q in present:
            out[metric][q] = float(values[q])
    return out
