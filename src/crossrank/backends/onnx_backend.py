"""ONNX Runtime backend: fp32 or dynamic-int8 exports of a cross-encoder (see :mod:`.onnx_export`).

``OnnxBackend(model_dir)`` accepts either a source model folder (exported once into
``$CROSSRANK_HOME/onnx/<fingerprint>/`` and reused) or a folder written by ``crossrank export``.
A cached or exported folder whose fingerprint does not match the current source and exporter is never
used: the cache re-exports, an explicit export folder raises :class:`BackendError` naming the fix.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import BackendError, InvalidInputError, optional_import
from . import artifacts
from .base import Batch
from .onnx_export import (
    DEFAULT_OPSET,
    EXPORT_FORMAT,
    MODEL_FILE,
    QUANTIZATIONS,
    cached_export,
    ensure_export,
    read_manifest,
)

logger = logging.getLogger(__name__)

DTYPES = ("auto", "fp32", "int8")
THREADS_ENV = "CROSSRANK_THREADS"


def default_threads() -> int:
    """``$CROSSRANK_THREADS``, else the cores this process may run on."""
    value = os.environ.get(THREADS_ENV)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise InvalidInputError(f"{THREADS_ENV} must be a positive integer, got {value!r}")
        return int(value)
    return usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. a container's or ``taskset``'s)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def gate_passed(folder: Path | None) -> bool:
    """True when the export in ``folder`` has a recorded, passed accuracy gate (see :mod:`.gate`)."""
    manifest = read_manifest(folder) if folder else None
    return bool(manifest and (manifest.get("gate") or {}).get("passed"))


def check_export_folder(folder: Path, dtype: str | None = None, opset: int | None = None) -> dict:
    """Validate a ``crossrank export`` folder against this crossrank; return its manifest. The folder's
    opset is the one its manifest records (``crossrank export --opset N``); ``opset`` requires a given one."""
    import onnxruntime

    from .. import __version__

    manifest = read_manifest(folder) or {}
    fingerprint = manifest.get("fingerprint") or {}
    expected = {
        "format": EXPORT_FORMAT,
        "crossrank": __version__,
        "opset": opset,
        "onnxruntime": onnxruntime.__version__,
    }
    if opset is None:  # any opset the export code wrote is loadable
        del expected["opset"]
        if not isinstance(fingerprint.get("opset"), int):
            expected["opset"] = "an opset number"
    problems = artifacts.folder_problems(folder, manifest, expected, MODEL_FILE, "the export")
    if problems:
        raise BackendError(
            f"the ONNX export in {folder} is stale or damaged: {'; '.join(problems)}. "
            f"Re-export it: crossrank export {manifest.get('source_path', 'MODEL')} --out {folder}"
            + (" --int8" if manifest.get("dtype") == "int8" else "")
            + (
                f" --opset {fingerprint['opset']}"
                if fingerprint.get("opset") not in (None, DEFAULT_OPSET)
                else ""
            )
        )
    if dtype not in (None, "auto", manifest.get("dtype")):
        raise InvalidInputError(
            f"{folder} holds a {manifest.get('dtype')} export, not {dtype}; export it again with "
            f"crossrank export {manifest.get('source_path', 'MODEL')} "
            f"{'--int8 ' if dtype == 'int8' else ''}--out DIR"
        )
    return manifest


def resolve_onnx_dtype(dtype: str, model_dir: Path, opset: int = DEFAULT_OPSET) -> str:
    """``auto``: an export folder's own dtype; for a source folder, int8 when a gate-passed int8 export
    is cached, else fp32 (exact within 1e-3). bf16/fp16 belong to the torch backend."""
    if dtype in ("bf16", "fp16"):
        raise InvalidInputError(
            f"the ONNX backend runs fp32 or int8, not {dtype}; use backend='torch' for {dtype}"
        )
    if dtype not in DTYPES:
        raise InvalidInputError(f"ONNX dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype != "auto":
        return dtype
    manifest = read_manifest(model_dir)
    if manifest:
        return manifest["dtype"]
    return "int8" if gate_passed(cached_export(model_dir, "int8", opset)) else "fp32"


class OnnxBackend:
    """Runs an ONNX export with ONNX Runtime (CPU; CUDA when onnxruntime-gpu is installed).

    Args:
        model_dir: a source model folder (exported on first use, then cached) or a ``crossrank export``
            folder.
        device: ``"cpu"`` (default) or ``"cuda"``/``"cuda:N"``.
        dtype: ``"fp32"``, ``"int8"`` (dynamic quantisation) or ``"auto"`` (see :func:`resolve_onnx_dtype`).
        threads: intra-op threads; default ``$CROSSRANK_THREADS`` or all usable cores.
        opset: the ONNX opset of the cached export of a source folder (default :data:`DEFAULT_OPSET`); an
            export folder runs at the opset it was exported with unless one is given here.
        export: export a source folder that has no current cached export (else raise).
    """

    name = "onnx"

    def __init__(
        self,
        model_dir: str | Path,
        device: str | None = None,
        dtype: str = "auto",
        threads: int | None = None,
        opset: int | None = None,
        export: bool = True,
    ):
        ort = optional_import("onnxruntime", "onnx")
        model_dir = Path(model_dir).resolve()
        self.dtype = resolve_onnx_dtype(dtype, model_dir, opset or DEFAULT_OPSET)
        if read_manifest(model_dir) is not None:  # an export folder: its own opset, unless one is asked
            self.export_dir = model_dir
            check_export_folder(model_dir, self.dtype, opset)
        else:
            opset = opset or DEFAULT_OPSET
            found = (
                ensure_export(model_dir, self.dtype, opset)
                if export
                else cached_export(model_dir, self.dtype, opset)
            )
            if found is None:
                raise BackendError(
                    f"no current {self.dtype} ONNX export of {model_dir}; run crossrank export"
                )
            self.export_dir = found
        self.manifest = read_manifest(self.export_dir)
        self.device, providers = _providers(ort, device)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # No CPU memory arena: with dynamic (batch, sequence) shapes the arena grows to the largest
        # activations seen and keeps it (peak RSS 2.4 GB vs 2.0 GB without it on 120 ArguAna pairs with
        # the embedded model; sentence-transformers: 1.7 GB); per-op allocation costs little here.
        options.enable_cpu_mem_arena = False
        try:
            self.session = ort.InferenceSession(
                str(self.export_dir / MODEL_FILE), options, providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendError(f"ONNX Runtime could not load {self.export_dir / MODEL_FILE}: {exc}") from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.threads = options.intra_op_num_threads
        logger.info(
            "ONNX %s export %s, %d threads, %s", self.dtype, self.export_dir, self.threads, providers[0]
        )

    @property
    def quantization(self) -> str:
        return QUANTIZATIONS[self.dtype]

    def forward(self, batch: Batch) -> np.ndarray:
        feed = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        if "token_type_ids" in self.input_names:
            types = batch.token_type_ids
            feed["token_type_ids"] = types if types is not None else np.zeros_like(batch.input_ids)
        logits = self.session.run(["logits"], feed)[0]
        return np.ascontiguousarray(logits[:, 0], dtype=np.float32)


def _providers(ort, device: str | None) -> tuple[str, list[str]]:
    device = device or "cpu"
    if device == "cpu":
        return "cpu", ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InvalidInputError(
                f"device={device!r} needs onnxruntime-gpu (CUDAExecutionProvider); use device='cpu' "
                "or backend='torch'"
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        return device, [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise InvalidInputError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}")
