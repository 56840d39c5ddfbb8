"""Hypothesis strategies shared by the property tests (tests/property) and the server fuzzing
(tests/server/test_schemathesis.py): all of Unicode, with the awkward parts made frequent.

Plain ``st.text()`` leaves out surrogates and rarely draws combining marks, bidi controls, NUL or
long runs without spaces; these strategies mix such pieces in on purpose, since they are what broke
(a lone surrogate crashed the tokenizer) or what could (a 3,000-character "word").
"""

from __future__ import annotations

import math
import sys

from hypothesis import strategies as st

# Pieces that have each been trouble somewhere: NUL and controls, combining marks (alone and stacked),
# bidi overrides, zero-width characters, a BOM, non-characters, emoji (astral, ZWJ sequences, flags),
# CJK, Arabic and Hebrew, lone surrogates of both halves, a joined pair written as two code points.
AWKWARD = (
    "\x00", "\x01", "\x1b", "\x7f", "\t", "\n", "\r\n", "\u2028", "\u0085", " ", "\u00a0", "\u3000",
    "\u0301", "e\u0301", "\u0301\u0301\u0301\u0301", "\u20dd", "\u202e", "\u202d", "\u2066", "\u200f",
    "\u200b", "\u200d", "\ufeff", "\ufffd", "\ufffe", "\uffff", "\U0010ffff", "\U000e0001",
    "😀", "👩\u200d👩\u200d👧", "🇫🇷", "🏳️\u200d🌈", "中文", "\U00020000", "مرحبا", "שלום", "ﷺ",
    "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d\ude00", "Ǆ", "ß", "İ", "ﬁ",
)
# Every code point, surrogates included (hypothesis leaves out category Cs unless told).
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=sys.maxunicode, exclude_categories=())
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=())


@st.composite
def long_runs(draw, min_size: int = 200, max_size: int = 3000) -> str:
    """One character (or short piece) repeated into a long run without spaces."""
    piece = draw(st.one_of(st.sampled_from(["a", "x", "中", "😀", "e\u0301", "ab", "\u0301"]), ANY_CHAR))
    return piece * draw(st.integers(min_size // max(1, len(piece)), max_size // max(1, len(piece))))


def unicode_text(max_size: int = 40, runs: bool = True) -> st.SearchStrategy[str]:
    """Any string: mostly ordinary words and awkward pieces mixed, sometimes raw code points, a lone
    surrogate, or (``runs``) a long run without spaces."""
    words = st.sampled_from(["paris", "capital", "France", "the", "bear", "panda", "Köln", "ok", "1", "-"])
    piece = st.one_of(words, st.sampled_from(AWKWARD), st.text(ANY_CHAR, min_size=1, max_size=4))
    mixed = st.lists(piece, max_size=max_size // 4).map(" ".join)
    options = [mixed, st.text(ANY_CHAR, max_size=max_size), SURROGATES.map(lambda c: f"text {c} more")]
    if runs:
        options.append(long_runs())
    return st.one_of(*options)


def clean_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Non-blank valid text (no lone surrogates): what the library must always score."""
    return unicode_text(max_size).filter(_is_clean)


def _is_clean(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(text.strip())


EDGE_NUMBERS = (
    0, 1, -1, 2, 7, 10**30, -(10**30), 2**31, 2**63, 2**64 + 1, 0.0, -0.0, 0.5, 1.0, 1.0000000001,
    0.9999999999, 1e-300, 5e-324, 1e308, -1e308, math.inf, -math.inf, math.nan, True, False,
)


def edge_numbers() -> st.SearchStrategy:
    """Numbers at the edges (NaN, ±inf, ±0, subnormals, huge ints, bools), or any int or float."""
    return st.one_of(st.sampled_from(EDGE_NUMBERS), st.integers(), st.floats(allow_nan=True))


def junk(max_leaves: int = 8, *, json_only: bool = False) -> st.SearchStrategy:
    """Any JSON-ish or Python value, nested and ragged: what a careless caller might pass anywhere.
    ``json_only`` leaves out bytes, which no JSON body can hold (for request bodies)."""
    leaves = [st.none(), edge_numbers(), unicode_text(12, runs=False)]
    if not json_only:
        leaves.append(st.binary(max_size=8))
    leaves = st.one_of(*leaves)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.tuples(inner, inner),
            st.dictionaries(st.text(max_size=4), inner, max_size=3),
        ),
        max_leaves=max_leaves,
    )


def pairs_input() -> st.SearchStrategy:
    """What ``compute_score`` may be handed: well-formed pair lists of any text, a bare pair, ragged
    lists (short, long, nested pairs), wrong types, or junk."""
    text = unicode_text()
    pair = st.tuples(text, text).map(list)
    ragged = st.one_of(
        pair,
        st.lists(text, max_size=3),
        st.tuples(text, st.integers()).map(list),
        st.lists(pair, max_size=2),
        junk(4),
    )
    return st.one_of(
        st.lists(pair, min_size=1, max_size=6),
        pair,
        st.lists(st.one_of(pair, ragged), max_size=5),
        junk(),
    )


def documents_input() -> st.SearchStrategy:
    """A documents argument: a list of any text (ragged with non-strings sometimes), or junk."""
    return st.one_of(
        st.lists(unicode_text(), min_size=1, max_size=6),
        st.lists(st.one_of(unicode_text(), junk(2)), max_size=5),
        junk(),
    )


def examples(n: int) -> int:
    """``n`` examples under the ``ci`` profile (60 by default), scaled with the loaded profile's count
    (``HYPOTHESIS_PROFILE=long`` runs ten times as many)."""
    from hypothesis import settings

    return max(1, n * settings().max_examples // 60)
