"""Pure functions: score cut-offs applied after reranking.

The dynamic threshold adapts to how spread out a query's scores are. When the top scores are close
together (low σ) the model is unsure which documents matter, so the bar is low (keep more context);
when they are spread out (high σ) there is a clear separation and the bar is high.
"""

from __future__ import annotations

import math
import numbers
import statistics
from collections.abc import Iterable, Sequence

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


def check_probabilities(scores: Iterable[float], what: str = "scores") -> list[float]:
    """``scores`` as floats, refused (:class:`InvalidInputError`) unless each is a finite number in
    [0, 1]: the σ rule is defined on normalised scores, and a NaN would silently sort anywhere."""
    if isinstance(scores, str | bytes | dict) or not isinstance(scores, Iterable):
        raise InvalidInputError(f"{what} must be a list of numbers in [0, 1], got {type(scores).__name__}")
    values = []
    for i, score in enumerate(scores):
        if isinstance(score, bool) or not isinstance(score, numbers.Real):
            raise InvalidInputError(f"{what}[{i}] must be a number in [0, 1], got {type(score).__name__}")
        value = float(score)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise InvalidInputError(
                f"{what}[{i}] is {value!r}, not a probability in [0, 1]; pass normalised scores "
                "(RerankResult.score, compute_score(..., normalize=True) or sigmoid(logit)), not raw logits"
            )
        values.append(value)
    return values


def _check_top_k(top_k) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidInputError(f"top_k must be a positive integer (scores the σ rule uses), got {top_k!r}")
    return top_k


def top_sigma(scores: Sequence[float], top_k: int = DYNAMIC_TOP_K) -> float:
    """σ (population standard deviation) of the ``top_k`` highest scores; 0 for fewer than two.
    Scores must be normalised (finite, in [0, 1]); anything else is an :class:`InvalidInputError`.

    >>> top_sigma([0.9, 0.1])
    0.4
    """
    top = sorted(check_probabilities(scores), reverse=True)[: _check_top_k(top_k)]
    return statistics.pstdev(top) if len(top) > 1 else 0.0


def dynamic_threshold(scores: Sequence[float], top_k: int = DYNAMIC_TOP_K) -> float:
    """The σ rule on :func:`top_sigma` of the normalised scores: σ < 0.05 → 0.40; σ > 0.15 → 0.65;
    linear in between. A single score has σ = 0; no scores give 0.40.

    >>> dynamic_threshold([0.9, 0.1])
    0.65
    """
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
    number = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)  # numpy's too
    if not number or not 0.0 <= threshold <= 1.0:
        raise InvalidInputError(f"threshold must be a number in [0, 1] or 'dynamic', got {threshold!r}")
    return float(threshold)


def check_threshold(threshold: float | str | None) -> float | str | None:
    """A ``threshold`` checked before any score exists: ``None``, ``"dynamic"`` (any capitalisation) or a
    number in [0, 1] (returned as a float), so that equal options are recorded alike."""
    if isinstance(threshold, str) and threshold.strip().lower() == "dynamic":
        return "dynamic"
    return resolve_threshold(threshold, [])


def check_min_score(min_score) -> float | None:
    """``min_score`` as a float: ``None`` or a fixed number in [0, 1] (``"dynamic"`` is a threshold)."""
    if min_score is None:
        return None
    number = isinstance(min_score, numbers.Real) and not isinstance(min_score, bool)
    if not number or not 0.0 <= min_score <= 1.0:
        raise InvalidInputError(
            f"min_score must be a number in [0, 1] or None, got {min_score!r}"
            + ("; for the σ rule pass threshold='dynamic'" if isinstance(min_score, str) else "")
        )
    return float(min_score)


def check_top_n(top_n) -> int | None:
    """``top_n`` as an int: ``None`` or a non-negative integer (numpy's too); 0 and ``None`` keep all."""
    integer = isinstance(top_n, numbers.Integral) and not isinstance(top_n, bool)
    if top_n is not None and (not integer or top_n < 0):
        raise InvalidInputError(f"top_n must be a non-negative integer (0 or None: all), got {top_n!r}")
    return None if top_n is None else int(top_n)


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
    top_n = check_top_n(top_n)
    cut = resolve_threshold(threshold, [s for _, s in ranked])
    floor = check_min_score(min_score)
    bars = [b for b in (cut, floor) if b is not None]
    bar = max(bars) if bars else None
    kept = [item for item in ranked if bar is None or item[1] >= bar]
    if top_n:
        kept = kept[:top_n]
    return kept, cut
