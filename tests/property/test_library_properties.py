"""Properties of the library's scoring entry points on any input: a result or a crossrank error, never
another exception; the caller's lists untouched; scores that do not depend on batch composition."""

from __future__ import annotations

import copy
import math

import pytest
from fuzz_strategies import (
    clean_text,
    documents_input,
    edge_numbers,
    examples,
    junk,
    pairs_input,
    unicode_text,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from crossrank import CrossrankError
from crossrank.scoring import ScoringEngine


def readable(reranker, pairs) -> bool:
    """Whether every text of ``pairs`` has a token the model reads (texts of only zero-width or control
    characters are refused, a crossrank error that other properties cover)."""
    encode = reranker.engine.tokenizer.encode
    return all(ids.ids for ids in encode([text for pair in pairs for text in pair]))


def snapshot(value):
    """A comparable picture of a value (``repr`` keeps NaN equal to itself)."""
    return repr(value)


@settings(max_examples=examples(120))
@given(pairs=pairs_input(), normalize=st.booleans())
def test_compute_score_gives_scores_or_a_crossrank_error(tiny_reranker, pairs, normalize):
    before = snapshot(pairs)
    try:
        scores = tiny_reranker.compute_score(pairs, normalize=normalize)
    except CrossrankError:
        pass
    else:
        bare = isinstance(pairs, list) and len(pairs) == 2 and all(isinstance(x, str) for x in pairs)
        assert len(scores) == (1 if bare else len(pairs))
        assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
        if normalize:
            assert all(0.0 <= s <= 1.0 for s in scores)
    assert snapshot(pairs) == before, "the caller's pairs were modified"


@settings(max_examples=examples(100))
@given(
    query=st.one_of(unicode_text(), junk(2)),
    documents=documents_input(),
    top_n=st.one_of(st.none(), edge_numbers()),
    threshold=st.one_of(st.none(), st.just("dynamic"), edge_numbers(), unicode_text(6, runs=False)),
)
def test_rerank_gives_ranked_results_or_a_crossrank_error(tiny_reranker, query, documents, top_n, threshold):
    before = snapshot(documents)
    try:
        results = tiny_reranker.rerank(query, documents, top_n=top_n, threshold=threshold)
    except CrossrankError:
        pass
    else:
        indices = [r.index for r in results]
        assert len(set(indices)) == len(indices) and set(indices) <= set(range(len(documents)))
        if isinstance(top_n, int) and top_n > 0:
            assert len(results) <= top_n
        logits = [r.logit for r in results]
        assert logits == sorted(logits, reverse=True)
        for r in results:
            assert 0.0 <= r.score <= 1.0 and r.document == documents[r.index]
            assert 0 <= r.window.start <= r.window.end <= len(documents[r.index])
    assert snapshot(documents) == before, "the caller's documents were modified"


@settings(max_examples=examples(60))
@given(pairs=pairs_input(), batch_size=st.one_of(st.none(), st.integers(1, 4)))
def test_flag_reranker_gives_scores_or_a_crossrank_error(tiny_flag, pairs, batch_size):
    before = snapshot(pairs)
    try:
        scores = tiny_flag.compute_score(pairs, batch_size=batch_size, normalize=True)
    except CrossrankError:
        pass
    else:
        assert all(0.0 <= s <= 1.0 for s in scores)
    assert snapshot(pairs) == before


@settings(max_examples=examples(40))
@given(
    pairs=st.lists(st.tuples(clean_text(30), clean_text(200)), min_size=1, max_size=8),
    batch_size=st.integers(1, 5),
    max_batch_tokens=st.sampled_from([1, 64, 200, 16384]),
    order=st.randoms(use_true_random=False),
)
def test_scores_do_not_depend_on_batch_composition(tiny_reranker, pairs, batch_size, max_batch_tokens, order):
    """fp32: a pair's score is the same alone, in any batch size or token budget, and in any order."""
    assume(readable(tiny_reranker, pairs))
    engine = tiny_reranker.engine
    reference = [s.logit for s in engine.score_pairs(pairs)]
    other = ScoringEngine(engine.tokenizer, engine.backend, engine.options, batch_size, max_batch_tokens)
    shuffled = list(range(len(pairs)))
    order.shuffle(shuffled)
    scored = other.score_pairs([pairs[i] for i in shuffled])
    for position, i in enumerate(shuffled):
        assert scored[position].logit == pytest.approx(reference[i], abs=1e-5)
    alone = engine.score_pairs([pairs[0]])[0].logit
    assert alone == pytest.approx(reference[0], abs=1e-5)


@settings(max_examples=examples(40))
@given(pairs=st.lists(st.tuples(clean_text(), clean_text()).map(list), min_size=1, max_size=4))
def test_valid_pairs_are_always_scored(tiny_reranker, pairs):
    """Any non-blank valid text (NUL, combining marks, RTL, emoji, long runs) gets a finite score."""
    assume(readable(tiny_reranker, pairs))
    original = copy.deepcopy(pairs)
    scores = tiny_reranker.compute_score(pairs)
    assert len(scores) == len(pairs) and all(math.isfinite(s) for s in scores)
    assert pairs == original
