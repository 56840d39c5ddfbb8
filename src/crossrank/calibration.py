"""Calibrated relevance probabilities: an affine map of a model's logit, folded into its head.

A cross-encoder trained to rank fixes only the differences between one query's logits, so
``sigmoid(logit)`` need not be a probability. A :class:`Calibration` maps a logit ``z`` to
``scale * z + bias`` (Platt scaling, Platt 1999), fitted by logistic regression on labelled
(query, candidate) pairs that the model was not trained on, so that ``sigmoid(scale * z + bias)`` is
the share of relevant pairs among those scored alike.

The map is folded into the classification head's last linear layer (``W, c`` becomes
``scale * W, scale * c + bias``): every backend and every foreign tool that loads the folder
(sentence-transformers, FlagEmbedding, ONNX, OpenVINO) then reads the calibrated logit, with no extra
code path. ``scale > 0`` is required, so rankings never change. Models without a calibration keep the
plain sigmoid of their own logit (FlagEmbedding's ``normalize=True``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import InvalidInputError, UnsupportedModelError, optional_import

logger = logging.getLogger(__name__)

# (weight, bias) names of the last linear layer of the one-label heads of transformers' classifiers:
# BERT-style (BertForSequenceClassification) and RoBERTa/XLM-R-style (classifier.dense → out_proj).
HEAD_LAYERS = (
    ("classifier.out_proj.weight", "classifier.out_proj.bias"),
    ("classifier.weight", "classifier.bias"),
)


@dataclass(frozen=True, slots=True)
class Calibration:
    """``sigmoid(scale * logit + bias)`` is the calibrated probability; ``fitted_on`` says of what."""

    scale: float
    bias: float
    fitted_on: str = ""
    pairs: int = 0
    queries: int = 0

    def __post_init__(self):
        if not (math.isfinite(self.scale) and math.isfinite(self.bias)) or self.scale <= 0:
            raise InvalidInputError(
                f"a calibration needs a finite positive scale and a finite bias, got {self.scale}, "
                f"{self.bias}; the labelled pairs it was fitted on do not separate relevant from the rest"
            )

    def apply(self, logit: float) -> float:
        return self.scale * logit + self.bias

    def then(self, outer: Calibration) -> Calibration:
        """This map followed by ``outer`` (``outer.apply(self.apply(z))``), as one calibration."""
        return Calibration(
            scale=outer.scale * self.scale,
            bias=outer.scale * self.bias + outer.bias,
            fitted_on=outer.fitted_on,
            pairs=outer.pairs,
            queries=outer.queries,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> Calibration:
        try:
            return cls(
                scale=float(data["scale"]),
                bias=float(data["bias"]),
                fitted_on=str(data.get("fitted_on", "")),
                pairs=int(data.get("pairs", 0)),
                queries=int(data.get("queries", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"not a calibration (needs numbers 'scale' and 'bias'): {exc}") from None

    @classmethod
    def read(cls, path: str | Path) -> Calibration:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def fit_platt(logits: Sequence[float], labels: Sequence[int], fitted_on: str = "", queries: int = 0):
    """Fit ``scale`` and ``bias`` by (unregularised) logistic regression of the 0/1 ``labels`` on the logits.

    Uses scikit-learn's solver rather than a hand-written Newton loop, which diverges on separable data.
    """
    import numpy as np

    linear_model = optional_import("sklearn.linear_model", "retrieval")
    z = np.asarray(logits, dtype=np.float64).reshape(-1, 1)
    y = (np.asarray(labels) > 0).astype(int)
    if len(z) != len(y) or len(z) == 0:
        raise InvalidInputError(f"need as many labels as logits, and some of each: {len(z)} vs {len(y)}")
    if y.min() == y.max():
        raise InvalidInputError("the labelled pairs are all relevant or all not; a calibration needs both")
    model = linear_model.LogisticRegression(C=1e6, max_iter=1000).fit(z, y)
    return Calibration(
        scale=float(model.coef_[0, 0]),
        bias=float(model.intercept_[0]),
        fitted_on=fitted_on,
        pairs=len(y),
        queries=queries,
    )


def head_layer(state: Mapping) -> tuple[str, str]:
    """The (weight, bias) names of the one-logit head's last linear layer in a state dict."""
    for weight, bias in HEAD_LAYERS:
        if weight in state and bias in state:
            if tuple(state[weight].shape)[0] != 1:
                raise UnsupportedModelError(f"{weight} has {state[weight].shape[0]} outputs; need one label")
            return weight, bias
    raise UnsupportedModelError(
        "cannot fold a calibration into this head: no "
        + " / ".join(w.rsplit(".", 1)[0] for w, _ in HEAD_LAYERS)
        + " linear layer found"
    )


