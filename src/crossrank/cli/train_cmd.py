"""``crossrank train``: fine-tune a backbone into a one-label cross-encoder from ``rank_*`` JSON lines."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

HELP = """Fine-tune a cross-encoder group-wise (one positive + negatives per query, softmax cross-entropy)
on rank_* JSON-lines files ({"source", "lang", "query", "pos": [...], "neg": [...], "graded"?}; .gz
allowed). Negatives come from the data plus BM25-mined ones per source; English and Chinese queries are
sampled equally often. --recipe NAME|FILE loads settings from JSON (e.g. 'embedded', the recipe of the
shipped model); flags given on the command line override it. The model is written to OUTPUT/model,
checkpoints to OUTPUT/checkpoints (--resume continues from the newest; without it, an OUTPUT that holds
checkpoints is refused)."""

# flag -> (type, help); every flag maps onto a TrainConfig field of the same name
_OPTIONS = {
    "model": (str, "'embedded-backbone' or a local Hugging Face model folder"),
    "output": (str, "output folder"),
    "max_length": (int, "tokens per (query, passage) pair"),
    "query_max_length": (int, "query token budget"),
    "group_size": (int, "passages per query group (1 positive + negatives)"),
    "groups_per_step": (int, "query groups per micro-batch"),
    "grad_accum": (int, "micro-batches per optimizer step"),
    "steps": (int, "optimizer steps"),
    "lr": (float, "learning rate of the encoder"),
    "head_lr": (float, "learning rate of pooler and classifier"),
    "warmup": (int, "warm-up steps"),
    "pointwise_weight": (float, "weight of a pointwise term anchoring the logits' level (0: off)"),
    "freeze_layers": (int, "freeze the embeddings and the lowest N encoder layers"),
    "bf16": (str, "bf16 autocast: auto, on or off"),
    "threads": (int, "torch CPU threads"),
    "seed": (int, "random seed"),
    "held_out_percent": (float, "percent of queries held out for validation"),
    "eval_every": (int, "validate every N steps (0: only at the end)"),
    "save_every": (int, "checkpoint every N steps (0: never)"),
    "mine_per_query": (int, "BM25 hard negatives mined per query"),
    "keep_checkpoints": (int, "checkpoints kept (the newest N; 0 keeps all)"),
    "max_time_minutes": (float, "stop (and save) after this many minutes"),
}


def register(sub) -> None:
    parser = sub.add_parser("train", help="fine-tune a cross-encoder", description=HELP)
    parser.add_argument("--data", nargs="+", default=None, help="rank_* JSON-lines files")
    parser.add_argument(
        "--sentence-data",
        nargs="+",
        default=None,
        help="paragraph-level rank_* files to also derive sentence-level records from",
    )
    parser.add_argument("--recipe", default=None, help="recipe name (e.g. embedded) or JSON file")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument(
        "--freeze-embeddings", action="store_true", default=None, help="freeze all embeddings"
    )
    for name, (kind, text) in _OPTIONS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=text)
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    from ..training.config import TrainConfig, load_recipe

    values = load_recipe(args.recipe) if args.recipe else {}
    for name in (*_OPTIONS, "data", "sentence_data", "freeze_embeddings"):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    return TrainConfig.from_dict(values).validated()


def run(args: argparse.Namespace) -> int:
    from ..training.checkpoint import check_fresh_output
    from ..training.trainer import Trainer

    config = config_from_args(args)
    if not args.resume:
        check_fresh_output(config.output)  # before loading data and model
    result = Trainer(config).train(resume=args.resume)
    summary = {
        "model": str(result.model_dir),
        "steps": result.steps,
        "final_loss": result.history[-1] if result.history else None,
        "validation": result.validation[-1] if result.validation else None,
        "skipped_lines": len(result.skipped_lines),
        "embedded_weights": str(result.embedded_weights) if result.embedded_weights else None,
        "config": dataclasses.asdict(config),
    }
    sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return 0
