"""Sentence-level records derived from paragraph-level ones (for answer-sentence selection).

Rule (documented in the model card):

* Sentences: Chinese text is split after 。！？!? (a closing quote or bracket right after stays with its
  sentence); English after . ! ? followed by white space and an upper-case letter, digit or quote.
  Sentences shorter than ``min_chars`` are merged into the previous one.
* The positive paragraph's sentences are scored against the query by IDF-weighted lexical overlap
  (:func:`crossrank.training.mining.lexical_terms`; IDF over all sentences of the source). The best
  sentence becomes the positive only when it is clearly best: its score is at least ``margin`` times the
  runner-up's and covers at least ``min_coverage`` of the query's IDF mass. Otherwise the query is dropped.
* Negatives: the other sentences of the positive paragraph (the hard, same-paragraph case that sentence
  selection is about) and up to ``max_other`` sentences of the record's negative paragraphs.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence

from .data import RankRecord
from .mining import lexical_terms

logger = logging.getLogger(__name__)

_ZH_SENTENCE = re.compile(r".*?[。！？!?]+[」』”’\"')）】]*|.+$", re.DOTALL)
_EN_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9\"“(])")


def split_sentences(text: str, lang: str, min_chars: int = 8) -> list[str]:
    """Split a paragraph into sentences by the rule in the module docstring."""
    if lang == "zh":
        parts = _ZH_SENTENCE.findall(text)
    else:
        parts = _EN_END.split(text)
    out: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        if out and len(part) < min_chars:
            out[-1] = f"{out[-1]}{'' if lang == 'zh' else ' '}{part}"
        else:
            out.append(part)
    return out


def _idf(sentences: Sequence[list[str]]) -> dict[str, float]:
    df = Counter(t for terms in sentences for t in set(terms))
    n = len(sentences)
    return {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}


def _overlap(query: set[str], sentence: list[str], idf: dict[str, float]) -> float:
    return sum(idf.get(t, 0.0) for t in query & set(sentence))


def derive_sentence_records(
    records: Sequence[RankRecord],
    margin: float = 1.5,
    min_coverage: float = 0.3,
    max_other: int = 6,
    min_sentences: int = 2,
) -> list[RankRecord]:
    """Sentence-level records from paragraph-level ones (one source at a time; see the module rule)."""
    out: list[RankRecord] = []
    by_source: dict[str, list[RankRecord]] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    for source, group in by_source.items():
        derived = _derive_source(group, margin, min_coverage, max_other, min_sentences)
        logger.info("%s: %d of %d queries kept at sentence level", source, len(derived), len(group))
        out.extend(derived)
    return out


def _derive_source(records, margin, min_coverage, max_other, min_sentences) -> list[RankRecord]:
    lang = records[0].lang
    paragraphs = list(dict.fromkeys(p for r in records for p in (*r.pos, *r.neg)))
    split = {p: split_sentences(p, lang) for p in paragraphs}
    terms = {s: lexical_terms(s, lang) for p in paragraphs for s in split[p]}
    idf = _idf(list(terms.values()))
    out = []
    for r in records:
        sentences = split[r.pos[0]]
        if len(sentences) < min_sentences:
            continue
        query = set(lexical_terms(r.query, lang))
        mass = sum(idf.get(t, 0.0) for t in query) or 1.0
        scores = sorted(((_overlap(query, terms[s], idf), i) for i, s in enumerate(sentences)), reverse=True)
        (best, bi), (second, _) = scores[0], scores[1]
        if best < margin * second or best < min_coverage * mass:
            continue
        others = [s for n in r.neg for s in split[n]][:max_other]
        negatives = tuple(dict.fromkeys(s for i, s in enumerate(sentences) if i != bi)) + tuple(others)
        source = f"{r.source} sentences"
        out.append(RankRecord(source, lang, r.query, (sentences[bi],), negatives, r.origin))
    return out
