"""Pure functions: score cut-offs applied after reranking.

The dynamic threshold adapts to how spread out a query's scores are. When the top scores are close
together (low σ) the model is unsure which documents matter, so the bar is low (keep more context);
when they are spread out (high σ) there is a clear separation and the bar is high.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from .errors import InvalidInputError

SIGMA_LOW, SIGMA_HIGH = 0.05, 0.15
THRESHOLD_LOW, THRESHOLD_HIGH = 0.40, 0.65
DYNAMIC_TOP_K = 10


def sigmoid(x: float) -> float:
    """Numerically stable logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def top_sigma(scores: Sequence[float], top_k: int = DYNAMIC_TOP_K) -> float:
    """σ (population standard deviation) of the ``top_k`` highest scores; 0 for fewer than two.

    >>> top_sigma([0.9, 0.1])
    0.4
    """
    top = sorted(scores, reverse=True)[:top_k]
    return statistics.pstdev(top) if len(top) > 1 else 0.0


def dynamic_threshold(scores: Sequence[float], top_k: int = DYNAMIC_TOP_K) -> float:
    """The σ rule on :func:`top_sigma` of the normalised scores: σ < 0.05 → 0.40; σ > 0.15 → 0.65;
    linear in between. A single score has σ = 0.

    >>> dynamic_threshold([0.9, 0.1])
    0.65
    """
    if not scores:
        return THRESHOLD_LOW
    sigma = top_sigma(scores, top_k)
    if sigma <= SIGMA_LOW:
        return THRESHOLD_LOW
    if sigma >= SIGMA_HIGH:
        return THRESHOLD_HIGH
    fraction = (sigma - SIGMA_LOW) / (SIGMA_HIGH - SIGMA_LOW)
    return THRESHOLD_LOW + fraction * (THRESHOLD_HIGH - THRESHOLD_LOW)


def resolve_threshold(threshold: float | str | None, scores: Sequence[float]) -> float | None:
    """Turn a user's ``threshold`` (``None``, a number in [0, 1], or ``"dynamic"``) into a number."""
    if threshold is None:
        return None
    if isinstance(threshold, str):
        if threshold.strip().lower() == "dynamic":
            return dynamic_threshold(scores)
        try:
            threshold = float(threshold)
        except ValueError:
            raise InvalidInputError(
                f"threshold must be a number in [0, 1] or 'dynamic', got {threshold!r}"
            ) from None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise InvalidInputError(f"threshold must be a number in [0, 1] or 'dynamic', got {threshold!r}")
    return float(threshold)


def select(
    ranked: Sequence[tuple[int, float]],
    *,
    top_n: int | None = None,
    threshold: float | str | None = None,
    min_score: float | None = None,
) -> tuple[list[tuple[int, float]], float | None]:
    """Apply the cut-offs to ``(index, normalised_score)`` pairs already sorted best first.

    Keeps scores ``>=`` the threshold (fixed or dynamic) and ``>= min_score``, then the first ``top_n``.
    Returns the kept pairs and the threshold that was applied (``None`` when there was none).
    """
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 0):
        raise InvalidInputError(f"top_n must be a non-negative integer or None, got {top_n!r}")
    cut = resolve_threshold(threshold, [s for _, s in ranked])
    floor = resolve_threshold(min_score, []) if min_score is not None else None
    bars = [b for b in (cut, floor) if b is not None]
    bar = max(bars) if bars else None
    kept = [item for item in ranked if bar is None or item[1] >= bar]
    if top_n is not None and top_n > 0:
        kept = kept[:top_n]
    return kept, cut
