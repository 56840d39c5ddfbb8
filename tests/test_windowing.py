import math

import pytest

from crossrank.errors import InvalidInputError
from crossrank.windowing import aggregate, default_stride, plan_windows


def covered(spans):
    return {t for s, e in spans for t in range(s, e)}


@pytest.mark.parametrize("n", [1, 5, 99, 100, 101, 257, 1000, 4097])
@pytest.mark.parametrize("window,stride", [(100, 75), (100, 100), (64, 1), (7, 3)])
def test_windows_cover_the_whole_document(n, window, stride):
    spans, truncated = plan_windows(n, window, stride)
    assert not truncated
    assert covered(spans) == set(range(n))
    assert all(e - s == min(window, n) for s, e in spans), "every window is full-length"
    assert spans[0][0] == 0 and spans[-1][1] == n
    starts = [s for s, _ in spans]
    assert starts == sorted(set(starts)), "no duplicate windows"


def test_short_document_is_one_window():
    assert plan_windows(10, 100) == ([(0, 10)], False)


def test_default_stride_overlaps_a_quarter():
    assert default_stride(400) == 300
    spans, _ = plan_windows(1000, 400)
    assert spans == [(0, 400), (300, 700), (600, 1000)]


def test_max_windows_keeps_the_first_and_reports_truncation():
    spans, truncated = plan_windows(10_000, 100, 100, max_windows=3)
    assert spans == [(0, 100), (100, 200), (200, 300)] and truncated


@pytest.mark.parametrize("side,expected", [("right", (0, 100)), ("left", (900, 1000))])
def test_truncate_keeps_one_end(side, expected):
    assert plan_windows(1000, 100, truncate=side) == ([expected], True)


@pytest.mark.parametrize("window,stride", [(0, None), (10, 0), (10, 11)])
def test_bad_window_settings_are_refused(window, stride):
    with pytest.raises(InvalidInputError):
        plan_windows(100, window, stride)


def test_aggregate_modes():
    logits = [1.0, 3.0, 2.0]
    assert aggregate(logits, "max") == (3.0, 1)
    assert aggregate(logits, "mean") == (2.0, 1)
    assert aggregate(logits, "first") == (1.0, 0)
    weights = [math.exp(x) for x in logits]
    expected = sum(w * x for w, x in zip(weights, logits, strict=True)) / sum(weights)
    value, best = aggregate(logits, "weighted")
    assert value == pytest.approx(expected) and best == 1
    assert 2.0 < value < 3.0, "weighted lies between mean and max"


def test_aggregate_ties_pick_the_first_window():
    assert aggregate([2.0, 2.0], "max") == (2.0, 0)


def test_aggregate_refuses_unknown_mode():
    with pytest.raises(InvalidInputError, match="max, mean, weighted"):
        aggregate([1.0], "median")
