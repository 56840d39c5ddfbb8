"""``crossrank eval``: first stage vs reranked on a real data set, with ranx metrics and latency."""

from __future__ import annotations

import argparse
import json
import sys

HELP = """Evaluate on a data set folder: beir (corpus.jsonl[.gz], queries.jsonl[.gz], qrels TSV), wikiqa
(WikiQA TSVs), cmrc (SQuAD-style JSON as passage ranking) or cmrc-sent (the same as answer-sentence
selection). Reports NDCG@10, MRR@10, MAP and Recall@100 of the first stage and of the reranked list, with
latency per query. Corpus embeddings are cached under $CROSSRANK_HOME/cache (--no-cache to skip)."""


def register(sub) -> None:
    parser = sub.add_parser("eval", help="evaluate first stage vs reranked on a data set", description=HELP)
    parser.add_argument("--dataset", required=True, help="data set folder")
    parser.add_argument(
        "--format", required=True, choices=["beir", "wikiqa", "cmrc", "cmrc-sent"], help="layout"
    )
    parser.add_argument(
        "--first-stage", default="hybrid", choices=["bm25", "dense", "hybrid"], help="retriever"
    )
    parser.add_argument("--k", type=int, default=100, help="first-stage candidates reranked per query")
    parser.add_argument(
        "--rerank", default="embedded", help="reranker model ('embedded', folder, hub id) or none"
    )
    parser.add_argument("--limit", type=int, default=None, help="the first N queries in file order")
    parser.add_argument("--embedder", default="e5-small", choices=["e5-small", "hash"], help="dense model")
    parser.add_argument("--no-cache", action="store_true", help="do not cache corpus embeddings")
    parser.add_argument("--device", default=None, help="reranker device: cpu, cuda, cuda:N")
    parser.add_argument("--max-length", type=int, default=512, help="reranker tokens per pair")
    parser.add_argument("--batch-size", type=int, default=32, help="reranker rows per forward pass")
    parser.add_argument(
        "--keep-self-hits",
        action="store_true",
        help="beir: keep a retrieved document whose id equals the query's (dropped by default)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--plot",
        default=None,
        help="write a PNG comparing the two, with a reliability diagram of the reranked scores, to this file",
    )
    parser.set_defaults(func=run)


def make_embedder(name: str, cache: bool):
    from ..models.build import crossrank_home
    from ..retrieval.dense import CachedEmbedder
    from ..retrieval.dense import make_embedder as make

    embedder = make(name)
    if cache and name != "hash":
        return CachedEmbedder(embedder, crossrank_home() / "cache" / f"embeddings-{name}.sqlite")
    return embedder


def format_report(result: dict) -> str:
    from ..eval.metrics import METRICS

    config = result["config"]
    lines = [
        f"dataset {config['dataset']}: {result['n_queries']} queries, corpus {config['corpus_size']}, "
        f"first stage {config['first_stage']}, k={config['k']}",
        f"{'':<14}" + "".join(f"{m:>11}" for m in METRICS) + f"{'ms/query':>11}",
    ]
    for name in ("first_stage", "reranked"):
        values = result.get(name)
        if values:
            lines.append(
                f"{name:<14}"
                + "".join(f"{values[m]:>11.4f}" for m in METRICS)
                + f"{values['latency_ms']:>11.1f}"
            )
    if result.get("scores"):
        lines.extend(format_scores(result["scores"]))
    lines.extend(f"note: {note}" for note in config.get("notes", []))
    return "\n".join(lines) + "\n"


def number(value: float | None, spec: str) -> str:
    """``value`` formatted with ``spec``; ``n/a`` for an undefined metric (``None``: a mean over nothing)."""
    return "n/a" if value is None else format(value, spec)


def format_scores(scores: dict) -> list[str]:
    """The cut-off rules' kept sets and the scores' calibration, as table lines."""
    columns = ("precision", "recall", "f1", "keeps_relevant", "mean_kept")
    lines = ["kept sets of the reranked lists (mean per query with a relevant candidate):"]
    lines.append(f"{'rule':<14}" + "".join(f"{c:>15}" for c in columns))
    for name, values in scores["cutoffs"].items():
        lines.append(f"{name:<14}" + "".join(f"{number(values[c], '.3f'):>15}" for c in columns))
    if any(values["queries"] == 0 for values in scores["cutoffs"].values()):
        lines.append("n/a: no reranked list holds a relevant candidate")
    cal = scores["calibration"]
    lines.append(
        f"calibration over {cal['pairs']} pairs ({number(cal['share_relevant'], '.1%')} relevant): "
        f"Brier {number(cal['brier'], '.4f')}, ECE {number(cal['ece'], '.4f')} (10 bins)"
    )
    return lines


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..eval.datasets import load_dataset
    from ..eval.harness import run_eval
    from .common import Progress

    if args.plot:
        from ..eval.plot import check_plot_path

        check_plot_path(args.plot)  # before the evaluation, whose results a bad name would lose
    evalset = load_dataset(args.dataset, args.format).limit(args.limit)
    if args.keep_self_hits:
        evalset.exclude_self = False
        evalset.notes = [n for n in evalset.notes if "also corpus documents" not in n] + ["self hits kept"]
    reranker = None
    if args.rerank and args.rerank.lower() != "none":
        from ..reranker import Reranker

        reranker = Reranker(
            args.rerank, device=args.device, max_length=args.max_length, batch_size=args.batch_size
        )
    embedder = make_embedder(args.embedder, not args.no_cache) if args.first_stage != "bm25" else None
    embed_bar = tqdm(
        total=len(evalset.corpus), desc="embedding corpus", unit="doc", disable=None, file=sys.stderr
    )
    rerank_bar = Progress("reranking")
    try:
        result = run_eval(
            evalset,
            method=args.first_stage,
            k=args.k,
            embedder=embedder,
            reranker=reranker,
            embed_progress=embed_bar.update,
            rerank_progress=rerank_bar,
        )
    finally:
        embed_bar.close()
        rerank_bar.close()
    if args.plot:
        from ..eval.plot import plot_comparison

        plot_comparison(result, args.plot)
    if args.json:
        # allow_nan=False: an undefined metric is null; NaN would make the output invalid JSON
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2, allow_nan=False) + "\n")
    else:
        sys.stdout.write(format_report(result))
    return 0
