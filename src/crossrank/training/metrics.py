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


def calibration(
    logits: Mapping[str, Sequence[float]], labels: Mapping[str, Sequence[int]]
) -> dict[str, float]:
    """How far ``sigmoid(logit)`` can be read as a relevance probability, over all pairs of all queries:
    the Brier score and the expected calibration error (:mod:`crossrank.eval.cutoffs`) and the shares of
    relevant pairs scoring at least 0.5 and of non-relevant ones below it."""
    import numpy as np

    from ..eval.cutoffs import brier_score, expected_calibration_error
    from ..thresholds import sigmoid  # the activation every score path uses

    p = np.array([sigmoid(float(z)) for q in labels for z in logits[q]], dtype=np.float64)
    y = np.concatenate([np.asarray(labels[q], dtype=np.float64) > 0 for q in labels])
    return {
        "brier": brier_score(p.tolist(), y.astype(int).tolist()),
        "ece": expected_calibration_error(p.tolist(), y.astype(int).tolist()),
        "relevant_at_least_0.5": float(np.mean(p[y] >= 0.5)) if y.any() else float("nan"),
        "other_below_0.5": float(np.mean(p[~y] < 0.5)) if (~y).any() else float("nan"),
    }
