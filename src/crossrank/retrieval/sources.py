"""Read documents to index: text/Markdown files (one document each) or JSON lines, and chunk them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..textfiles import read_lines, read_text
from .base import Chunk
from .chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP, chunk_text
from .text import detect_language

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".text")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
_RESERVED = {"id", "_id", "text", "title"}


def _markdown_title(text: str) -> str:
    for line in text.splitlines()[:20]:
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def _text_document(path: Path, root: Path) -> dict[str, Any]:
    text = read_text(path)
    rel = path.name if root == path else str(path.relative_to(root))
    return {"id": rel, "text": text, "title": _markdown_title(text) or path.stem, "source": str(path)}


def _jsonl_documents(path: Path) -> Iterator[dict[str, Any]]:
    for number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"{path}:{number}: not valid JSON ({exc.msg}); each line must be one object "
                '{"id": ..., "text": ..., "title": optional, other keys: metadata}'
            ) from None
        doc_id = record.get("id", record.get("_id")) if isinstance(record, dict) else None
        if doc_id is None or not isinstance(record.get("text"), str):
            raise InvalidInputError(
                f'{path}:{number}: each line needs an "id" and a string "text" field, '
                f"got {line.strip()[:80]!r}"
            )
        metadata = {k: v for k, v in record.items() if k not in _RESERVED and k != "metadata"}
        if isinstance(record.get("metadata"), dict):
            metadata.update(record["metadata"])
        usable_id = isinstance(doc_id, str) and doc_id.strip() or type(doc_id) is int
        if not usable_id:
            raise InvalidInputError(
                f'{path}:{number}: "id" must be a non-blank string or an integer, got {json.dumps(doc_id)}; '
                "it is how the document is found, replaced and deleted later"
            )
        yield {
            "id": str(doc_id),
            "text": record["text"],
            "title": str(record.get("title") or ""),
            "source": f"{path}:{number}",
            "metadata": metadata,
        }


def check_record(record: dict[str, Any], where: str) -> None:
    """Refuse a record holding text that is not valid Unicode (a lone surrogate from a ``\\ud800``
    escape): it could be neither embedded nor written to the index."""
    for key, value in record.items():
        try:
            json.dumps([key, value], ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"{where}: field {key!r} holds a lone surrogate (an unpaired \\ud800-\\udfff escape, near "
                f"character {exc.start} of the field as JSON), which is not valid Unicode; fix that text"
            ) from None


def _is_index(folder: Path) -> bool:
    from .index import FORMAT, MANIFEST

    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _is_jsonl(path: Path) -> bool:
    return path.name.lower().endswith(JSONL_SUFFIXES)  # read_lines gunzips a .gz


def read_documents(path: str | Path) -> Iterator[dict[str, Any]]:
    """Documents from a file or a folder (searched recursively): ``.jsonl`` lines, or one per text file.
    In a folder, hidden files and folders (names starting with ``.``) and crossrank index folders are
    skipped (their files are copies, tools' files or chunks, not documents)."""
    root = Path(path)
    if not root.exists():
        raise InvalidInputError(f"input {root} does not exist; give a .jsonl file, a text file or a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    if root.is_dir():  # hidden files and folders (.git, .venv, .ipynb_checkpoints copies) are not documents
        hidden = {p for p in files if any(part.startswith(".") for part in p.relative_to(root).parts)}
        if hidden:
            logger.info("skipping %d hidden files in %s", len(hidden), root)
            files = [p for p in files if p not in hidden]
    indexes = [m.parent for m in files if m.name == "manifest.json" and _is_index(m.parent)]
    if root in indexes:
        raise InvalidInputError(
            f"{root} is a crossrank index, not documents; give the documents it was built from"
        )
    if indexes:  # an index kept inside the document folder: its chunks.jsonl files are not documents
        logger.info("skipping the crossrank indexes in %s: %s", root, ", ".join(map(str, indexes)))
        files = [p for p in files if not any(p.is_relative_to(ix) for ix in indexes)]
    usable = [p for p in files if _is_jsonl(p) or p.suffix.lower() in TEXT_SUFFIXES]
    if not usable:
        raise InvalidInputError(
            f"no input files in {root}: expected {', '.join(JSONL_SUFFIXES + TEXT_SUFFIXES)} files"
        )
    for file in usable:
        if _is_jsonl(file):
            yield from _jsonl_documents(file)
        else:
            yield _text_document(file, root if root.is_dir() else file)


def chunk_documents(
    documents: Iterable[dict[str, Any]], size: int = DEFAULT_CHUNK_TOKENS, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    """Split documents into chunks with ids ``<doc id>#<n>``; the language is detected per document.
    Document ids must be unique (compared as strings): a repeated id is an error naming both places."""
    chunks: list[Chunk] = []
    seen: dict[str, str] = {}
    for position, doc in enumerate(documents):
        where = doc.get("source") or f"documents[{position}]"
        check_record(doc, where)
        doc_id = str(doc["id"])
        if doc_id in seen:
            raise InvalidInputError(
                f"document id {doc_id!r} appears twice ({seen[doc_id]} and {where}); ids must be unique: "
                "give one of them another id, or drop the duplicate"
            )
        seen[doc_id] = where
        lang = detect_language(doc["text"])
        for n, span in enumerate(chunk_text(doc["text"], size, overlap)):
            chunks.append(
                Chunk(
                    id=f"{doc_id}#{n}",
                    doc_id=doc_id,
                    text=span.text,
                    start=span.start,
                    end=span.end,
                    title=doc.get("title", ""),
                    source=doc.get("source", ""),
                    lang=lang,
                    metadata=doc.get("metadata") or {},
                )
            )
    return chunks


def indexed_text(chunk: Chunk) -> str:
    """What the first stage indexes for a chunk: its title (when any) then its text."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text
