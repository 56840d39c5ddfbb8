"""``TrainConfig``: every setting of a training run, readable from a JSON recipe and stored in checkpoints."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError

RECIPES = Path(__file__).parent / "recipes"


@dataclass
class TrainConfig:
    """A training run. ``model`` is a local Hugging Face folder or ``embedded-backbone``.

    ``data`` are ``rank_*`` JSON-lines files; ``sentence_data`` are paragraph-level files from which
    sentence-level records are derived as well (see :mod:`crossrank.training.sentences`).
    """

    model: str = "embedded-backbone"
    data: list[str] = field(default_factory=list)
    sentence_data: list[str] = field(default_factory=list)
    keep_sentence_paragraphs: bool = True
    output: str = "crossrank-model"
    max_length: int = 160
    query_max_length: int | None = None
    group_size: int = 8
    groups_per_step: int = 4
    grad_accum: int = 1
    steps: int = 1000
    lr: float = 3e-5
    head_lr: float = 1e-3
    warmup: int = 50
    schedule: str = "linear"  # linear (decay to 10% at `steps`) | constant (after warm-up)
    weight_decay: float = 0.01
    pointwise_weight: float = 0.0  # pointwise term anchoring the logits' level (training.losses)
    freeze_layers: int = 0
    freeze_embeddings: bool = False
    bf16: str = "auto"  # auto | on | off
    threads: int | None = None
    seed: int = 42
    held_out_percent: float = 3.0
    val_queries_per_source: int = 40
    val_max_candidates: int = 20
    eval_every: int = 200
    save_every: int = 100
    keep_checkpoints: int = 2
    mine_per_query: int = 8
    mine_skip_top: int = 0
    source_weights: dict[str, float] = field(default_factory=dict)
    min_positive_grade: int = 2
    max_negative_grade: int = 0
    max_time_minutes: float | None = None

    def validated(self) -> TrainConfig:
        if not self.data and not self.sentence_data:
            raise InvalidInputError("no training data: pass rank_* JSON-lines files (data / --data)")
        for name in ("group_size", "groups_per_step", "grad_accum", "steps", "max_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        if self.group_size < 2:
            raise InvalidInputError("group_size must be at least 2: one positive and at least one negative")
        if self.bf16 not in ("auto", "on", "off"):
            raise InvalidInputError(f"bf16 must be auto, on or off, got {self.bf16!r}")
        if not 0 <= self.pointwise_weight <= 100:
            raise InvalidInputError(f"pointwise_weight must be in [0, 100], got {self.pointwise_weight}")
        if self.schedule not in ("linear", "constant"):
            raise InvalidInputError(f"schedule must be linear or constant, got {self.schedule!r}")
        if not 0 <= self.held_out_percent < 50:
            raise InvalidInputError(f"held_out_percent must be in [0, 50), got {self.held_out_percent}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInputError(f"unknown training settings {unknown}; known: {', '.join(sorted(known))}")
        return cls(**values)


def load_recipe(name_or_path: str) -> dict:
    """A recipe's settings: a JSON file, or the name of one in ``crossrank/training/recipes``.

    Paths inside it that start with ``$SHARED_DATA`` are resolved against ``$CROSSRANK_SHARED_DATA``
    (default ``../shared/data`` beside the working directory).
    """
    import os

    path = Path(name_or_path)
    if not path.is_file():
        path = RECIPES / f"{name_or_path}.json"
    if not path.is_file():
        known = ", ".join(p.stem for p in RECIPES.glob("*.json"))
        raise InvalidInputError(f"recipe {name_or_path!r} not found; pass a JSON file or one of: {known}")
    values = json.loads(path.read_text(encoding="utf-8"))
    values.pop("_comment", None)
    shared = os.environ.get("CROSSRANK_SHARED_DATA", str(Path.cwd().parent / "shared" / "data"))
    for key in ("data", "sentence_data"):
        values[key] = [p.replace("$SHARED_DATA", shared) for p in values.get(key, [])]
    return values
