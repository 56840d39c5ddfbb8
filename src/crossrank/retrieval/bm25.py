"""BM25 over pre-tokenised texts, on top of ``bm25s`` (Lù 2024), saved and loaded as plain ``.npy`` files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..errors import optional_import
from .text import tokenize

logger = logging.getLogger(__name__)

# Anserini's defaults (bm25s' own are k1 1.5, b 0.75). On BEIR ArguAna: NDCG@10 0.306 with the query's own
# document left in the list, 0.411 with it dropped (BEIR's ignore_identical_ids); plain bm25s gives the same.
DEFAULT_K1, DEFAULT_B = 0.9, 0.4
EMPTY = "empty.json"  # in place of the bm25s files when no document has a term


def top_indices(scores: np.ndarray, k: int, positive_only: bool = False) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first, ties by index (pure, deterministic)."""
    candidates = np.flatnonzero(scores > 0) if positive_only else np.arange(len(scores))
    if len(candidates) > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        kth = scores[candidates[part]].min()
        candidates = candidates[scores[candidates] >= kth]  # keep every tie of the k-th score
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order][:k]


def import_bm25s():
    """Import bm25s, undoing its import-time ``setLevel(DEBUG)`` so its logs follow the host's settings."""
    bm25s = optional_import("bm25s", "retrieval")
    bm25s_logger = logging.getLogger("bm25s")
    if bm25s_logger.level == logging.DEBUG:
        bm25s_logger.setLevel(logging.NOTSET)
    return bm25s


class BM25:
    """A BM25 index over token lists (one per chunk, in chunk order)."""

    def __init__(self, model, n_docs: int):
        self._model = model
        self.n_docs = n_docs

    @classmethod
    def build(cls, token_lists: list[list[str]], k1: float = DEFAULT_K1, b: float = DEFAULT_B) -> BM25:
        if not any(token_lists):  # no document has a term (stopwords only): bm25s cannot index that
            return cls(None, len(token_lists))
        bm25s = import_bm25s()
        model = bm25s.BM25(k1=k1, b=b)
        model.index(token_lists, show_progress=False)
        return cls(model, len(token_lists))

    def scores(self, query: str | list[str]) -> np.ndarray:
        """BM25 score of every document for a query (text, tokenised here, or a token list)."""
        tokens = tokenize(query) if isinstance(query, str) else query
        if self._model is None or not tokens:
            return np.zeros(self.n_docs, dtype=np.float32)
        vocab = self._model.vocab_dict
        ids = [vocab[t] for t in tokens if t in vocab]
        if not ids:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._model.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, query: str | list[str], k: int) -> list[tuple[int, float]]:
        """``(document index, score)`` of the best ``k`` documents with a positive score."""
        scores = self.scores(query)
        return [(int(i), float(scores[i])) for i in top_indices(scores, k, positive_only=True)]

    def save(self, folder: Path) -> None:
        if self._model is not None:
            self._model.save(str(folder), show_progress=False)
        elif self.n_docs:  # documents without a single term: recorded, so that load can tell it from a loss
            (folder / EMPTY).write_text(json.dumps({"num_docs": self.n_docs}), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, n_docs: int) -> BM25:
        """The index saved in ``folder`` (``n_docs`` documents; ``n_docs`` is the count found there)."""
        if n_docs == 0:
            return cls(None, 0)
        params = folder / "params.index.json"
        if not params.is_file() and (folder / EMPTY).is_file():
            return cls(None, int(json.loads((folder / EMPTY).read_text(encoding="utf-8"))["num_docs"]))
        if not params.is_file():  # never silently an index that matches nothing
            raise FileNotFoundError(2, "No such file or directory", str(params))
        bm25s = import_bm25s()
        model = bm25s.BM25.load(str(folder), mmap=False, show_progress=False, verbosity=0)
        return cls(model, int(model.scores["num_docs"]))
