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
    except OSError as exc:  # the file system refused: a read-only cache, a full disk, a missing folder
        print(f"crossrank: error: {describe_os_error(exc)}", file=sys.stderr)  # noqa: T201
        return 2


def describe_os_error(exc: OSError) -> str:
    """What the file system refused, and how to fix it when the place is crossrank's own cache."""
    from ..models.build import crossrank_home

    where = f" {exc.filename}" if exc.filename else ""
    message = f"{exc.strerror or exc}:{where}"
    home = str(crossrank_home())
    if exc.filename and str(exc.filename).startswith(home):
        message += f" (crossrank's cache {home}; set CROSSRANK_HOME to a writable folder with free space)"
    return message


if __name__ == "__main__":
    sys.exit(main())
