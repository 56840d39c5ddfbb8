import statistics

import pytest

from crossrank.errors import InvalidInputError
from crossrank.thresholds import dynamic_threshold, resolve_threshold, select, sigmoid


def test_sigma_rule_bounds_and_interpolation():
    assert dynamic_threshold([0.5, 0.5, 0.5]) == 0.40  # σ = 0
    assert dynamic_threshold([0.9, 0.1]) == 0.65  # σ = 0.4
    scores = [0.6, 0.4]  # σ = 0.1, halfway between 0.05 and 0.15
    assert statistics.pstdev(scores) == pytest.approx(0.1)
    assert dynamic_threshold(scores) == pytest.approx(0.525)


def test_sigma_uses_only_the_top_ten():
    top = [0.8] * 10
    assert dynamic_threshold(top + [0.0] * 50) == 0.40


def test_single_and_empty_scores():
    assert dynamic_threshold([0.99]) == 0.40
    assert dynamic_threshold([]) == 0.40


def test_select_applies_threshold_min_score_and_top_n():
    ranked = [(3, 0.9), (0, 0.7), (2, 0.5), (1, 0.1)]
    assert select(ranked, threshold=0.6) == ([(3, 0.9), (0, 0.7)], 0.6)
    assert select(ranked, min_score=0.4, top_n=2)[0] == [(3, 0.9), (0, 0.7)]
    kept, cut = select(ranked, threshold="dynamic")
    assert cut == 0.65 and kept == [(3, 0.9), (0, 0.7)]
    assert select(ranked, top_n=0)[0] == ranked, "top_n=0 means all, as in vLLM"


@pytest.mark.parametrize("bad", [1.5, -0.1, "high", True])
def test_bad_thresholds_are_refused(bad):
    with pytest.raises(InvalidInputError, match="dynamic"):
        resolve_threshold(bad, [0.5])


@pytest.mark.parametrize("bad", [-1, 1.5, "dynamic", "0.5", True])
def test_bad_min_scores_name_min_score(bad):
    with pytest.raises(InvalidInputError, match="min_score must be a number in"):
        select([(0, 0.9)], min_score=bad)


def test_sigmoid_is_stable():
    assert sigmoid(0.0) == 0.5
    assert sigmoid(-1000.0) == 0.0 and sigmoid(1000.0) == 1.0


def test_numpy_numbers_are_numbers():
    """A threshold or top_n taken from a numpy array is accepted as min_score already was."""
    np = pytest.importorskip("numpy")
    ranked = [(3, 0.9), (0, 0.7), (2, 0.5)]
    assert select(ranked, threshold=np.float32(0.6)) == ([(3, 0.9), (0, 0.7)], pytest.approx(0.6))
    assert select(ranked, top_n=np.int64(1))[0] == [(3, 0.9)]
    for bad in (np.float32("nan"), np.float64(1.5)):
        with pytest.raises(InvalidInputError, match="dynamic"):
            resolve_threshold(bad, [0.5])
    with pytest.raises(InvalidInputError, match="top_n"):
        select(ranked, top_n=np.bool_(True))


def test_cut_offs_are_checked_alike_before_any_score_exists():
    """The pipeline, the table job and the integrations check top_n and threshold with one rule: numpy
    integers are integers, "Dynamic" is the σ rule in any case, a number comes back as a float."""
    np = pytest.importorskip("numpy")
    from crossrank.batch import check_options
    from crossrank.integrations._core import check_cutoffs
    from crossrank.pipeline import check_threshold as pipeline_threshold
    from crossrank.thresholds import check_threshold, check_top_n

    assert check_top_n(np.int64(3)) == 3 and type(check_top_n(np.int64(3))) is int
    assert check_top_n(None) is None and check_top_n(0) == 0
    assert check_threshold(" Dynamic ") == "dynamic" and check_threshold("0.5") == 0.5
    assert check_threshold(None) is None
    assert pipeline_threshold(np.float32(0.25), has_reranker=True) == 0.25
    assert check_options(np.int64(2), "DYNAMIC", 10, 1, {}) == "dynamic"
    check_cutoffs(np.int64(2), "Dynamic")
    checks = (check_top_n, lambda t: check_options(t, None, 10, 1, {}), lambda t: check_cutoffs(t, None))
    for bad_top_n in (-1, 1.0, "3", True):
        for check in checks:
            with pytest.raises(InvalidInputError, match="top_n must be a non-negative integer"):
                check(bad_top_n)
    for bad in (1.5, "high", True):
        with pytest.raises(InvalidInputError, match="dynamic"):
            check_threshold(bad)
