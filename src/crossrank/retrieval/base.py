"""What every first-stage retriever shares: the chunk record, the candidate it returns, the protocol."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

FIRST_STAGES = ("bm25", "dense", "hybrid")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable piece of a source document: ``text`` is ``document[start:end]`` of ``doc_id``, in
    characters of the document's text as read (a JSON line's ``text``; a text file decoded, line ends as
    ``\n`` and a byte-order mark dropped, so offsets in a CRLF file count each line end once)."""

    id: str
    doc_id: str
    text: str
    start: int = 0
    end: int = 0
    title: str = ""
    source: str = ""
    lang: str = "en"
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})


@dataclass(frozen=True, slots=True)
class Candidate:
    """A first-stage hit: ``rank`` (1-based) and ``score`` of the method that produced the list, and per
    method ``(rank, score)`` in ``components`` (for hybrid: both retrievers' and the fused one)."""

    chunk: Chunk
    rank: int
    score: float
    method: str
    components: dict[str, tuple[int, float]] = field(default_factory=dict)


@runtime_checkable
class Retriever(Protocol):
    """A first stage that can be searched and updated. Implementations: the embedded
    :class:`crossrank.retrieval.index.EmbeddedIndex` and
    :class:`crossrank.retrieval.qdrant.QdrantRetriever`."""

    def search(self, query: str, k: int = 100, method: str | None = None) -> list[Candidate]: ...

    def add(self, chunks: list[Chunk]) -> int: ...

    def delete(self, doc_ids: list[str]) -> int: ...

    def __len__(self) -> int: ...


def check_method(method: str) -> str:
    from ..errors import InvalidInputError

    if method not in FIRST_STAGES:
        raise InvalidInputError(f"first stage must be one of {', '.join(FIRST_STAGES)}, got {method!r}")
    return method


def check_k(k: int) -> int:
    from ..errors import InvalidInputError

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be a positive integer (candidates to retrieve), got {k!r}")
    return k
