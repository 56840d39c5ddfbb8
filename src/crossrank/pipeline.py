"""Retrieve → rerank → (answer): a first-stage :class:`~crossrank.retrieval.Retriever` feeding a
cross-encoder :class:`~crossrank.reranker.Reranker`.

Example:
    >>> from crossrank.pipeline import Pipeline
    >>> pipeline = Pipeline("my-index/", reranker="embedded", k=100, top_n=5)   # doctest: +SKIP
    >>> [hit.chunk.source for hit in pipeline.search("what is caffeine?")]     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import thresholds
from .retrieval.base import Candidate, Chunk, Retriever, check_k
from .retrieval.sources import indexed_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the chunk, its first-stage rank/score, and (when reranked) its rerank score."""

    chunk: Chunk
    rank: int
    first_stage_rank: int
    first_stage_score: float
    first_stage_method: str
    rerank_score: float | None = None
    rerank_logit: float | None = None
    components: dict[str, tuple[int, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.chunk.id,
            "doc_id": self.chunk.doc_id,
            "source": self.chunk.source,
            "title": self.chunk.title,
            "start": self.chunk.start,
            "end": self.chunk.end,
            "text": self.chunk.text,
            "first_stage": {
                "method": self.first_stage_method,
                "rank": self.first_stage_rank,
                "score": self.first_stage_score,
                "components": {k: {"rank": r, "score": s} for k, (r, s) in self.components.items()},
            },
            "rerank_score": self.rerank_score,
            "metadata": self.chunk.metadata,
        }


@dataclass(slots=True)
class SearchTimings:
    first_stage_ms: float = 0.0
    rerank_ms: float = 0.0


class Pipeline:
    """Search an index and rerank its candidates.

    Args:
        retriever: a :class:`Retriever`, or an index folder (opened with
            :func:`crossrank.retrieval.open_retriever`).
        reranker: a :class:`~crossrank.reranker.Reranker`, a model reference for one (``"embedded"``, a
            folder, a hub id), or ``None`` for first-stage order only.
        k: candidates taken from the first stage.
        top_n: hits returned (0 or ``None``: all).
        threshold: rerank score cut-off (a number in [0, 1] or ``"dynamic"``), applied before ``top_n``;
            it needs a reranker.
        method: first stage, ``bm25``, ``dense`` or ``hybrid`` (default: the index's).
    """

    def __init__(
        self,
        retriever: Retriever | str | Path,
        reranker=None,
        *,
        k: int = 100,
        top_n: int = 5,
        threshold: float | str | None = None,
        method: str | None = None,
    ):
        if isinstance(retriever, str | Path):
            from .retrieval import open_retriever

            retriever = open_retriever(retriever)
        if isinstance(reranker, str | Path):
            from .reranker import Reranker

            reranker = Reranker(str(reranker))
        self.retriever, self.reranker = retriever, reranker
        self.k, self.top_n, self.method = check_k(k), thresholds.check_top_n(top_n), method
        self.threshold = check_threshold(threshold, reranker is not None)
        self.last_timings = SearchTimings()

    def search(self, query: str, *, k: int | None = None, top_n: int | None = None) -> list[Hit]:
        """The best chunks for ``query``: first stage, then rerank (when a reranker is set). ``k`` and
        ``top_n`` override the pipeline's for this call (``None``: the pipeline's)."""
        from .scoring import check_text

        check_text(query, "query")
        k = self.k if k is None else check_k(k)
        top_n = self.top_n if top_n is None else thresholds.check_top_n(top_n)
        start = time.perf_counter()
        candidates = self.retriever.search(query, k, self.method)
        self.last_timings.first_stage_ms = (time.perf_counter() - start) * 1000
        if self.reranker is None or not candidates:
            hits = [_hit(c, c.rank) for c in candidates[: top_n or None]]
            self.last_timings.rerank_ms = 0.0
            return hits
        start = time.perf_counter()
        texts = [indexed_text(c.chunk) for c in candidates]
        results = self.reranker.rerank(
            query, texts, top_n=top_n, threshold=self.threshold, return_documents=False
        )
        self.last_timings.rerank_ms = (time.perf_counter() - start) * 1000
        return [_hit(candidates[r.index], rank, r.score, r.logit) for rank, r in enumerate(results, start=1)]


def check_threshold(threshold: float | str | None, has_reranker: bool) -> float | str | None:
    """A threshold is a cut on rerank scores: checked here, and refused without a reranker (first-stage
    scores are not probabilities, so it would be silently ignored)."""
    from .errors import InvalidInputError

    if threshold is not None and not has_reranker:
        raise InvalidInputError(
            f"threshold {threshold!r} applies to rerank scores, and there is no reranker; set one "
            "(--rerank MODEL) or drop the threshold"
        )
    return thresholds.check_threshold(threshold)


def _hit(candidate: Candidate, rank: int, score: float | None = None, logit: float | None = None) -> Hit:
    return Hit(
        chunk=candidate.chunk,
        rank=rank,
        first_stage_rank=candidate.rank,
        first_stage_score=candidate.score,
        first_stage_method=candidate.method,
        rerank_score=score,
        rerank_logit=logit,
        components=candidate.components,
    )
