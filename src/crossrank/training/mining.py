"""Hard negatives mined with BM25 (``bm25s``) inside each source, and the lexical tokenizers it uses.

English text is lower-cased, split into words, stop words dropped and stemmed (PyStemmer, when
installed); Chinese text becomes overlapping character bigrams (no word segmenter needed, robust to
Traditional/Simplified and to names). Each source is indexed on its own, so a query's negatives come from
the same kind of text as its positives.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache

from ..retrieval.bm25 import import_bm25s
from .data import RankRecord

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
EN_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how i in is it its of on or that the this to "
    "was were what when where which who whom whose why will with you".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer
    except ImportError:  # stemming is an improvement, not a requirement
        return None
    return Stemmer.Stemmer("english")


def lexical_terms(text: str, lang: str) -> list[str]:
    """Terms for BM25 and overlap: Chinese character bigrams (plus Latin words), English stemmed words."""
    if lang == "zh":
        chars = [c for c in text if _HAN.match(c)]
        grams = [a + b for a, b in zip(chars, chars[1:], strict=False)] or chars
        return grams + [w.lower() for w in _WORD.findall(_HAN.sub(" ", text))]
    words = [w for w in (m.lower() for m in _WORD.findall(text)) if w not in EN_STOPWORDS]
    stemmer = _stemmer()
    return stemmer.stemWords(words) if stemmer else words


def mine_negatives(
    records: Sequence[RankRecord], per_query: int = 8, skip_top: int = 0, k1: float = 0.9, b: float = 0.4
) -> dict[int, tuple[str, ...]]:
    """BM25 negatives for each record: the best-scoring passages of its source that are not its positives.

    ``skip_top`` drops that many of the highest-ranked non-positive passages first (they are the most likely
    false negatives). Passages that are a positive of any record with the same query text are never used.
    Returns ``{record index: negatives}``.
    """
    mined: dict[int, tuple[str, ...]] = {}
    by_source: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_source.setdefault(r.source, []).append(i)
    for source, ids in by_source.items():
        mined.update(_mine_source(records, ids, per_query, skip_top, k1, b))
        logger.info("mined BM25 negatives for %d queries of %s", len(ids), source)
    return mined


def _mine_source(records, ids: list[int], per_query: int, skip_top: int, k1: float, b: float):
    bm25s = import_bm25s()
    lang = records[ids[0]].lang
    corpus = list(dict.fromkeys(p for i in ids for p in (*records[i].pos, *records[i].neg)))
    if len(corpus) < 2:
        return {}
    positives_of: dict[str, set[str]] = {}
    for i in ids:
        positives_of.setdefault(records[i].query, set()).update(records[i].pos)
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index([lexical_terms(p, lang) or ["<empty>"] for p in corpus], show_progress=False)
    k = min(len(corpus), per_query + skip_top + 8)
    queries = [lexical_terms(records[i].query, lang) or ["<empty>"] for i in ids]
    found, _ = retriever.retrieve(queries, k=k, show_progress=False, n_threads=1)
    out = {}
    for i, row in zip(ids, found, strict=True):
        banned = positives_of[records[i].query]
        negatives = [corpus[j] for j in row if corpus[j] not in banned]
        out[i] = tuple(negatives[skip_top : skip_top + per_query])
    return out
