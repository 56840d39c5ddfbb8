"""Properties of the pure functions: window planning, aggregation, thresholds, batch planning."""

from __future__ import annotations

import math

from fuzz_strategies import edge_numbers, examples, junk, unicode_text
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrank import CrossrankError
from crossrank.scoring import plan_batches
from crossrank.thresholds import THRESHOLD_HIGH, THRESHOLD_LOW, dynamic_threshold, select, top_sigma
from crossrank.windowing import AGGREGATES, aggregate, plan_windows

SIZES = st.one_of(edge_numbers(), st.integers(-3, 600), st.none())


@settings(max_examples=examples(300))
@given(
    n_tokens=st.one_of(st.integers(0, 5000), edge_numbers()),
    window=SIZES,
    stride=SIZES,
    max_windows=SIZES,
    truncate=st.one_of(st.sampled_from([None, "right", "left"]), unicode_text(5, runs=False)),
)
def test_plan_windows(n_tokens, window, stride, max_windows, truncate):
    try:
        spans, truncated = plan_windows(n_tokens, window, stride, max_windows, truncate)
    except CrossrankError:
        return
    assert spans and all(0 <= s < e <= n_tokens or (s, e) == (0, n_tokens) for s, e in spans)
    if n_tokens <= window:
        assert spans == [(0, n_tokens)] and not truncated
        return
    assert all(e - s == window for s, e in spans)
    starts = [s for s, _ in spans]
    assert starts == sorted(starts)
    if max_windows is not None:
        assert len(spans) <= max_windows
    if not truncated:  # every token is in some window
        assert starts[0] == 0 and spans[-1][1] == n_tokens
        assert all(b <= a_end for (_, a_end), (b, _) in zip(spans, spans[1:], strict=False))


def test_plan_windows_of_a_huge_document_lists_only_the_kept_windows():
    spans, truncated = plan_windows(10**15, 8, 1, max_windows=3)
    assert spans == [(0, 8), (1, 9), (2, 10)] and truncated


@settings(max_examples=examples(200))
@given(
    logits=st.lists(st.floats(-1e30, 1e30), min_size=1, max_size=40),
    mode=st.sampled_from(AGGREGATES),
)
def test_aggregate_stays_within_the_window_scores(logits, mode):
    value, best = aggregate(logits, mode)
    assert logits[best] == max(logits) or (mode == "first" and best == 0)
    slack = 1e-9 * max(1.0, max(abs(x) for x in logits))
    assert min(logits) - slack <= value <= max(logits) + slack


@settings(max_examples=examples(300))
@given(
    scores=st.one_of(junk(), st.lists(edge_numbers(), max_size=12)),
    top_k=st.one_of(edge_numbers(), st.just(10)),
)
def test_sigma_rule_on_anything(scores, top_k):
    try:
        sigma, cut = top_sigma(scores, top_k), dynamic_threshold(scores, top_k)
    except CrossrankError:
        return
    assert 0.0 <= sigma <= 0.5 and THRESHOLD_LOW <= cut <= THRESHOLD_HIGH


@settings(max_examples=examples(200))
@given(scores=st.lists(st.floats(0.0, 1.0), max_size=30), top_k=st.integers(1, 30))
def test_sigma_rule_on_probabilities(scores, top_k):
    cut = dynamic_threshold(scores, top_k)
    assert THRESHOLD_LOW <= cut <= THRESHOLD_HIGH
    assert dynamic_threshold(list(reversed(scores)), top_k) == cut  # order does not matter


@settings(max_examples=examples(300))
@given(
    scores=st.lists(st.floats(0.0, 1.0), max_size=20),
    top_n=st.one_of(st.none(), edge_numbers()),
    threshold=st.one_of(st.none(), st.just("dynamic"), st.just(" Dynamic "), edge_numbers(), unicode_text(6)),
    min_score=st.one_of(st.none(), edge_numbers()),
)
def test_select_keeps_an_ordered_prefix(scores, top_n, threshold, min_score):
    ranked = sorted(enumerate(scores), key=lambda item: (-item[1], item[0]))
    before = list(ranked)
    try:
        kept, cut = select(ranked, top_n=top_n, threshold=threshold, min_score=min_score)
    except CrossrankError:
        assert ranked == before
        return
    assert ranked == before
    assert kept == ranked[: len(kept)], "the kept results are the best ones, in order"
    if cut is not None:
        assert 0.0 <= cut <= 1.0 and all(score >= cut for _, score in kept)
    if isinstance(top_n, int) and not isinstance(top_n, bool) and top_n > 0:
        assert len(kept) <= top_n


@settings(max_examples=examples(300))
@given(
    lengths=st.lists(st.integers(1, 600), max_size=60).map(lambda xs: sorted(xs, reverse=True)),
    batch_size=st.integers(1, 70),
    max_batch_tokens=st.integers(1, 5000),
)
def test_plan_batches_partitions_within_the_budget(lengths, batch_size, max_batch_tokens):
    batches = plan_batches(lengths, batch_size, max_batch_tokens)
    assert [p for batch in batches for p in batch] == list(range(len(lengths)))
    for batch in batches:
        assert batch and len(batch) <= batch_size
        if len(batch) > 1:
            assert len(batch) * max(lengths[p] for p in batch) <= max_batch_tokens
    assert all(not math.isnan(x) for x in lengths)
