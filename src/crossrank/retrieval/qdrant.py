"""The scaling path: the same retriever interface on Qdrant (``qdrant-client``).

Dense vectors go in a named vector ``dense`` (cosine); BM25-style term weights go in a sparse vector
``bm25`` with Qdrant's IDF modifier (term frequency saturated with k1; no length normalisation, i.e.
b = 0, because the average length is not known to a sparse vector). ``hybrid`` fuses the two lists with
the same RRF as the embedded index. Works on a server (``http(s)://...``), in local mode on a folder, or
in memory (``":memory:"``), which is how it is tested here.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from pathlib import Path

from ..errors import BackendError, InvalidInputError, optional_import
from ..scoring import check_text
from .base import Candidate, Chunk, check_k, check_method
from .dense import Embedder, embed_in_batches, make_embedder
from .index import IndexConfig, candidates_from_lists, check_chunks
from .sources import indexed_text
from .text import tokenize

logger = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f1c1bde-6c25-4c59-9a4a-3f4f0b7e5c11")
UPSERT_BATCH = 256


def term_id(term: str) -> int:
    """A stable 32-bit id for a term (sparse vector index)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def sparse_terms(text: str, k1: float, query: bool = False) -> tuple[list[int], list[float]]:
    """Sparse ``(indices, values)``: saturated tf ``tf (k1 + 1) / (tf + k1)`` for documents, 1 for queries."""
    counts = Counter(term_id(t) for t in tokenize(text))
    indices = sorted(counts)
    values = [1.0 if query else counts[i] * (k1 + 1) / (counts[i] + k1) for i in indices]
    return indices, values


def connect(location: str):
    """A ``QdrantClient`` for a URL, ``":memory:"`` or a local folder."""
    qdrant_client = optional_import("qdrant_client", "retrieval")
    if location == ":memory:":
        return qdrant_client.QdrantClient(":memory:")
    if location.startswith(("http://", "https://")):
        return qdrant_client.QdrantClient(url=location)
    Path(location).mkdir(parents=True, exist_ok=True)
    try:
        return qdrant_client.QdrantClient(path=location)
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
        raise BackendError(
            f"the qdrant folder {location} is open in another process (Qdrant's local mode allows one at a "
            "time); wait for it to finish, or keep the index on a Qdrant server (--qdrant http://HOST:6333)"
        ) from None


class QdrantRetriever:
    """Chunks stored as Qdrant points (payload = the chunk), searched by dense, sparse BM25 or both."""

    def __init__(self, config: IndexConfig, client=None, embedder: Embedder | None = None):
        if not config.embedder:
            raise InvalidInputError("the qdrant backend needs an embedder (e5-small or hash), not 'none'")
        if embedder is not None and embedder.name != config.embedder:
            raise InvalidInputError(
                f"this qdrant index is built with the {config.embedder!r} embedder, but the embedder given "
                f"is {embedder.name!r}; pass none (the index makes its own) or rebuild the index"
            )
        self.config = config
        self.client = client or connect(config.qdrant_location or ":memory:")
        self._embedder = embedder
        self._ensure_collection()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = make_embedder(self.config.embedder)
        return self._embedder

    def _ensure_collection(self) -> None:
        models = optional_import("qdrant_client.models", "retrieval")
        if self.client.collection_exists(self.config.collection):
            return
        self.client.create_collection(
            self.config.collection,
            vectors_config={
                "dense": models.VectorParams(size=self.embedder.dim, distance=models.Distance.COSINE)
            },
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )

    def __len__(self) -> int:
        return self.client.count(self.config.collection, exact=True).count

    def add(self, chunks: list[Chunk], progress=None) -> int:
        """Upsert chunks; documents already present are replaced: their new chunks are written first,
        then the old chunks the new version lacks are removed (an error or Ctrl-C while embedding
        leaves the old version whole). Returns chunks added."""
        check_chunks(chunks)  # one point per chunk id: a repeated id would overwrite a chunk
        models = optional_import("qdrant_client.models", "retrieval")
        texts = [indexed_text(c) for c in chunks]
        vectors = embed_in_batches(self.embedder.embed_passages, texts, self.embedder.dim, progress)
        points = []
        for chunk, text, vector in zip(chunks, texts, vectors, strict=True):
            indices, values = sparse_terms(text, self.config.k1)
            points.append(
                models.PointStruct(
                    id=str(uuid.uuid5(_NAMESPACE, chunk.id)),
                    vector={
                        "dense": vector.tolist(),
                        "bm25": models.SparseVector(indices=indices, values=values),
                    },
                    payload=chunk.to_dict(),
                )
            )
        for start in range(0, len(points), UPSERT_BATCH):
            self.client.upsert(self.config.collection, points=points[start : start + UPSERT_BATCH])
        doc_ids = sorted({c.doc_id for c in chunks})
        if doc_ids:
            stale = models.Filter(
                must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=doc_ids))],
                must_not=[models.HasIdCondition(has_id=[p.id for p in points])],
            )
            self.client.delete(self.config.collection, points_selector=models.FilterSelector(filter=stale))
        return len(chunks)

    def delete(self, doc_ids: list[str]) -> int:
        """Remove every chunk of the given documents. Returns chunks removed."""
        if not doc_ids:
            return 0
        models = optional_import("qdrant_client.models", "retrieval")
        flt = models.Filter(
            must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids)))]
        )
        before = len(self)
        self.client.delete(self.config.collection, points_selector=models.FilterSelector(filter=flt))
        return before - len(self)

    def _query(self, query, using: str, k: int) -> list:
        return self.client.query_points(
            self.config.collection, query=query, using=using, limit=k, with_payload=True
        ).points

    def search(self, query: str, k: int = 100, method: str | None = None) -> list[Candidate]:
        method = check_method(method or self.config.default_method)
        check_k(k)
        check_text(query, "query")
        if len(self) == 0:
            raise InvalidInputError(
                f"the qdrant collection {self.config.collection!r} is empty; "
                "add documents with `crossrank index add`"
            )
        models = optional_import("qdrant_client.models", "retrieval")
        raw: dict[str, list] = {}
        if method in ("bm25", "hybrid"):
            indices, values = sparse_terms(query, self.config.k1, query=True)
            raw["bm25"] = (
                self._query(models.SparseVector(indices=indices, values=values), "bm25", k) if indices else []
            )
        if method in ("dense", "hybrid"):
            raw["dense"] = self._query(self.embedder.embed_queries([query])[0].tolist(), "dense", k)
        rows: dict[str, int] = {}
        chunks: list[Chunk] = []
        lists: dict[str, list[tuple[int, float]]] = {}
        for name, points in raw.items():
            for point in points:
                if str(point.id) not in rows:
                    rows[str(point.id)] = len(chunks)
                    chunks.append(Chunk.from_dict(point.payload))
            lists[name] = [(rows[str(p.id)], float(p.score)) for p in points]
        return candidates_from_lists(chunks, lists, method, k, self.config.rrf_k)
