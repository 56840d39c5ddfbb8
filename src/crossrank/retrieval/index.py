"""The embedded index: chunks, BM25 and dense vectors persisted in a folder, updated atomically.

Layout of an index folder::

    manifest.json        {"format", "version", "generation", "config", "n_chunks"} — the only mutable file
    gen-000007/          one immutable generation: chunks.jsonl, vectors.npy (dense), bm25/ (bm25s arrays)
    .lock                serialises writers (fcntl)

An update writes a complete new generation into a temporary folder, renames it into place, then swaps
``manifest.json`` with ``os.replace``. Until that swap, readers (and a crash) see the previous generation
in full; after it, the new one. Older generations and leftover temporary folders are removed afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..scoring import check_encodable, check_text
from .base import Candidate, Chunk, check_k, check_method
from .bm25 import BM25, DEFAULT_B, DEFAULT_K1
from .chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP, check_chunking
from .dense import DEFAULT_EMBEDDER, Embedder, dense_search, embed_in_batches, make_embedder
from .fusion import RRF_K, reciprocal_rank_fusion
from .sources import indexed_text
from .text import tokenize_many

logger = logging.getLogger(__name__)

FORMAT, VERSION = "crossrank-index", 1
MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"
# The names an index writes in its folder; nothing else there is ever deleted or overwritten.
_OWN_NAME = re.compile(r"gen-\d{6,}|\.tmp-(gen-\d{6,}|manifest\.json)\.\d+|\.lock")


@dataclass(frozen=True, slots=True)
class IndexConfig:
    """How an index is built; stored in its manifest. ``embedder=None`` disables the dense first stage."""

    backend: str = "embedded"
    embedder: str | None = DEFAULT_EMBEDDER
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    chunk_overlap: int = DEFAULT_OVERLAP
    k1: float = DEFAULT_K1
    b: float = DEFAULT_B
    rrf_k: int = RRF_K
    default_method: str = "hybrid"
    # qdrant backend: a folder, ":memory:" or an http(s) URL; None: the index folder's qdrant/
    qdrant_location: str | None = None
    collection: str = "crossrank"

    def __post_init__(self) -> None:
        """Refuse settings that would fail only later, at search time (rrf_k=-1: a division by zero)."""
        if self.backend not in ("embedded", "qdrant"):
            raise InvalidInputError(f"index backend must be embedded or qdrant, got {self.backend!r}")
        check_method(self.default_method)
        check_chunking(self.chunk_tokens, self.chunk_overlap)
        if isinstance(self.rrf_k, bool) or not isinstance(self.rrf_k, int) or self.rrf_k < 0:
            raise InvalidInputError(f"rrf_k must be a non-negative integer (60 is usual), got {self.rrf_k!r}")
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (self.k1, self.b))
        if not numbers or not (self.k1 > 0 and 0 <= self.b <= 1):
            raise InvalidInputError(f"BM25 needs k1 > 0 and b in [0, 1], got k1={self.k1!r}, b={self.b!r}")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to ``path`` so that readers see the old or the new file, never a partial one."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(payload, handle, ensure_ascii=False, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent)


def read_manifest(folder: Path) -> dict:
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise InvalidInputError(
            f"{folder} is not a crossrank index (no {MANIFEST}); create one with "
            f"`crossrank index build --input PATH --index {folder}`"
        )
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except ValueError as exc:  # not JSON, not UTF-8
        raise damaged(folder, f"{MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise InvalidInputError(
            f"{manifest} is not a version-{VERSION} crossrank index manifest; rebuild the index"
        )
    if not isinstance(data.get("config"), dict):
        raise damaged(folder, f'{MANIFEST} has no "config" object')
    return data


def damaged(folder: Path, what: str) -> InvalidInputError:
    """The error for an index folder whose files are missing, cut short or do not match each other."""
    return InvalidInputError(
        f"the index in {folder} is damaged: {what}; delete the folder and rebuild it with "
        f"`crossrank index build --input PATH --index {folder}`"
    )


def index_config(folder: Path, manifest: dict) -> IndexConfig:
    """The :class:`IndexConfig` stored in a manifest (read with :func:`read_manifest`)."""
    known = set(IndexConfig.__slots__)
    unknown = sorted(set(manifest["config"]) - known)
    if unknown:
        raise InvalidInputError(
            f"the index in {folder} was written by another version of crossrank (unknown settings: "
            f"{', '.join(unknown)}); open it with that version, or rebuild it with this one"
        )
    return IndexConfig(**manifest["config"])


def _manifest_stamp(folder: Path) -> tuple | None:
    """What tells one manifest file from the next: each update replaces it with a new file."""
    try:
        st = (folder / MANIFEST).stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@contextlib.contextmanager
def writer_lock(folder: Path):
    """Hold the folder's writer lock (blocks while another process updates the index)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class EmbeddedIndex:
    """BM25 + dense + RRF over chunks, persisted in ``folder``. Open with :meth:`open` or :meth:`create`."""

    def __init__(
        self, folder: Path, config: IndexConfig, chunks: list[Chunk], vectors, bm25: BM25, generation: int
    ):
        self.folder, self.config, self.chunks = folder, config, chunks
        self.vectors, self.bm25, self.generation = vectors, bm25, generation
        self._embedder: Embedder | None = None
        self._stamp: tuple | None = None  # the manifest file this state was read from (see refresh)
        self._state_lock = threading.Lock()  # chunks, vectors and bm25 change together

    # -- opening -------------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, config: IndexConfig | None = None, embedder: Embedder | None = None):
        """A new, empty index in ``folder``: a new or empty folder (refused when an index or any other
        file is already there)."""
        folder = Path(folder)
        check_new_index_folder(folder)
        config = config or IndexConfig()
        index = cls(folder, config, [], None, BM25(None, 0), 0)
        index._embedder = index._check_embedder(embedder)
        with writer_lock(folder):
            index._commit([], None)
        return index

    @classmethod
    def open(cls, folder: str | Path, embedder: Embedder | None = None) -> EmbeddedIndex:
        folder = Path(folder)
        for attempt in range(3):
            try:
                stamp = _manifest_stamp(folder)
                index = cls._load(folder, read_manifest(folder), embedder)
                index._stamp = stamp
                return index
            except FileNotFoundError as exc:
                if attempt == 2:
                    raise damaged(folder, f"{exc.filename} is missing") from None
                time.sleep(0.05)  # a writer replaced the generation between manifest and files: read again
        raise AssertionError("unreachable")

    @classmethod
    def _load(cls, folder: Path, manifest: dict, embedder: Embedder | None) -> EmbeddedIndex:
        config = index_config(folder, manifest)
        name = manifest.get("generation")
        if not isinstance(name, str) or not re.fullmatch(r"gen-\d+", name):
            raise damaged(folder, f"{MANIFEST} names no generation folder (generation: {name!r})")
        gen_dir = folder / name
        try:
            with (gen_dir / "chunks.jsonl").open(encoding="utf-8") as handle:
                chunks = [Chunk.from_dict(json.loads(line)) for line in handle]
            vectors = np.load(gen_dir / "vectors.npy") if (gen_dir / "vectors.npy").is_file() else None
            bm25 = BM25.load(gen_dir / "bm25", len(chunks))
        except (ValueError, TypeError, KeyError, EOFError) as exc:  # cut short or overwritten
            raise damaged(folder, f"{name} cannot be read ({type(exc).__name__}: {exc})") from None
        counts = {"chunks.jsonl": len(chunks), "bm25": bm25.n_docs}
        if vectors is not None:
            counts["vectors.npy"] = len(vectors)
        elif config.embedder and chunks:
            counts["vectors.npy"] = 0
        if manifest.get("n_chunks") is not None:
            counts[MANIFEST] = manifest["n_chunks"]
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{k} {v}" for k, v in counts.items())
            raise damaged(folder, f"its files disagree on the number of chunks ({listed})")
        index = cls(folder, config, chunks, vectors, bm25, int(name.split("-")[1]))
        index._embedder = index._check_embedder(embedder)
        logger.info("opened index %s generation %d: %d chunks", folder, index.generation, len(chunks))
        return index

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def embedder(self) -> Embedder | None:
        if self._embedder is None and self.config.embedder:
            self._embedder = self._check_embedder(make_embedder(self.config.embedder))
        return self._embedder

    def _check_embedder(self, embedder: Embedder | None) -> Embedder | None:
        """Refuse an embedder other than the one the vectors were made with (query vectors would be
        compared with passage vectors of another model: an error at best, wrong hits at worst)."""
        if embedder is None or not self.config.embedder:
            return embedder
        if embedder.name != self.config.embedder:
            raise InvalidInputError(
                f"the index in {self.folder} is built with the {self.config.embedder!r} embedder, but the "
                f"embedder given is {embedder.name!r}; pass none (the index makes its own) or rebuild the "
                "index with that embedder"
            )
        if self.vectors is not None and len(self.vectors) and self.vectors.shape[1] != embedder.dim:
            raise InvalidInputError(
                f"the index in {self.folder} holds {self.vectors.shape[1]}-dimensional vectors, but the "
                f"{embedder.name!r} embedder makes {embedder.dim}-dimensional ones; rebuild the index"
            )
        return embedder

    # -- updating ------------------------------------------------------------------------------------
    def add(self, chunks: list[Chunk], progress=None) -> int:
        """Add chunks; documents whose id is already indexed are replaced. Returns chunks added."""
        check_chunks(chunks)
        with writer_lock(self.folder):
            self.refresh()  # another process may have committed since: start from its state
            new_docs = {c.doc_id for c in chunks}
            keep = [i for i, c in enumerate(self.chunks) if c.doc_id not in new_docs]
            merged = [self.chunks[i] for i in keep] + list(chunks)
            vectors = None
            if self.config.embedder:
                fresh = self._embed(chunks, progress)
                old = (
                    self.vectors[keep]
                    if self.vectors is not None
                    else np.zeros((0, fresh.shape[1]), np.float32)
                )
                vectors = np.concatenate([old, fresh]).astype(np.float32)
            self._commit(merged, vectors)
        return len(chunks)

    def delete(self, doc_ids: list[str]) -> int:
        """Remove every chunk of the given documents. Returns chunks removed."""
        with writer_lock(self.folder):
            self.refresh()  # another process may have committed since: start from its state
            gone = set(doc_ids)
            keep = [i for i, c in enumerate(self.chunks) if c.doc_id not in gone]
            removed = len(self.chunks) - len(keep)
            vectors = self.vectors[keep] if self.vectors is not None else None
            self._commit([self.chunks[i] for i in keep], vectors)
        return removed

    def _embed(self, chunks: list[Chunk], progress=None) -> np.ndarray:
        embedder = self.embedder
        texts = [indexed_text(c) for c in chunks]
        return embed_in_batches(embedder.embed_passages, texts, embedder.dim, progress)

    def refresh(self) -> bool:
        """Catch up with updates committed since this object read the index (by `crossrank index add` /
        `delete` or another object): load the newest generation if there is a newer one; returns whether
        there was. :meth:`search` calls it first, so a long-lived index or Pipeline never serves deleted
        or replaced documents; when nothing changed it costs one ``stat`` of the manifest."""
        stamp = _manifest_stamp(self.folder)
        if stamp is not None and stamp == self._stamp:
            return False
        fresh = EmbeddedIndex.open(self.folder, self._embedder)
        changed = fresh.generation != self.generation
        self._take(fresh)
        return changed

    def _take(self, fresh: EmbeddedIndex) -> None:
        with self._state_lock:
            self.chunks, self.vectors, self.bm25 = fresh.chunks, fresh.vectors, fresh.bm25
            self.generation, self._stamp = fresh.generation, fresh._stamp

    def _commit(self, chunks: list[Chunk], vectors) -> None:
        """Write a new generation and publish it (caller holds the writer lock)."""
        generation = self.generation + 1
        name = f"gen-{generation:06d}"
        tmp = self.folder / f"{TMP_PREFIX}{name}.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        bm25 = BM25.build(tokenize_many([indexed_text(c) for c in chunks]), self.config.k1, self.config.b)
        self._write_generation(tmp, chunks, vectors, bm25)
        shutil.rmtree(self.folder / name, ignore_errors=True)  # left by a crash before its manifest swap
        os.replace(tmp, self.folder / name)
        _fsync_path(self.folder)
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "generation": name,
            "config": asdict(self.config),
            "n_chunks": len(chunks),
            "n_documents": len({c.doc_id for c in chunks}),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_json_atomic(self.folder / MANIFEST, manifest)
        with self._state_lock:
            self.chunks, self.vectors, self.bm25, self.generation = chunks, vectors, bm25, generation
            self._stamp = _manifest_stamp(self.folder)
        self._collect_garbage({name, f"gen-{generation - 1:06d}"})
        logger.info("index %s now at %s with %d chunks", self.folder, name, len(chunks))

    @staticmethod
    def _write_generation(folder: Path, chunks: list[Chunk], vectors, bm25: BM25) -> None:
        with (folder / "chunks.jsonl").open("w", encoding="utf-8") as handle:
            for chunk in chunks:
                handle.write(json.dumps(chunk.to_dict(), ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if vectors is not None:
            with (folder / "vectors.npy").open("wb") as handle:
                np.save(handle, vectors)
                handle.flush()
                os.fsync(handle.fileno())
        (folder / "bm25").mkdir()
        bm25.save(folder / "bm25")

    def _collect_garbage(self, keep: set[str]) -> None:
        """Remove generations but the current and the previous one (a reader may still be loading it),
        and what killed writers left behind (the caller holds the writer lock, so no write is in progress).
        Only names the index writes itself are touched."""
        for entry in self.folder.iterdir():
            if not _OWN_NAME.fullmatch(entry.name) or entry.name in keep or entry.name == ".lock":
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            elif entry.name.startswith(TMP_PREFIX):
                entry.unlink(missing_ok=True)

    # -- searching -----------------------------------------------------------------------------------
    def search(self, query: str, k: int = 100, method: str | None = None) -> list[Candidate]:
        """The best ``k`` chunks for ``query`` by ``bm25``, ``dense`` or ``hybrid`` (RRF of both), from the
        index's newest generation (see :meth:`refresh`)."""
        method = check_method(method or self.config.default_method)
        check_k(k)
        check_text(query, "query")
        self.refresh()
        with self._state_lock:  # one generation throughout, even if another thread refreshes meanwhile
            chunks, vectors, bm25 = self.chunks, self.vectors, self.bm25
        if not chunks:
            raise InvalidInputError(
                f"the index in {self.folder} is empty; add documents with `crossrank index add --index "
                f"{self.folder} --input PATH`"
            )
        if method != "bm25" and vectors is None:
            if method == "dense":
                raise InvalidInputError(
                    "this index has no dense vectors (built with --embedder none); use bm25"
                )
            method = "bm25"
        lists: dict[str, list[tuple[int, float]]] = {}
        if method in ("bm25", "hybrid"):
            lists["bm25"] = bm25.search(query, k)
        if method in ("dense", "hybrid"):
            query_vector = self.embedder.embed_queries([query])[0]
            lists["dense"] = dense_search(vectors, query_vector, k)
        return candidates_from_lists(chunks, lists, method, k, self.config.rrf_k)


def check_new_index_folder(folder: Path) -> None:
    """Refuse to create an index where one exists, or in a folder holding anything else (the index would
    mix its files with them and its clean-up could remove theirs)."""
    if (folder / MANIFEST).exists():
        raise InvalidInputError(
            f"an index already exists in {folder}; use `crossrank index add` or another DIR"
        )
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{folder} is a file, not a folder; pass a new folder for the index")
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    others = sorted(name for name in names if not _OWN_NAME.fullmatch(name))
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise InvalidInputError(
            f"{folder} already holds files that are not a crossrank index ({shown}); pass a new or empty "
            "folder for the index"
        )


def check_chunks(chunks) -> None:
    """Chunks to index: a list of :class:`Chunk` with distinct ids whose id, title and text are valid
    Unicode."""
    if isinstance(chunks, str | bytes) or not isinstance(chunks, list | tuple):
        raise InvalidInputError("chunks must be a list of Chunk objects (see sources.chunk_documents)")
    seen: dict[str, int] = {}
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, Chunk):
            raise InvalidInputError(f"chunks[{i}] must be a Chunk, got {type(chunk).__name__}")
        for name in ("id", "doc_id", "title", "text"):
            value = getattr(chunk, name)
            if not isinstance(value, str):
                raise InvalidInputError(f"chunks[{i}].{name} must be a string, got {type(value).__name__}")
            check_encodable(value, f"chunks[{i}].{name}")
        if seen.setdefault(chunk.id, i) != i:
            raise InvalidInputError(
                f"chunks[{i}] has the id {chunk.id!r} of chunks[{seen[chunk.id]}]; chunk ids must be unique "
                "(two documents with one id? chunk them in one chunk_documents call, which says where)"
            )


def candidates_from_lists(
    chunks: list[Chunk], lists: dict[str, list[tuple[int, float]]], method: str, k: int, rrf_k: int = RRF_K
) -> list[Candidate]:
    """Turn per-method ``(row, score)`` lists into candidates; ``hybrid`` fuses them with RRF."""
    components: dict[int, dict[str, tuple[int, float]]] = {}
    for name, hits in lists.items():
        for rank, (row, score) in enumerate(hits, start=1):
            components.setdefault(row, {})[name] = (rank, score)
    if method == "hybrid":
        ranked = reciprocal_rank_fusion([[row for row, _ in hits] for hits in lists.values()], k=rrf_k)[:k]
    else:
        ranked = lists[method][:k]
    out = []
    for rank, (row, score) in enumerate(ranked, start=1):
        parts = dict(components.get(row, {}))
        if method == "hybrid":
            parts["hybrid"] = (rank, float(score))
        out.append(Candidate(chunks[row], rank, float(score), method, parts))
    return out
