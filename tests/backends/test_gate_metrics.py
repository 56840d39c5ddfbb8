"""The accuracy-gate metrics, without a model."""

from __future__ import annotations

import numpy as np
import pytest

from crossrank.backends.gate import compare, rankdata, spearman, wikiqa_lists


def test_rankdata_averages_ties():
    assert rankdata([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_spearman_matches_scipy_on_random_lists():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(size=9), rng.normal(size=9)
        b[3] = b[5]  # a tie
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_spearman_edge_cases():
    assert spearman([1.0], [5.0]) == 1.0
    assert spearman([1.0, 1.0], [2.0, 2.0]) == 1.0
    assert spearman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)


def test_compare_ranking_rule():
    ref = [[0.1, 0.5, 0.3], [1.0, 2.0, 3.0]]
    same_order = [[0.2, 0.9, 0.4], [1.1, 2.2, 3.3]]
    result = compare(ref, same_order)
    assert result.passed and result.spearman_mean == pytest.approx(1.0) and result.top1_agreement == 1.0
    swapped_top = [[0.1, 0.3, 0.5], [1.0, 2.0, 3.0]]
    result = compare(ref, swapped_top)
    assert not result.passed and result.top1_agreement == 0.5


def test_compare_exactness_rule():
    assert compare([[1.0, 2.0]], [[1.0005, 2.0]], max_abs=1e-3).passed
    assert not compare([[1.0, 2.0]], [[1.002, 2.0]], max_abs=1e-3).passed


def test_wikiqa_lists_reads_real_file(shared_data):
    lists = wikiqa_lists(shared_data / "wikiqa" / "WikiQA-dev.tsv", 5)
    assert len(lists) == 5
    assert all(isinstance(q, str) and len(docs) >= 3 for q, docs in lists)
