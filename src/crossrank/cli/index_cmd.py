"""``crossrank index build|add|delete|info``: the persistent first-stage index."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ..errors import InvalidInputError

HELP = """Build and update a search index in DIR. Input: a .jsonl or .jsonl.gz file (one {"id", "text",
"title"?, ...} object per line; other keys are kept as metadata), a text/Markdown file, or a folder of
them (hidden files and folders, such as .git or .ipynb_checkpoints, and index folders are skipped). Documents
are split into overlapping token chunks; BM25 (jieba for Chinese, stemming for English) and dense
multilingual-e5-small vectors are stored. Updates are atomic: a crash leaves the previous index readable
(on --backend qdrant, a replaced document's new chunks are written before its old ones are removed).
A document's id is its JSONL "id" or, for a text file, its path relative to the --input folder (the file
name when --input is the file): `index add` replaces the documents whose ids it indexes again (and removes
those that are now empty), so give it the same folder to update a file from a nested folder."""

INPUT_HELP = "a .jsonl (or .jsonl.gz) file, a text/Markdown file, or a folder"
ID_HINT = (
    'a document\'s id is its JSONL "id", or for a text file its path relative to the --input folder it '
    "was indexed from; `crossrank search --index DIR QUERY --json` shows each hit's doc_id"
)


def register(sub) -> None:
    parser = sub.add_parser("index", help="build or update a search index", description=HELP)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="create an index from documents")
    build.add_argument(
        "--input", "-i", required=True, help=INPUT_HELP
    )
    build.add_argument("--index", required=True, help="index folder to create (new or empty)")
    build.add_argument("--chunk-tokens", type=int, default=200, help="tokens per chunk")
    build.add_argument("--overlap", type=int, default=40, help="tokens shared by consecutive chunks")
    build.add_argument(
        "--embedder", default="e5-small", choices=["e5-small", "hash", "none"], help="dense model"
    )
    build.add_argument(
        "--backend", default="embedded", choices=["embedded", "qdrant"], help="where vectors live"
    )
    build.add_argument(
        "--qdrant", default=None, help="qdrant backend: a server URL or a folder (default DIR/qdrant)"
    )
    build.set_defaults(func=run_build)
    add = actions.add_parser("add", help="add or replace documents in an index")
    add.add_argument("--input", "-i", required=True, help=INPUT_HELP)
    add.add_argument("--index", required=True, help="index folder")
    add.set_defaults(func=run_add)
    delete = actions.add_parser("delete", help="remove documents by id")
    delete.add_argument("--index", required=True, help="index folder")
    delete.add_argument("ids", nargs="+", help="document ids")
    delete.set_defaults(func=run_delete)
    info = actions.add_parser("info", help="print an index's manifest")
    info.add_argument("--index", required=True, help="index folder")
    info.set_defaults(func=run_info)


class _Bar:
    def __init__(self, total: int, desc: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="chunk", disable=None, file=sys.stderr)

    def __call__(self, n: int) -> None:
        self.bar.update(n)


def _add_documents(retriever, path: str, chunk_tokens: int, overlap: int) -> tuple[int, list[str], int]:
    """Chunks added, the ids of the documents they replaced (known for the embedded index), and the
    chunks removed because a document's new version is empty (its old text must not stay searchable)."""
    from ..retrieval.sources import chunk_documents, read_documents

    documents = list(read_documents(path))
    chunks = chunk_documents(documents, chunk_tokens, overlap)
    emptied = sorted({str(d["id"]) for d in documents} - {c.doc_id for c in chunks})
    removed = retriever.delete(emptied) if emptied else 0
    if not chunks:
        if removed:
            return 0, [], removed
        raise InvalidInputError(f"{path}: no text to index (all documents are empty)")
    indexed = {c.doc_id for c in getattr(retriever, "chunks", ())}
    replaced = sorted({c.doc_id for c in chunks} & indexed)
    bar = _Bar(len(chunks), "embedding")
    try:
        return retriever.add(chunks, progress=bar), replaced, removed
    finally:
        bar.bar.close()