def fold_into_head(state: dict, calibration: Calibration) -> dict:
    """A copy of ``state`` (numpy arrays or torch tensors) whose head outputs the calibrated logit."""
    weight, bias = head_layer(state)
    out = dict(state)
    out[weight] = state[weight] * calibration.scale
    out[bias] = state[bias] * calibration.scale + calibration.bias
    return out


CARD = "crossrank.json"
WEIGHTS = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"


def model_card(model_dir: str | Path) -> dict:
    """The ``crossrank.json`` that crossrank writes beside models it builds (empty for other models)."""
    card = Path(model_dir) / CARD
    if not card.is_file():
        return {}
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnsupportedModelError(
            f"{card} is not valid JSON ({exc}); restore it from the model's source, or delete it "
            "(a model without one has no calibration folded in)"
        ) from None
    if not isinstance(data, dict):
        raise UnsupportedModelError(f"{card} must hold a JSON object, not {type(data).__name__}")
    return data


def model_calibration(model_dir: str | Path) -> Calibration | None:
    """The calibration already folded into a model folder (from its ``crossrank.json``), if any."""
    data = model_card(model_dir).get("calibration")
    return Calibration.from_dict(data) if data else None


def _head_file(model_dir: Path) -> Path:
    """The safetensors file that holds the head (the single file, or the shard the index names)."""
    if (model_dir / WEIGHTS).is_file():
        return model_dir / WEIGHTS
    if (model_dir / SHARD_INDEX).is_file():
        weight_map = json.loads((model_dir / SHARD_INDEX).read_text(encoding="utf-8"))["weight_map"]
        for weight, _ in HEAD_LAYERS:
            if weight in weight_map:
                return model_dir / weight_map[weight]
    raise UnsupportedModelError(
        f"{model_dir} has no {WEIGHTS} (or sharded safetensors naming a classifier); calibrating needs "
        "safetensors weights: load the model with transformers and save_pretrained() it first"
    )


def check_output_folder(out_dir: str | Path) -> Path:
    """``out_dir`` if a calibrated model may be written there: a new or empty folder, or the calibrated
    model of an earlier run (replaced whole). Anything else is refused: the swap would delete it."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"--output {out_dir} is a file; pass a new or empty folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and "calibration" not in model_card(out_dir):
        raise InvalidInputError(
            f"--output {out_dir} exists and is not a calibrated model (it would be replaced, with all it "
            "holds); choose a new or empty folder"
        )
    return out_dir


def write_calibrated_model(model_dir: str | Path, out_dir: str | Path, calibration: Calibration) -> Path:
    """Copy ``model_dir`` to ``out_dir`` with ``calibration`` folded into its head, atomically.

    ``calibration`` maps the logits the folder produces now; when the folder is already calibrated the
    two maps are composed, and ``crossrank.json`` records the map from the head's original logit.
    """
    import shutil
    import tempfile

    from safetensors import safe_open
    from safetensors.torch import save_file

    from .fsutil import swap_in_folder

    model_dir, out_dir = Path(model_dir).resolve(), Path(out_dir).resolve()
    if out_dir == model_dir or model_dir in out_dir.parents:
        raise InvalidInputError(f"write the calibrated model outside {model_dir}, not into it")
    check_output_folder(out_dir)
    head_file = _head_file(model_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}.", dir=out_dir.parent))
    try:
        for path in model_dir.iterdir():
            if path.is_file() and path != head_file:
                shutil.copy2(path, tmp / path.name)
        with safe_open(str(head_file), framework="pt") as fh:
            state, metadata = {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata()
        save_file(fold_into_head(state, calibration), str(tmp / head_file.name), metadata=metadata)
        previous = model_calibration(model_dir)
        total = previous.then(calibration) if previous is not None else calibration
        card_path = tmp / CARD
        card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
        card["calibration"] = total.to_dict()
        card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        swap_in_folder(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote %s: %s folded into the head", out_dir, total)
    return out_dir
