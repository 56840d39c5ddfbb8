"""``crossrank`` command line: one subcommand per module, each with its own ``--help``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import CrossrankError

# Subcommand modules; each exposes ``register(subparsers)`` that adds its parser and sets ``func``.
COMMANDS = ("score", "rerank", "models", "demo")
OPTIONAL_COMMANDS = (
    "serve", "export", "train", "calibrate", "index", "search", "ask", "eval", "rerank_table",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossrank",
        description="Cross-encoder reranking: score pairs, rerank documents, serve rerank APIs.",
    )
    parser.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log verbosity"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS + OPTIONAL_COMMANDS:
        try:
            module = importlib.import_module(f"crossrank.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name == f"crossrank.cli.{name}_cmd":
                continue  # the command is not part of this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except CrossrankError as exc:
        print(f"crossrank: error: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's own output
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `crossrank rerank ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
