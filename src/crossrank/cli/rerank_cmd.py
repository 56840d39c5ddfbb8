"""``crossrank rerank``: rank documents for one query."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict

from ..errors import InvalidInputError
from ..scoring import check_text
from ..thresholds import select
from .common import Progress, add_model_args, load_reranker, open_text, parse_json_line

HELP = """Rerank documents for a query. --docs is a text file with one document per line, or with --jsonl
one JSON string or {"text": ...} object per line ('-' reads stdin); blank lines are skipped. Prints a
table, or with --json a list of {index, line, score, document, window} best first (index: the
document's position among the documents read, from 0; line: its line in the file, from 1)."""


def register(sub) -> None:
    parser = sub.add_parser("rerank", help="rerank documents for a query", description=HELP)
    parser.add_argument("--query", "-q", required=True, help="the query")
    parser.add_argument("--docs", "-d", required=True, help="documents file, one per line ('-' for stdin)")
    parser.add_argument("--jsonl", action="store_true", help="documents file is JSON lines")
    parser.add_argument("--top-n", type=int, default=None, help="keep the best N")
    parser.add_argument("--threshold", default=None, help="drop scores below X in [0, 1], or 'dynamic'")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_model_args(parser)
    parser.set_defaults(func=run)


def read_documents(path: str, jsonl: bool) -> tuple[list[str], list[int]]:
    """The documents of a file and the line each came from (blank lines skipped); a bad document is
    an error naming its ``file:line``."""
    docs, lines = [], []
    for number, line in open_text(path):
        if not line.strip():
            continue
        value = line.rstrip("\n")
        if jsonl:
            value = parse_json_line(line, number, path)
            if isinstance(value, dict):
                value = value.get("text")
            if not isinstance(value, str):
                raise InvalidInputError(f'{path}:{number}: expected a JSON string or {{"text": "..."}}')
        check_text(value, f"{path}:{number}: the document")
        docs.append(value)
        lines.append(number)
    if not docs:
        raise InvalidInputError(f"{path}: no documents found; write one document per line")
    return docs, lines


def run(args: argparse.Namespace) -> int:
    documents, lines = read_documents(args.docs, args.jsonl)
    reranker = load_reranker(args)
    progress = Progress("reranking")
    try:
        ranked = reranker.rerank(args.query, documents, progress=progress)
    finally:
        progress.close()
    # The cut-offs here rather than in rerank(): an empty table can then say which bar was missed.
    kept, cut = select([(r.index, r.score) for r in ranked], top_n=args.top_n, threshold=args.threshold)
    by_index = {r.index: r for r in ranked}
    results = [by_index[i] for i, _ in kept]
    if args.json:
        payload = [
            {
                "index": r.index,
                "line": lines[r.index],
                "score": r.score,
                "document": r.document,
                "window": asdict(r.window),
            }
            for r in results
        ]
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return 0
    width = max(40, shutil.get_terminal_size((100, 20)).columns - 36)
    sys.stdout.write(f"{'rank':>4}  {'line':>5}  {'score':>7}  {'window':>7}  document\n")
    for rank_no, r in enumerate(results, start=1):
        text = " ".join(r.document.split())
        text = text if len(text) <= width else text[: width - 1] + "…"
        window = f"{r.window.index + 1}/{r.window.count}"
        sys.stdout.write(f"{rank_no:>4}  {lines[r.index]:>5}  {r.score:7.4f}  {window:>7}  {text}\n")
    if not results:
        rule = " (the σ rule's bar)" if str(args.threshold).strip().lower() == "dynamic" else ""
        sys.stdout.write(
            f"(no document reached the threshold {cut:.3f}{rule}; the best score was {ranked[0].score:.4f})\n"
        )
    return 0
