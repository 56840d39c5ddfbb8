"""Ranking metrics (MAP, MRR, NDCG@10) over per-query candidate scores, computed with ``ranx``.

Shared by training-time validation and the held-out evaluations; importing this module does not import
torch. Queries without any relevant candidate are left out (the WikiQA convention).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import optional_import

METRICS = ("map", "mrr", "ndcg@10")


def ranking_metrics(
    scores: Mapping[str, Sequence[float]],
    labels: Mapping[str, Sequence[int]],
    metrics: Sequence[str] = METRICS,
) -> dict[str, float]:
    """Mean metrics over queries. ``scores[q][i]`` is candidate ``i``'s score, ``labels[q][i]`` its
    relevance (0 = not relevant). Returns ``{metric: value, "queries": n}``."""
    ranx = optional_import("ranx", "retrieval")
    qrels, run = {}, {}
    for qid, grades in labels.items():
        if len(grades) != len(scores[qid]):
            raise ValueError(f"query {qid}: {len(scores[qid])} scores for {len(grades)} labels")
        relevant = {f"d{i}": int(g) for i, g in enumerate(grades) if g > 0}
        if not relevant:
            continue
        qrels[qid] = relevant
        # ranx breaks ties by document id; a tiny index-based offset makes ties rank in input order.
        run[qid] = {f"d{i}": float(s) - i * 1e-9 for i, s in enumerate(scores[qid])}
    if not qrels:
        return {m: float("nan") for m in metrics} | {"queries": 0}
    result = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), list(metrics), make_comparable=True)
    result = result if isinstance(result, dict) else {metrics[0]: result}
    return {m: float(result[m]) for m in metrics} | {"queries": len(qrels)}
