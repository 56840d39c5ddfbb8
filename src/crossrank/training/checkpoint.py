"""Checkpoints: trainable weights, optimizer and scheduler state, step and loss history; resume picks the
latest. Sampling and dropout are seeded from ``(seed, step)``, so nothing else is needed to continue a run
exactly where it stopped."""

from __future__ import annotations

import logging
import os
import pickle
import re
from pathlib import Path

from ..errors import InvalidInputError

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_dir(output: str | Path) -> Path:
    return Path(output) / "checkpoints"


def save_checkpoint(
    output: str | Path,
    step: int,
    model,
    optimizer,
    scheduler,
    history: list[float],
    config: dict,
    keep: int = 2,
) -> Path:
    """Write ``checkpoints/step-<step>.pt`` atomically and delete all but the newest ``keep``."""
    import torch

    folder = checkpoint_dir(output)
    folder.mkdir(parents=True, exist_ok=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    state = {
        "step": step,
        "model": {k: v for k, v in model.state_dict().items() if k in trainable},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": list(history),
        "config": config,
    }
    path = folder / f"step-{step}.pt"
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    for old in list_checkpoints(output)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    logger.info("saved checkpoint %s", path)
    return path


def list_checkpoints(output: str | Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    folder = checkpoint_dir(output)
    found = [(int(m.group(1)), p) for p in folder.glob("step-*.pt") if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def check_fresh_output(output: str | Path) -> None:
    """Refuse to start a new run in ``output`` while it holds checkpoints: the new run's would be pruned
    in favour of the old run's newer steps, and a later ``--resume`` would continue the old run."""
    found = list_checkpoints(output)
    if found:
        raise InvalidInputError(
            f"{checkpoint_dir(output)} holds checkpoints of an earlier run (newest {found[-1].name}); pass "
            "--resume to continue it, or another --output (or delete that folder) to start a new run"
        )


def load_checkpoint(path: str | Path, model, optimizer, scheduler) -> tuple[int, list[float], dict]:
    """Restore a checkpoint into the objects; return ``(step, loss history, config)``."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise InvalidInputError(
            f"{path} is not a readable checkpoint ({exc}); delete it to resume from the one before"
        ) from None
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if set(state["model"]) != trainable:
        unknown = sorted(set(state["model"]) ^ trainable)
        raise InvalidInputError(
            f"{path} does not fit this run: it holds other trainable tensors ({unknown[:3]}); resume with "
            "the run's model, freeze_layers and freeze_embeddings, or start a new run in another --output"
        )
    model.load_state_dict(state["model"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    logger.info("resumed from %s (step %d)", path, state["step"])
    return state["step"], list(state["history"]), state["config"]
