"""Checkpoint averaging: the uniform mean of the trainable weights of several checkpoints of one run.

With a constant learning rate, the weights keep moving around a good region; their mean (as in stochastic
weight averaging) is less noisy than any single checkpoint.

``python -m crossrank.training.average --checkpoints A.pt B.pt ... --output DIR [--embedded-weights FILE]``
writes the averaged model folder (and, for the embedded backbone, the compact weights file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidInputError

logger = logging.getLogger(__name__)


def average_checkpoints(paths: Sequence[str | Path]) -> tuple[dict, dict]:
    """``(mean trainable state, config of the first checkpoint)``; all checkpoints must share tensors."""
    import torch

    if not paths:
        raise InvalidInputError("no checkpoints to average")
    total, config = None, None
    for path in paths:
        state = torch.load(path, map_location="cpu", weights_only=False)
        weights = state["model"]
        if total is None:
            total, config = {k: v.double().clone() for k, v in weights.items()}, state["config"]
        elif set(weights) != set(total):
            raise InvalidInputError(f"{path} holds other tensors than {paths[0]}; average one run only")
        else:
            for k, v in weights.items():
                total[k] += v.double()
        logger.info("averaging %s (step %d)", path, state["step"])
    return {k: (v / len(paths)).float() for k, v in total.items()}, config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoints", nargs="+", required=True, help="checkpoint files of one run")
    parser.add_argument("--output", required=True, help="folder for the averaged model")
    parser.add_argument(
        "--embedded-weights", default=None, help="also write the compact embedded weights here"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ..errors import CrossrankError
    from .model import export_embedded, load_cross_encoder, resolve_backbone, save_model

    missing = [p for p in args.checkpoints if not Path(p).is_file()]
    if missing:
        parser.error(f"no checkpoint file {', '.join(missing)}")
    try:
        state, config = average_checkpoints(args.checkpoints)
        source, embedded = resolve_backbone(config["model"])
    except CrossrankError as exc:
        parser.error(str(exc))
    if args.embedded_weights and not embedded:  # before any file is written
        parser.error("--embedded-weights needs a run of the embedded-backbone")
    model = load_cross_encoder(source)
    model.load_state_dict(state, strict=False)
    names = [Path(p).name for p in args.checkpoints]
    save_model(
        model, source, Path(args.output), {"base": config["model"], "averaged": names, "config": config}
    )
    if args.embedded_weights:
        export_embedded(model, Path(args.embedded_weights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
