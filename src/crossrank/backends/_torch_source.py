"""The torch model a conversion starts from, shared by :mod:`.onnx_export` and :mod:`.openvino_backend`.

Both trace the source model in fp32 behind a wrapper that returns only its logits, on the same example
batch. torch and transformers are imported inside the functions: loading a cached export or IR must not
import them (seconds of start-up, ~230 MB of RSS).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import BackendError


def load_fp32(model_dir: Path, *, attn_implementation: str | None = None):
    """``AutoModelForSequenceClassification`` of ``model_dir`` in fp32, in eval mode; ``attn_implementation``
    (e.g. ``"eager"``) is passed on when given, else transformers picks its default. A folder that does
    not load raises :class:`BackendError`."""
    import torch
    from transformers import AutoModelForSequenceClassification

    options = {"attn_implementation": attn_implementation} if attn_implementation is not None else {}
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            str(model_dir), dtype=torch.float32, **options
        ).eval()
    except Exception as exc:  # transformers (OSError, ValueError) and safetensors raise their own types
        raise BackendError(f"could not load the model in {model_dir}: {exc}") from exc


def logits_only(model):
    """``model`` wrapped in a module whose ``forward(input_ids, attention_mask, token_type_ids=None)``
    returns the logits alone (what the exported graph outputs). The wrapped model is its ``model``
    attribute: OpenVINO node names start ``__module.model.``, ONNX initializer names ``model.``."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits

    return LogitsOnly(model)


def example_inputs(inputs: Sequence[str]) -> dict:
    """A batch of two 16-token rows to trace with, the second padded after 12 tokens (so the traced mask
    arithmetic is the general one), for the input names ``inputs`` in their order."""
    import torch

    ids = torch.full((2, 16), 5, dtype=torch.long)
    ids[:, 0] = 0
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    example = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    return {name: example[name] for name in inputs}
