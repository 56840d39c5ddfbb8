"""Language detection and BM25 tokenisation: Chinese with jieba, English (and other Latin text) with stemming.

Pure functions apart from the lazily loaded jieba dictionary and the Snowball stemmer.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from ..errors import optional_import

logger = logging.getLogger(__name__)

# CJK Unified Ideographs (+ extension A) and the compatibility block.
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"(?u)\b\w\w+\b")
_WORD_CHAR = re.compile(r"\w", re.UNICODE)
ZH_SHARE = 0.2  # share of CJK characters among word characters that makes a text Chinese


def detect_language(text: str) -> str:
    """``"zh"`` when at least :data:`ZH_SHARE` of the word characters are CJK ideographs, else ``"en"``.

    >>> detect_language("什么是咖啡因？"), detect_language("what is caffeine?")
    ('zh', 'en')
    """
    words = len(_WORD_CHAR.findall(text))
    if not words:
        return "en"
    return "zh" if len(_CJK.findall(text)) / words >= ZH_SHARE else "en"


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


@lru_cache(maxsize=1)
def _stemmer():
    stemmer_module = optional_import("Stemmer", "retrieval")
    return stemmer_module.Stemmer("english")


@lru_cache(maxsize=1)
def _jieba():
    jieba = optional_import("jieba", "retrieval")
    jieba.setLogLevel(logging.WARNING)
    return jieba


def _latin_tokens(text: str) -> list[str]:
    words = [w for w in _LATIN_WORD.findall(text.lower()) if w not in _stopwords()]
    return _stemmer().stemWords(words)


def _chinese_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for piece in _jieba().lcut(text.lower()):
        piece = piece.strip()
        if not piece or not _WORD_CHAR.search(piece):
            continue  # whitespace and punctuation
        if _CJK.search(piece):
            tokens.append(piece)
        else:
            tokens.extend(_latin_tokens(piece) or ([piece] if len(piece) > 1 or piece.isdigit() else []))
    return tokens


def tokenize(text: str, language: str | None = None) -> list[str]:
    """BM25 terms of ``text``: jieba words for Chinese, stemmed non-stopword words otherwise.

    ``language`` defaults to :func:`detect_language`. Latin words inside Chinese text are stemmed too, so an
    English query term matches it in either kind of document.
    """
    language = language or detect_language(text)
    return _chinese_tokens(text) if language == "zh" else _latin_tokens(text)


def tokenize_many(texts: list[str], languages: list[str] | None = None) -> list[list[str]]:
    """:func:`tokenize` over a list (languages detected per text when not given)."""
    languages = languages or [detect_language(t) for t in texts]
    return [tokenize(t, lang) for t, lang in zip(texts, languages, strict=True)]
