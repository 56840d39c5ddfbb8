"""``crossrank rerank-table``: rerank a Parquet/JSONL table of (query, candidates) rows, on Ray Data."""

from __future__ import annotations

import argparse
import json
import sys

from .common import add_model_args, model_options

HELP = """Rerank every row of a table: input Parquet or JSON-lines files (or folders of them) with a query
column and a candidates column (a list of texts), or long rows (query id, query, document) grouped once
with --group-by. Writes OUTPUT/part-*.parquet: the input columns plus scores (sigmoid, one per candidate,
input order), ranking (candidate indices, best first, after --top-n/--threshold), windows (each
candidate's winning window) and error (why a row could not be scored; the rest of the job completes).
Rerunning skips the finished parts. Runs on a local Ray started for the job (stopped after), on
--ray-address, or with --in-process in this process only."""


def register(sub) -> None:
    parser = sub.add_parser("rerank-table", help="rerank a Parquet/JSONL table (Ray Data)", description=HELP)
    parser.add_argument("inputs", nargs="+", help="Parquet/JSONL files or folders of them")
    parser.add_argument("--output", "-o", required=True, help="folder for the Parquet parts")
    parser.add_argument("--query-column", default="query", help="column holding the query")
    parser.add_argument("--candidates-column", default="candidates", help="column holding the list of texts")
    parser.add_argument("--group-by", default=None, help="query-id column of long rows (a document per row)")
    parser.add_argument("--document-column", default="document", help="document column of long rows")
    parser.add_argument("--top-n", type=int, default=None, help="keep the best N in ranking (default: all)")
    parser.add_argument("--threshold", default=None, help="a number in [0, 1] or 'dynamic' (for ranking)")
    parser.add_argument("--rows-per-file", type=int, default=10_000, help="rows per output part")
    parser.add_argument("--in-process", action="store_true", help="no Ray: a plain loop in this process")
    parser.add_argument("--ray-address", default=None, help="Ray cluster to use (default: a local Ray)")
    parser.add_argument("--concurrency", type=int, default=1, help="Ray actors, each with its own model")
    parser.add_argument("--actor-cpus", type=float, default=1.0, help="CPUs per actor (= its model threads)")
    parser.add_argument("--actor-gpus", type=float, default=0.0, help="GPUs per actor")
    parser.add_argument("--truncate", choices=["right", "left"], default=None,
                        help="score one window per document, cut from that end (default: all windows)")
    parser.add_argument("--overwrite", action="store_true", help="delete an earlier run's parts first")
    add_model_args(parser)
    parser.set_defaults(func=run)


def threshold_value(text: str | None):
    if text is None or text.strip().lower() == "dynamic":
        return text
    try:
        return float(text)
    except ValueError:
        from ..errors import InvalidInputError

        raise InvalidInputError(f"--threshold must be a number or 'dynamic', got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from ..batch import rerank_table

    summary = rerank_table(
        args.inputs,
        args.output,
        model=args.model,
        query_column=args.query_column,
        candidates_column=args.candidates_column,
        group_by=args.group_by,
        document_column=args.document_column,
        top_n=args.top_n,
        threshold=threshold_value(args.threshold),
        rows_per_file=args.rows_per_file,
        use_ray=not args.in_process,
        ray_address=args.ray_address,
        concurrency=args.concurrency,
        num_cpus=args.actor_cpus,
        num_gpus=args.actor_gpus,
        overwrite=args.overwrite,
        truncate=args.truncate,
        **model_options(args),
    )
    report = {
        "output": str(summary.output),
        "parts_written": summary.written,
        "parts_skipped": summary.skipped,
        "rows": summary.rows,
        "rows_with_error": summary.errors,
        "seconds": round(summary.seconds, 2),
    }
    sys.stdout.write(json.dumps(report) + "\n")
    return 0
