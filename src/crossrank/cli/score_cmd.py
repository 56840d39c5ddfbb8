"""``crossrank score``: JSON lines of pairs in, JSON lines of scores out."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InvalidInputError
from ..scoring import check_text
from .common import Progress, add_model_args, load_reranker, open_text, parse_json_line

HELP = """Score (query, document) pairs. Each input line is a JSON array ["query", "document"] or an object
{"query": ..., "document": ...}; blank lines are skipped. Each output line is {"line": int, "score":
float} in input order (line: the pair's line in the input, from 1; score: the raw logit, or the
sigmoid with --normalize)."""


def register(sub) -> None:
    parser = sub.add_parser("score", help="score JSONL pairs", description=HELP)
    parser.add_argument("input", nargs="?", default="-", help="JSONL file of pairs (default: stdin)")
    parser.add_argument("--normalize", action="store_true", help="sigmoid scores in [0, 1] instead of logits")
    add_model_args(parser)
    parser.set_defaults(func=run)


def read_pairs(path: str) -> tuple[list[tuple[str, str]], list[int]]:
    """The pairs of a JSONL file and the line each came from; a bad pair is an error naming its
    ``file:line``."""
    pairs, lines = [], []
    for number, line in open_text(path):
        if not line.strip():
            continue
        value = parse_json_line(line, number, path)
        if isinstance(value, dict) and {"query", "document"} <= value.keys():
            value = [value["query"], value["document"]]
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(x, str) for x in value)):
            raise InvalidInputError(
                f'{path}:{number}: expected ["query", "document"] or {{"query": ..., "document": ...}}'
            )
        check_text(value[0], f"{path}:{number}: the query")
        check_text(value[1], f"{path}:{number}: the document")
        pairs.append((value[0], value[1]))
        lines.append(number)
    if not pairs:
        raise InvalidInputError(f"{path}: no pairs found; write one JSON pair per line")
    return pairs, lines


def run(args: argparse.Namespace) -> int:
    from ..thresholds import sigmoid

    pairs, lines = read_pairs(args.input)
    reranker = load_reranker(args)
    progress = Progress("scoring")
    try:
        scored = reranker.score_pairs(pairs, progress=progress)
    finally:
        progress.close()
    for line, item in zip(lines, scored, strict=True):
        score = sigmoid(item.logit) if args.normalize else item.logit
        sys.stdout.write(json.dumps({"line": line, "score": score}) + "\n")
    return 0
