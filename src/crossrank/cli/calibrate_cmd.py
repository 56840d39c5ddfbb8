"""``crossrank calibrate``: fit a model's logit calibration on labelled lists and fold it into its head."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

HELP = """Fit Platt scaling (sigmoid(a * logit + b)) of a cross-encoder's logits on labelled (query,
candidates) lists the model was not trained on, then write a copy of the model with the map folded into
its classification head (--output), so that every backend and every tool loading the folder reads
calibrated probabilities. Data: rank JSON lines as for `crossrank train` ({"query", "lang", "pos":
[...], "neg": [...], "source"?}, lang e.g. "en" or "zh"; .gz allowed), or --heldout RECIPE for the
held-out split of a training recipe. The
report gives the Brier score and the expected calibration error before and after, on the fitted
pairs; measure them on other data with `crossrank eval`."""


def register(sub) -> None:
    parser = sub.add_parser("calibrate", help="fit and fold a logit calibration", description=HELP)
    parser.add_argument("model", help="'embedded', a model folder, or a hub id")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", nargs="+", metavar="FILE", help="rank JSON lines (held-out data)")
    data.add_argument("--heldout", metavar="RECIPE", help="the held-out split of this training recipe")
    parser.add_argument(
        "--output",
        help="folder for the calibrated copy of the model: new, empty, or an earlier one (replaced)",
    )
    parser.add_argument(
        "--write-json", metavar="FILE", help="also write the calibration (from the head's original logit)"
    )
    parser.add_argument("--per-source", type=int, default=100_000, help="queries per data source at most")
    parser.add_argument("--max-candidates", type=int, default=10, help="candidates per query at most")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..calibration import check_output_folder, write_calibrated_model
    from ..errors import InvalidInputError
    from ..reranker import Reranker
    from ..training.calibrate import fit_on_tasks, load_tasks
    from .common import Progress

    if not args.output and not args.write_json:
        raise InvalidInputError("nothing to write: pass --output DIR and/or --write-json FILE")
    if args.max_candidates < 2 or args.per_source < 1:  # 0 would slice from the end, 1 keep no positive
        raise InvalidInputError(
            "--max-candidates must be at least 2 (a relevant and a non-relevant passage per query) and "
            f"--per-source at least 1, got {args.max_candidates} and {args.per_source}"
        )
    if args.output:
        check_output_folder(args.output)  # before scoring: it is refused, not replaced, after minutes of work
    if args.write_json:  # before scoring too: a missing folder failed the run after the model was written
        if Path(args.write_json).is_dir():
            raise InvalidInputError(f"--write-json {args.write_json} is a folder; pass a file name")
        Path(args.write_json).parent.mkdir(parents=True, exist_ok=True)
    tasks, fitted_on = load_tasks(args.data, args.heldout, args.per_source, args.max_candidates)
    if not tasks:
        raise InvalidInputError(
            f"no list in {fitted_on} has a non-relevant passage ('neg'); a calibration needs queries with "
            "both relevant and non-relevant passages"
        )
    reranker = Reranker(args.model, backend="torch", dtype="fp32")
    bar = Progress("scoring")
    try:
        calibration, report = fit_on_tasks(reranker, tasks, fitted_on, progress=bar)
    finally:
        bar.close()
    if args.output:
        write_calibrated_model(reranker.model.path, args.output, calibration)
        report["output"] = args.output
    if args.write_json:
        Path(args.write_json).write_text(json.dumps(report["calibration"], indent=2) + "\n", encoding="utf-8")
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    else:
        before, after = report["before"], report["after"]
        sys.stdout.write(
            f"fitted on {report['pairs']} pairs of {report['queries']} queries ({fitted_on})\n"
            f"calibration from the head's logit: scale {report['calibration']['scale']:.5f}, "
            f"bias {report['calibration']['bias']:+.5f}\n"
            f"on these pairs: Brier {before['brier']:.4f} -> {after['brier']:.4f}, "
            f"ECE {before['ece']:.4f} -> {after['ece']:.4f}\n"
        )
    return 0
