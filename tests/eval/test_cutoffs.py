"""Kept-set metrics, Brier, ECE and reliability bins on hand-computed cases."""

import json
import math

import pytest

from crossrank.eval.cutoffs import (
    RULES,
    brier_score,
    expected_calibration_error,
    kept_set_metrics,
    reliability_bins,
    score_report,
)

# q1: relevant a (0.9) and c (0.3); q2: relevant y (0.2) below x (0.6); q3: no relevant candidate.
SCORED = {
    "q1": [("a", 0.9), ("b", 0.55), ("c", 0.3)],
    "q2": [("x", 0.6), ("y", 0.2)],
    "q3": [("m", 0.8)],
}
QRELS = {"q1": {"a": 1, "c": 2}, "q2": {"y": 1}, "q3": {"zz": 1}}


def test_fixed_threshold_kept_sets():
    m = kept_set_metrics(SCORED, QRELS, {"threshold": 0.5})
    # q1 keeps a, b: P 1/2, R 1/2, F1 1/2; q2 keeps x: P 0, R 0, F1 0. q3 has no relevant candidate.
    assert m["queries"] == 2
    assert m["precision"] == pytest.approx(0.25)
    assert m["recall"] == pytest.approx(0.25)
    assert m["f1"] == pytest.approx(0.25)
    assert m["keeps_relevant"] == pytest.approx(0.5)
    assert m["mean_kept"] == pytest.approx(1.5)


def test_top_n_and_empty_kept_set():
    top1 = kept_set_metrics(SCORED, QRELS, {"top_n": 1})
    assert top1["precision"] == pytest.approx(0.5) and top1["recall"] == pytest.approx(0.25)
    assert top1["f1"] == pytest.approx((2 * 1 * 0.5 / 1.5) / 2)
    nothing = kept_set_metrics(SCORED, QRELS, {"threshold": 0.95})  # nothing kept: precision counts 0
    assert nothing["precision"] == 0 and nothing["keeps_relevant"] == 0 and nothing["mean_kept"] == 0


def test_dynamic_rule_is_the_library_rule():
    # q1: σ of (0.9, 0.55, 0.3) = 0.246 > 0.15 → bar 0.65 keeps a; q2: σ 0.2 → 0.65 keeps nothing.
    m = kept_set_metrics(SCORED, QRELS, RULES["dynamic"])
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.25)
    assert m["keeps_relevant"] == pytest.approx(0.5)


def test_brier_and_ece_by_hand():
    probs, labels = [0.9, 0.55, 0.3, 0.6, 0.2], [1, 0, 1, 0, 1]
    assert brier_score(probs, labels) == pytest.approx((0.01 + 0.3025 + 0.49 + 0.36 + 0.64) / 5)
    bins = reliability_bins(probs, labels)
    assert [(b["low"], b["pairs"]) for b in bins] == [(0.2, 1), (0.3, 1), (0.5, 1), (0.6, 1), (0.9, 1)]
    # each bin holds one pair: ECE is the mean |p - y|
    assert expected_calibration_error(probs, labels) == pytest.approx((0.1 + 0.55 + 0.7 + 0.6 + 0.8) / 5)
    assert expected_calibration_error([0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]) == pytest.approx(0.0)
    assert reliability_bins([1.0], [1])[0]["low"] == 0.9  # a score of 1.0 falls into the last bin
    assert math.isnan(brier_score([], [])) and math.isnan(expected_calibration_error([], []))


def test_score_report_covers_every_rule_and_all_pairs():
    report = score_report(SCORED, QRELS)
    assert set(report["cutoffs"]) == {"dynamic", "fixed_0.5", "top_1", "top_3"}
    cal = report["calibration"]
    assert cal["pairs"] == 6 and cal["share_relevant"] == pytest.approx(3 / 6)
    assert sum(b["pairs"] for b in cal["bins"]) == 6


def test_means_over_nothing_are_none_and_the_report_is_json():
    # q3 has no relevant candidate: the kept-set means are undefined; no pair at all: calibration is too
    m = kept_set_metrics({"q3": SCORED["q3"]}, QRELS, RULES["dynamic"])
    assert m == dict.fromkeys(("precision", "recall", "f1", "keeps_relevant", "mean_kept")) | {"queries": 0}
    empty = score_report({}, QRELS)
    assert all(v["queries"] == 0 and v["precision"] is None for v in empty["cutoffs"].values())
    cal = empty["calibration"]
    assert cal["pairs"] == 0 and cal["share_relevant"] is cal["brier"] is cal["ece"] is None
    json.dumps(score_report({"q3": SCORED["q3"]}, QRELS), allow_nan=False)
    json.dumps(empty, allow_nan=False)
