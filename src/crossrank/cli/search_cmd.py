"""``crossrank search``: first stage from an index, then rerank."""

from __future__ import annotations

import argparse
import json
import shutil
import sys

HELP = """Search an index built with `crossrank index build`: the first stage (bm25, dense or hybrid RRF)
takes --k candidates, the cross-encoder (--rerank MODEL, or none) reranks them and the best --top-n are
printed with first-stage rank/score, rerank score, source and text."""


def add_pipeline_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, help="index folder")
    parser.add_argument("--k", type=int, default=100, help="first-stage candidates")
    parser.add_argument("--top-n", type=int, default=5, help="results to keep")
    parser.add_argument(
        "--first-stage", default=None, choices=["bm25", "dense", "hybrid"], help="default: index's"
    )
    parser.add_argument(
        "--rerank", default="embedded", help="reranker model ('embedded', folder, hub id) or none"
    )
    parser.add_argument(
        "--threshold", default=None, help="drop rerank scores below X in [0, 1], or 'dynamic'"
    )
    parser.add_argument("--device", default=None, help="reranker device: cpu, cuda, cuda:N")
    parser.add_argument("--max-length", type=int, default=512, help="reranker tokens per pair")
    parser.add_argument("--batch-size", type=int, default=32, help="reranker rows per forward pass")


def build_pipeline(args: argparse.Namespace):
    """The pipeline of the command's options; the index and the options are checked before the
    reranker is loaded (which can take minutes the first time)."""
    from ..pipeline import Pipeline, check_threshold
    from ..retrieval import open_retriever
    from ..retrieval.base import check_k
    from ..thresholds import check_top_n

    retriever = open_retriever(args.index)
    rerank = bool(args.rerank) and args.rerank.lower() != "none"
    check_k(args.k)
    check_top_n(args.top_n)
    check_threshold(args.threshold, rerank)
    reranker = None
    if rerank:
        from ..reranker import Reranker

        reranker = Reranker(
            args.rerank, device=args.device, max_length=args.max_length, batch_size=args.batch_size
        )
    return Pipeline(
        retriever,
        reranker,
        k=args.k,
        top_n=args.top_n,
        threshold=args.threshold,
        method=args.first_stage,
    )


def register(sub) -> None:
    parser = sub.add_parser("search", help="search an index and rerank", description=HELP)
    parser.add_argument("query", help="the query")
    add_pipeline_args(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def format_table(hits) -> str:
    width = max(40, shutil.get_terminal_size((110, 20)).columns - 48)
    lines = [f"{'rank':>4}  {'first':>5}  {'fs score':>9}  {'rerank':>7}  source / text"]
    for hit in hits:
        rerank = f"{hit.rerank_score:7.4f}" if hit.rerank_score is not None else f"{'-':>7}"
        text = " ".join(hit.chunk.text.split())
        text = text if len(text) <= width else text[: width - 1] + "…"
        lines.append(
            f"{hit.rank:>4}  {hit.first_stage_rank:>5}  {hit.first_stage_score:9.4f}  {rerank}  "
            f"{hit.chunk.id}"
        )
        lines.append(f"{'':>32}{text}")
    if not hits:
        lines.append("(no results)")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    pipeline = build_pipeline(args)
    hits = pipeline.search(args.query)
    if args.json:
        payload = {
            "query": args.query,
            "hits": [h.to_dict() for h in hits],
            "timings_ms": {
                "first_stage": pipeline.last_timings.first_stage_ms,
                "rerank": pipeline.last_timings.rerank_ms,
            },
        }
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(format_table(hits))
    return 0
