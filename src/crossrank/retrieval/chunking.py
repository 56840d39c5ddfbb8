"""Pure functions: split a document into overlapping token windows that keep character offsets.

A "token" here is a word (a run of letters/digits), a single CJK ideograph or a single punctuation mark:
close to what a multilingual sub-word tokenizer sees, without loading one. Every chunk is
``text[start:end]`` of the document, so a hit can always be traced back to its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidInputError

_TOKEN = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\w\s]"
)

DEFAULT_CHUNK_TOKENS = 200
DEFAULT_OVERLAP = 40


@dataclass(frozen=True, slots=True)
class Span:
    """One chunk of a document: ``text == document[start:end]``."""

    start: int
    end: int
    text: str
    n_tokens: int


def token_spans(text: str) -> list[tuple[int, int]]:
    """Character ``(start, end)`` of each token of ``text``.

    >>> token_spans("Hi, 你好")
    [(0, 2), (2, 3), (4, 5), (5, 6)]
    """
    return [m.span() for m in _TOKEN.finditer(text)]


def check_chunking(size: int, overlap: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidInputError(f"chunk size must be a positive number of tokens, got {size!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < size:
        raise InvalidInputError(f"chunk overlap must be in [0, chunk size {size}), got {overlap!r}")


def chunk_text(text: str, size: int = DEFAULT_CHUNK_TOKENS, overlap: int = DEFAULT_OVERLAP) -> list[Span]:
    """Windows of at most ``size`` tokens, each starting ``size - overlap`` tokens after the previous one.

    A text with no tokens gives no chunk; a short text gives one chunk spanning its tokens.

    >>> [c.text for c in chunk_text("a b c d e", size=3, overlap=1)]
    ['a b c', 'c d e']
    """
    check_chunking(size, overlap)
    spans = token_spans(text)
    if not spans:
        return []
    step = size - overlap
    chunks = []
    for first in range(0, len(spans), step):
        window = spans[first : first + size]
        start, end = window[0][0], window[-1][1]
        chunks.append(Span(start, end, text[start:end], len(window)))
        if first + size >= len(spans):
            break
    return chunks
