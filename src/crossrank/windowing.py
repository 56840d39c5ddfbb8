"""Pure functions: split a long document into overlapping token windows and aggregate window scores.

A document whose tokens do not fit beside the query is scored window by window; each window is paired
with the query and scored on its own, and the document's score is an aggregate of its windows' scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from .errors import InvalidInputError

Aggregate = Literal["max", "mean", "weighted", "first"]
AGGREGATES: tuple[str, ...] = ("max", "mean", "weighted", "first")
Truncate = Literal["right", "left"]


def default_stride(window: int) -> int:
    """Default step between window starts: three quarters of a window, so neighbours overlap by 25%."""
    return max(1, window - window // 4)


def plan_windows(
    n_tokens: int,
    window: int,
    stride: int | None = None,
    max_windows: int | None = None,
    truncate: Truncate | None = None,
) -> tuple[list[tuple[int, int]], bool]:
    """Token ranges ``[start, end)`` that cover a document of ``n_tokens`` tokens.

    Windows are ``window`` tokens long and start every ``stride`` tokens; the last window ends at the
    document's end (it is shifted back to stay full-length, so no window is a short tail). With
    ``truncate="right"`` only the first window is kept, with ``"left"`` only the last. At most
    ``max_windows`` windows are kept (the first ones). Returns the ranges and whether any token was
    left unscored.

    >>> plan_windows(10, 4, 3)
    ([(0, 4), (3, 7), (6, 10)], False)
    """
    numbers = {"n_tokens": n_tokens, "window": window, "stride": stride, "max_windows": max_windows}
    for name, value in numbers.items():
        optional = name in ("stride", "max_windows")
        if (value is not None or not optional) and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInputError(f"{name} must be an integer, got {value!r}")
    if n_tokens < 0:
        raise InvalidInputError(f"n_tokens must be >= 0, got {n_tokens}")
    if max_windows is not None and max_windows < 1:
        raise InvalidInputError(f"max_windows must be at least 1, got {max_windows}")
    if truncate not in (None, "right", "left"):
        raise InvalidInputError(f"truncate must be None, 'right' or 'left', got {truncate!r}")
    if window < 1:
        raise InvalidInputError(f"window must be at least 1 token, got {window}")
    stride = default_stride(window) if stride is None else stride
    if stride < 1:
        raise InvalidInputError(f"stride must be at least 1 token, got {stride}")
    if stride > window:
        raise InvalidInputError(
            f"stride ({stride}) is larger than window ({window}): tokens between windows would never be "
            "scored; use a stride <= window"
        )
    if n_tokens <= window:
        return [(0, n_tokens)], False
    if truncate == "right":
        return [(0, window)], True
    if truncate == "left":
        return [(n_tokens - window, n_tokens)], True
    count = 1 + (n_tokens - window + stride - 1) // stride  # integer ceil: exact for any size
    truncated = max_windows is not None and count > max_windows
    kept = max_windows if truncated else count  # only the windows kept are listed (bounded work)
    starts = [min(i * stride, n_tokens - window) for i in range(kept)]
    return [(s, s + window) for s in starts], truncated


def aggregate(logits: Sequence[float], mode: str = "max") -> tuple[float, int]:
    """Combine window logits into one document logit; returns ``(logit, index_of_best_window)``.

    ``max``: the best window (a document answers if any part does). ``mean``: the average.
    ``weighted``: softmax-weighted average, each window weighted by ``exp(logit)`` — importance-weighted,
    between mean and max. ``first``: the first window only (plain truncation).
    The reported window is always the highest-scoring one (the first for ``first``).
    """
    if not logits:
        raise InvalidInputError("cannot aggregate zero windows")
    best = max(range(len(logits)), key=lambda i: (logits[i], -i))
    if mode == "max":
        return float(logits[best]), best
    if mode == "first":
        return float(logits[0]), 0
    if mode == "mean":
        return float(sum(logits) / len(logits)), best
    if mode == "weighted":
        top = logits[best]
        weights = [math.exp(x - top) for x in logits]
        return float(sum(w * x for w, x in zip(weights, logits, strict=True)) / sum(weights)), best
    raise InvalidInputError(f"unknown aggregate {mode!r}; choose one of {', '.join(AGGREGATES)}")
