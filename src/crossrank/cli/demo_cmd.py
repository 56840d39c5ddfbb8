"""``crossrank demo``: the two seed demos (FlagReranker scores, and bi-encoder vs reranker)."""

from __future__ import annotations

import argparse

HELP = """Run the demos on the embedded default model: FlagReranker.compute_score on two pairs
(examples/test.py), then vector similarity beside reranker scores with the dynamic threshold
(examples/test2.py)."""


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run the seed demos", description=HELP)
    parser.add_argument("--model", default="embedded", help="reranker model (default: embedded)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import flag_demo, similarity_demo

    flag_demo(args.model)
    similarity_demo(args.model)
    return 0
