"""Fit a cross-encoder's logit calibration on held-out labelled lists (``crossrank calibrate``).

The lists are the training format's records (one query, relevant and non-relevant passages), capped to
``max_candidates`` each, as :func:`crossrank.training.heldout.record_tasks` builds them for the held-out
evaluation — so the share of relevant pairs resembles a reranked top-10 list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..calibration import Calibration, fit_platt, model_calibration
from ..eval.cutoffs import brier_score, expected_calibration_error
from ..thresholds import sigmoid
from .heldout import Task, cross_encoder_scores, heldout_permissive, record_tasks

logger = logging.getLogger(__name__)


def load_tasks(files: Sequence[str] | None, recipe: str | None, per_source: int, max_candidates: int):
    """``(tasks, description)`` from rank JSON-lines files or from a recipe's held-out split."""
    if recipe:
        by_source = heldout_permissive(recipe, per_source, max_candidates)
        tasks = [t for source in sorted(by_source) for t in by_source[source]]
        return tasks, f"held-out split of recipe {recipe!r}: " + ", ".join(sorted(by_source))
    from .data import LoadReport, load_rank_files

    records = load_rank_files(list(files or ()), LoadReport())
    return record_tasks(records, per_source, max_candidates), ", ".join(str(f) for f in files or ())


def fit_on_tasks(reranker, tasks: Sequence[Task], fitted_on: str, progress=None):
    """Fit Platt scaling of ``reranker``'s logits on ``tasks``.

    Returns ``(step, report)``: ``step`` maps the logits the model gives now (fold it with
    :func:`crossrank.calibration.write_calibrated_model`); ``report["calibration"]`` is the map from
    the head's original logit (``step`` after any calibration the model already carries), with Brier
    and ECE on the fitted pairs before and after.
    """
    scores = cross_encoder_scores(reranker, tasks, progress)
    logits = [z for t in tasks for z in scores[t.qid]]
    labels = [int(y > 0) for t in tasks for y in t.labels]
    step = fit_platt(logits, labels, fitted_on=fitted_on, queries=len(tasks))
    previous = model_calibration(reranker.model.path)
    total = previous.then(step) if previous is not None else step
    before = [sigmoid(z) for z in logits]
    after = [sigmoid(step.apply(z)) for z in logits]
    report = {
        "queries": len(tasks),
        "pairs": len(labels),
        "share_relevant": sum(labels) / len(labels),
        "calibration": total.to_dict(),
        "before": {"brier": brier_score(before, labels), "ece": expected_calibration_error(before, labels)},
        "after": {"brier": brier_score(after, labels), "ece": expected_calibration_error(after, labels)},
    }
    logger.info("calibration %s on %d pairs", Calibration.to_dict(total), len(labels))
    return step, report