def run_build(args: argparse.Namespace) -> int:
    from ..retrieval import IndexConfig, create_retriever
    from ..retrieval.chunking import check_chunking

    check_chunking(args.chunk_tokens, args.overlap)
    embedder = None if args.embedder == "none" else args.embedder
    if args.backend == "qdrant" and embedder is None:
        raise InvalidInputError("--backend qdrant needs an embedder: use --embedder e5-small or hash")
    if args.qdrant == ":memory:":  # gone when this command exits: every later search finds it empty
        raise InvalidInputError(
            "--qdrant :memory: keeps the index only while this command runs; pass a folder or a server "
            "URL, or leave --qdrant out (DIR/qdrant)"
        )
    config = IndexConfig(
        backend=args.backend,
        embedder=embedder,
        chunk_tokens=args.chunk_tokens,
        chunk_overlap=args.overlap,
        default_method="hybrid" if embedder else "bm25",
        qdrant_location=args.qdrant,
    )
    # Read and chunk first, so that bad input leaves no half-created index behind.
    from ..retrieval.sources import chunk_documents, read_documents

    chunks = chunk_documents(read_documents(args.input), config.chunk_tokens, config.chunk_overlap)
    if not chunks:
        raise InvalidInputError(f"{args.input}: no text to index (all documents are empty)")
    existed = Path(args.index).exists()
    retriever = create_retriever(args.index, config)
    bar = _Bar(len(chunks), "embedding")
    try:
        retriever.add(chunks, progress=bar)
    except BaseException:  # an error or Ctrl-C: no empty index left to block the next `index build`
        _remove_new_index(retriever, Path(args.index), existed)
        raise
    finally:
        bar.bar.close()
    sys.stdout.write(
        f"indexed {len(chunks)} chunks of {len({c.doc_id for c in chunks})} documents in {args.index}\n"
    )
    return 0


def _remove_new_index(retriever, folder: Path, existed: bool) -> None:
    """Undo a build that failed before its documents were in: the folder was new or empty (see
    check_new_index_folder), so everything in it is the index's own."""
    client = getattr(retriever, "client", None)
    if client is not None:
        client.close()
    if not existed:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for entry in folder.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def run_add(args: argparse.Namespace) -> int:
    from ..retrieval import open_retriever

    retriever = open_retriever(args.index)
    config = retriever.config
    chunking = (config.chunk_tokens, config.chunk_overlap)
    added, replaced, emptied = _add_documents(retriever, args.input, *chunking)
    note = ""
    if replaced:  # same id: the indexed version is gone (a text file's id is its path under --input)
        shown = ", ".join(map(repr, replaced[:5])) + (", ..." if len(replaced) > 5 else "")
        note = f" (replacing {len(replaced)} indexed documents with the same id: {shown})"
    if emptied:
        note += f" and removed {emptied} chunks of documents that are now empty"
    sys.stdout.write(f"added {added} chunks{note}; the index now holds {len(retriever)} chunks\n")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from ..retrieval import open_retriever

    retriever = open_retriever(args.index)
    chunks = getattr(retriever, "chunks", None)  # the embedded index: say which ids are not there
    indexed = {c.doc_id for c in chunks} if chunks is not None else None
    unknown = [i for i in args.ids if i not in indexed] if indexed is not None else []
    removed = retriever.delete(args.ids)
    if not removed:
        raise InvalidInputError(f"no document {', '.join(map(repr, args.ids))} in {args.index}; {ID_HINT}")
    if unknown:
        sys.stderr.write(f"not in the index (ignored): {', '.join(map(repr, unknown))}; {ID_HINT}\n")
    sys.stdout.write(f"removed {removed} chunks; the index now holds {len(retriever)} chunks\n")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from ..retrieval import read_manifest

    sys.stdout.write(json.dumps(read_manifest(Path(args.index)), indent=2, ensure_ascii=False) + "\n")
    return 0
