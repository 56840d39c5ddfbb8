"""``backend="auto"``: the fastest backend that has proven accurate on this machine.

The rule, in order:

1. a folder written by ``crossrank export`` runs on ONNX Runtime in its own dtype;
2. CUDA (requested, or available with ``device=None``), or ``dtype`` bf16/fp16: torch in that dtype;
3. on CPU with ``dtype="auto"``, the first whose accuracy gate passed on this machine: a cached int8 ONNX
   export (gate recorded by ``crossrank export MODEL --int8 --gate``), torch bf16 on a CPU with native
   bf16 (recorded by any ``crossrank export ... --gate``), a cached fp32 ONNX export — fastest first, as
   measured by ``benchmarks/throughput.py``;
4. on CPU with ``dtype="fp32"``: a cached fp32 ONNX export whose gate passed;
5. otherwise torch fp32 — exact, and nothing is exported or approximated behind the caller's back.

Gates are measured by :mod:`crossrank.backends.gate` against torch fp32 and stored in the export's
manifest, whose fingerprint covers the source weights, the exporter and the quantisation: an untested or
stale export is never chosen.
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def pick_backend(model_dir: str | Path, device: str | None, dtype: str) -> tuple[str, str]:
    """``(backend name, dtype)`` that ``auto`` means for this model, device and dtype request."""
    model_dir = Path(model_dir)
    try:
        from .onnx_backend import gate_passed
        from .onnx_export import cached_export, read_manifest
    except ImportError:  # onnxruntime not installed: the torch backend is the only one
        return "torch", dtype
    manifest = read_manifest(model_dir)
    if manifest is not None:
        return "onnx", manifest["dtype"] if dtype == "auto" else dtype
    if dtype in ("bf16", "fp16") or not _cpu(device):
        return "torch", dtype
    candidates = {"auto": ("int8", "fp32"), "fp32": ("fp32",), "int8": ("int8",)}.get(dtype, ())
    for onnx_dtype in candidates:
        try:
            if onnx_dtype == "fp32" and dtype == "auto" and _bf16_gated(model_dir):
                logger.info("auto: using torch bf16, whose gate passed on this machine")
                return "torch", "bf16"
            folder = cached_export(model_dir, onnx_dtype)
        except Exception as exc:  # a model folder the exporter cannot fingerprint: not a candidate
            logger.debug("no ONNX candidate for %s: %s", model_dir, exc)
            return "torch", dtype
        if gate_passed(folder):
            logger.info("auto: using the gate-passed ONNX %s export %s", onnx_dtype, folder)
            return "onnx", onnx_dtype
    if dtype == "int8":
        return "onnx", "int8"  # asked for explicitly: exported on first use
    return "torch", dtype


def _cpu(device: str | None) -> bool:
    if device is not None:
        return device == "cpu"
    import torch

    return not torch.cuda.is_available()


def _bf16_gated(model_dir: Path) -> bool:
    from .gate import torch_gate_passed
    from .torch_backend import cpu_supports_bf16

    return cpu_supports_bf16() and torch_gate_passed(model_dir, "bf16")
