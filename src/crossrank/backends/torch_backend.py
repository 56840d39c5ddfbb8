"""PyTorch backend: a Hugging Face ``*ForSequenceClassification`` model in fp32, bf16 or fp16."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import BackendError, InvalidInputError
from .base import Batch, check_device

logger = logging.getLogger(__name__)

DTYPES = ("auto", "fp32", "bf16", "fp16")


def resolve_device(device: str | None) -> str:
    import torch

    device = check_device(device)
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(
            f"device={device!r} was requested but CUDA is not available; use device='cpu'"
        )
    return device


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    import torch

    probe = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    try:
        from torch._C import _cpu

        return bool(_cpu._is_avx512_bf16_supported() or _cpu._is_amx_tile_supported())
    except (ImportError, AttributeError):  # older torch: fall back to the capability string
        return "AVX512" in probe.upper()


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` is fp32 on CPU (exact) and fp16 on CUDA; fp16 on CPU is refused (it is slow there)."""
    if dtype not in DTYPES:
        raise InvalidInputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    if dtype == "fp16" and device == "cpu":
        raise InvalidInputError("fp16 is not supported on CPU; use dtype='bf16' or 'fp32'")
    return dtype


HEAD_MODULES = ("pooler", "classifier")


def keep_head_fp32(model, torch) -> None:
    """Run the pooler and classification head in fp32 on fp32 copies of their inputs.

    The head is a sliver of the compute, but in bf16 its output (the logit) keeps only 8 bits of mantissa,
    which reorders close scores; upcasting after the head cannot recover them."""

    def upcast(_module, args, kwargs):
        cast = lambda x: x.float() if torch.is_tensor(x) and x.is_floating_point() else x  # noqa: E731
        return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}

    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] in HEAD_MODULES:
            module.float()
            module.register_forward_pre_hook(upcast, with_kwargs=True)


class TorchBackend:
    """Loads a local model folder with ``AutoModelForSequenceClassification`` and runs it."""

    name = "torch"

    def __init__(self, model_dir: str | Path, device: str | None = None, dtype: str = "auto"):
        import torch
        from transformers import AutoModelForSequenceClassification

        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.dtype]
        try:
            model = AutoModelForSequenceClassification.from_pretrained(str(model_dir), dtype=torch_dtype)
        except (OSError, ValueError) as exc:
            raise BackendError(f"could not load the model in {model_dir}: {exc}") from exc
        if self.dtype != "fp32":
            if self.device == "cpu" and not cpu_supports_bf16():
                logger.warning("this CPU has no native bf16 instructions: bf16 is emulated (slow); use fp32")
            keep_head_fp32(model, torch)
        self.model = model.to(self.device).eval()
        self._torch = torch

    def forward(self, batch: Batch) -> np.ndarray:
        torch = self._torch
        inputs = {
            "input_ids": torch.from_numpy(batch.input_ids).to(self.device),
            "attention_mask": torch.from_numpy(batch.attention_mask).to(self.device),
        }
        if batch.token_type_ids is not None:
            inputs["token_type_ids"] = torch.from_numpy(batch.token_type_ids).to(self.device)
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        # Upcast before anything else touches the numbers: bf16 has 8 bits of mantissa.
        return logits[:, 0].float().cpu().numpy()
