"""Evaluate a first stage and its reranked list on an :class:`~crossrank.eval.datasets.EvalSet`.

Full-corpus formats (beir, cmrc) retrieve the top ``k`` of the whole corpus; candidate-list formats
(wikiqa, cmrc-sent) score each query's given candidates. The reranker scores every (query, candidate)
pair of all queries in one batched :meth:`~crossrank.reranker.Reranker.score_pairs` call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..retrieval.base import check_k, check_method
from ..retrieval.bm25 import BM25, top_indices
from ..retrieval.dense import Embedder, embed_in_batches
from ..retrieval.fusion import reciprocal_rank_fusion
from ..retrieval.text import tokenize, tokenize_many
from ..thresholds import sigmoid
from .cutoffs import score_report
from .datasets import EvalSet
from .metrics import METRICS, evaluate

logger = logging.getLogger(__name__)


def corpus_text(evalset: EvalSet, doc_id: str) -> str:
    title, text = evalset.corpus[doc_id]
    return f"{title}\n{text}" if title else text


@dataclass
class FirstStage:
    """BM25 and/or dense scores over an eval corpus, with each query's candidate rows when given."""

    evalset: EvalSet
    method: str
    embedder: Embedder | None = None
    doc_ids: list[str] = field(default_factory=list)
    bm25: BM25 | None = None
    vectors: np.ndarray | None = None
    seconds: float = 0.0

    def prepare(self, progress=None) -> FirstStage:
        start = time.perf_counter()
        self.doc_ids = list(self.evalset.corpus)
        texts = [corpus_text(self.evalset, d) for d in self.doc_ids]
        if self.method in ("bm25", "hybrid"):
            self.bm25 = BM25.build(tokenize_many(texts))
        if self.method in ("dense", "hybrid"):
            self.vectors = embed_in_batches(self.embedder.embed_passages, texts, self.embedder.dim, progress)
        self._row = {d: i for i, d in enumerate(self.doc_ids)}
        self.seconds = time.perf_counter() - start
        return self

    def _ranked(self, scores: np.ndarray, rows: np.ndarray | None, k: int, positive_only: bool) -> list[int]:
        if rows is None:
            return [int(i) for i in top_indices(scores, k, positive_only)]
        order = top_indices(scores[rows], k, positive_only)
        return [int(rows[i]) for i in order]

    def rank(self, qid: str, k: int) -> list[str]:
        """The first-stage list of ``qid``: at most ``k`` doc ids, best first."""
        query = self.evalset.queries[qid]
        cands = self.evalset.candidates
        exclude = self.evalset.exclude_self and qid in self._row
        k_inner = k + 1 if exclude else k
        rows = np.array([self._row[d] for d in cands[qid]]) if cands is not None else None
        lists = []
        if self.bm25 is not None:
            # BM25 lists keep only matching documents over a corpus, every candidate of a candidate list.
            lists.append(
                self._ranked(self.bm25.scores(tokenize(query)), rows, k_inner, positive_only=rows is None)
            )
        if self.vectors is not None:
            sims = self.vectors @ self.embedder.embed_queries([query])[0]
            lists.append(self._ranked(sims, rows, k_inner, positive_only=False))
        if exclude:
            lists = [[r for r in ranked if r != self._row[qid]] for ranked in lists]
        ranked = [r for r, _ in reciprocal_rank_fusion(lists)] if len(lists) == 2 else lists[0]
        return [self.doc_ids[r] for r in ranked[:k]]


def rerank_lists(
    reranker, evalset: EvalSet, lists: dict[str, list[str]], progress=None
) -> dict[str, list[tuple[str, float]]]:
    """Rerank every query's list with one batched call: ``(doc_id, normalised score)`` best first;
    ties keep the first-stage order."""
    pairs, owners = [], []
    for qid, docs in lists.items():
        for pos, doc in enumerate(docs):
            pairs.append((evalset.queries[qid], corpus_text(evalset, doc)))
            owners.append((qid, pos))
    scored = reranker.score_pairs(pairs, progress=progress) if pairs else []
    logits: dict[str, list[float]] = {q: [0.0] * len(d) for q, d in lists.items()}
    for (qid, pos), score in zip(owners, scored, strict=True):
        logits[qid][pos] = score.logit
    out = {}
    for q, docs in lists.items():
        order = sorted(range(len(docs)), key=lambda i: (-logits[q][i], i))
        out[q] = [(docs[i], sigmoid(logits[q][i])) for i in order]
    return out


def run_eval(
    evalset: EvalSet,
    *,
    method: str = "hybrid",
    k: int = 100,
    embedder: Embedder | None = None,
    reranker=None,
    embed_progress=None,
    rerank_progress=None,
) -> dict[str, Any]:
    """First stage, then (with a reranker) rerank; metrics from ranx and mean latency per query (ms);
    with a reranker also ``scores``: kept-set metrics of the cut-off rules and the scores' calibration
    (:func:`crossrank.eval.cutoffs.score_report`).

    ``embed_progress(n)`` is told of each batch of corpus texts embedded; ``rerank_progress(rows, total)``
    is the reranker's own progress callback.
    """
    check_method(method)
    check_k(k)
    if method != "bm25" and embedder is None:
        from ..retrieval.dense import make_embedder

        embedder = make_embedder()
    stage = FirstStage(evalset, method, embedder).prepare(embed_progress)
    start = time.perf_counter()
    lists = {qid: stage.rank(qid, k) for qid in evalset.queries}
    n = len(evalset.queries)
    latency = (time.perf_counter() - start) * 1000 / n
    first = {**evaluate(evalset.qrels, lists, METRICS), "latency_ms": latency}
    result: dict[str, Any] = {"first_stage": first, "reranked": None, "n_queries": n}
    if reranker is not None:
        start = time.perf_counter()
        scored = rerank_lists(reranker, evalset, lists, rerank_progress)
        latency = (time.perf_counter() - start) * 1000 / n
        reranked = {q: [d for d, _ in ranked] for q, ranked in scored.items()}
        result["reranked"] = {**evaluate(evalset.qrels, reranked, METRICS), "latency_ms": latency}
        result["scores"] = score_report(scored, evalset.qrels)
    result["config"] = {
        "dataset": evalset.name,
        "first_stage": method,
        "k": k,
        "embedder": embedder.name if embedder is not None and method != "bm25" else None,
        "corpus_size": len(evalset.corpus),
        "first_stage_prepare_s": stage.seconds,
        "reranker": reranker.info() if reranker is not None and hasattr(reranker, "info") else None,
        "notes": evalset.notes,
    }
    return result
