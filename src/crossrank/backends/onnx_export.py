"""Export a Hugging Face cross-encoder to ONNX (fp32 or dynamic int8), cached under a fingerprint.

Pipeline: ``torch.onnx.export`` (the TorchScript exporter: on torch 2.13 / transformers 5 it traces the
eager-attention model cleanly with dynamic batch and sequence axes) → ONNX Runtime's transformer fusions
(``Attention``, ``SkipLayerNormalization``, ``BiasGelu``, ...) → optionally
``quantize_dynamic`` (int8 weights per output channel, activations quantised per batch at run time; the
pooler and classification head stay fp32).

An export folder holds ``model.onnx`` (+ ``model.onnx.data`` for models over 2 GB), the source's
``config.json`` and tokenizer files (so it is itself a loadable model folder) and ``crossrank-onnx.json``:
the fingerprint of what it was built from and how. A folder whose fingerprint differs from what the
current code and source would produce is stale and is never used silently.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..errors import BackendError, optional_import
from ..fsutil import swap_in_folder
from . import artifacts
from ._torch_source import example_inputs, load_fp32, logits_only
from .artifacts import WEIGHT_SUFFIXES, cache_key, copy_model_files, package_version, source_fingerprint

__all__ = ["cache_key", "source_fingerprint"]  # re-exported: shared with the OpenVINO backend (.artifacts)

logger = logging.getLogger(__name__)

EXPORT_FORMAT = 1  # bump whenever the export pipeline's output changes
DEFAULT_OPSET = 17
MANIFEST = "crossrank-onnx.json"
MODEL_FILE = "model.onnx"
QUANTIZATIONS = {"fp32": "none", "int8": "dynamic-int8-per-channel"}
_LARGE = 1_800_000_000  # bytes of weights above which tensors go to external data (protobuf limit 2 GB)


def onnx_home() -> Path:
    from ..models.build import crossrank_home

    return crossrank_home() / "onnx"


def export_fingerprint(model_dir: Path, dtype: str, opset: int = DEFAULT_OPSET) -> dict:
    """Everything that determines an export's bytes; two equal fingerprints mean interchangeable files."""
    import onnxruntime

    from .. import __version__

    if dtype not in QUANTIZATIONS:
        raise BackendError(f"ONNX export dtype must be one of {', '.join(QUANTIZATIONS)}, got {dtype!r}")
    return {
        "format": EXPORT_FORMAT,
        "crossrank": __version__,
        "opset": opset,
        "quantization": QUANTIZATIONS[dtype],
        "onnxruntime": onnxruntime.__version__,
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "source": source_fingerprint(model_dir),
    }


def read_manifest(folder: Path) -> dict | None:
    return artifacts.read_manifest(folder, MANIFEST)


def write_manifest(folder: Path, manifest: dict) -> None:
    artifacts.write_manifest(folder, manifest, MANIFEST)


def is_current(folder: Path, fingerprint: dict) -> bool:
    """True when ``folder`` is a finished export of exactly ``fingerprint``
    (:func:`.artifacts.is_current`)."""
    return artifacts.is_current(folder, fingerprint, MANIFEST, MODEL_FILE)


def cached_export(model_dir: Path, dtype: str, opset: int = DEFAULT_OPSET) -> Path | None:
    """The current cached export of ``model_dir`` in ``dtype``, or ``None`` (never a stale one)."""
    fingerprint = export_fingerprint(model_dir, dtype, opset)
    folder = onnx_home() / cache_key(fingerprint)
    return folder if is_current(folder, fingerprint) else None


def ensure_export(
    model_dir: str | Path, dtype: str = "fp32", opset: int = DEFAULT_OPSET, out: str | Path | None = None
) -> Path:
    """Return a current export of ``model_dir`` (into the cache, or ``out``), exporting only if needed."""
    model_dir = Path(model_dir).resolve()
    fingerprint = export_fingerprint(model_dir, dtype, opset)
    final = Path(out).resolve() if out else onnx_home() / cache_key(fingerprint)
    artifacts.check_out_folder(final, in_cache=not out)
    artifacts.ensure_folder(
        final, fingerprint, manifest_name=MANIFEST, model_file=MODEL_FILE, what="ONNX export",
        build=lambda: _export_into(model_dir, final, fingerprint, dtype, opset), in_cache=not out,
    )
    if out is None:
        prune_stale(model_dir, keep=final)
    return final


def prune_stale(model_dir: Path, keep: Path) -> None:
    """Delete cached exports of the same source folder that no longer match it (they would never be used)."""
    root = onnx_home()
    for folder in root.iterdir() if root.is_dir() else ():
        manifest = read_manifest(folder)
        if folder != keep and manifest and manifest.get("source_path") == str(model_dir):
            if manifest["fingerprint"]["quantization"] == read_manifest(keep)["fingerprint"]["quantization"]:
                logger.info("removing stale ONNX export %s", folder)
                shutil.rmtree(folder, ignore_errors=True)


def _export_into(model_dir: Path, final: Path, fingerprint: dict, dtype: str, opset: int) -> None:
    start = time.perf_counter()
    logger.warning(
        "exporting %s to ONNX (%s) into %s; this runs once and takes a minute or more",
        model_dir,
        dtype,
        final,
    )
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}.", dir=final.parent))
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        inputs = _input_names(model_dir)
        large = sum(p.stat().st_size for p in model_dir.iterdir() if p.suffix in WEIGHT_SUFFIXES) > _LARGE
        if dtype == "int8":  # quantise the (cached) fused fp32 export: no second trace, half the memory
            base = ensure_export(model_dir, "fp32", opset)
            stats = read_manifest(base)["fused_operators"]
            quantize_int8(base / MODEL_FILE, tmp / MODEL_FILE, large=large)
        else:
            raw = tmp / "raw" / MODEL_FILE
            raw.parent.mkdir()
            _torch_export(model_dir, raw, inputs, opset)
            gc.collect()
            stats = _fuse(raw, tmp / MODEL_FILE, config, large)
            shutil.rmtree(raw.parent)
        copy_model_files(model_dir, tmp)
        write_manifest(
            tmp,
            {
                "fingerprint": fingerprint,
                "dtype": dtype,
                "inputs": inputs,
                "source_path": str(model_dir),
                "fused_operators": stats,
                "export_seconds": round(time.perf_counter() - start, 1),
                "gate": None,
                "files": artifacts.file_sizes(tmp, MANIFEST),
            },
        )
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.warning("exported %s (%s) in %.0fs", model_dir.name, dtype, time.perf_counter() - start)


def _input_names(model_dir: Path) -> list[str]:
    """The graph's inputs: token_type_ids only when the tokenizer produces them (BERT's, not XLM-R's)."""
    from transformers import AutoTokenizer

    names = getattr(AutoTokenizer.from_pretrained(str(model_dir)), "model_input_names", ())
    return ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in names else [])


def _torch_export(model_dir: Path, path: Path, inputs: list[str], opset: int) -> None:
    import torch

    # eager attention: the TorchScript exporter traces it cleanly (see the module docstring)
    model = load_fp32(model_dir, attn_implementation="eager")
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs} | {"logits": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python constants in transformers' mask code
        torch.onnx.export(
            logits_only(model),
            tuple(example_inputs(inputs).values()),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=inputs,
            output_names=["logits"],
            dynamic_axes=axes,
            do_constant_folding=True,
        )


def _fuse(raw: Path, out: Path, config: dict, large: bool) -> dict:
    """ONNX Runtime's transformer fusions; returns the count of each fused operator."""
    optimizer = optional_import("onnxruntime.transformers.optimizer", "onnx")
    fusion_options = optional_import("onnxruntime.transformers.fusion_options", "onnx")
    options = fusion_options.FusionOptions("bert")
    model = optimizer.optimize_model(
        str(raw),
        model_type="bert",
        num_heads=config["num_attention_heads"],
        hidden_size=config["hidden_size"],
        optimization_options=options,
        opt_level=0,
    )
    stats = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
    if not stats.get("Attention"):
        logger.warning("attention was not fused for this model; the export works but runs slower")
    model.save_model_to_file(str(out), use_external_data_format=large)
    return stats


def head_nodes(graph) -> list[str]:
    """Names of the pooler and classification-head nodes: a sliver of the compute that decides the last
    digits, so int8 quantisation always keeps them in fp32."""
    return [
        n.name
        for n in graph.node
        if "pooler" in n.name or "classifier" in n.name or any(o.startswith("logits") for o in n.output)
    ]


def quantize_int8(fused: Path, out: Path, *, keep_fp32: Sequence[str] = (), large: bool = False) -> None:
    """Dynamic int8 (per-channel weights) of the fused fp32 graph ``fused`` into ``out``; the head and the
    nodes named in ``keep_fp32`` stay fp32."""
    import onnx

    quantization = optional_import("onnxruntime.quantization", "onnx")
    graph = onnx.load(str(fused), load_external_data=False).graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantization.quantize_dynamic(
            str(fused),
            str(out),
            weight_type=quantization.QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            nodes_to_exclude=head_nodes(graph) + list(keep_fp32),
            use_external_data_format=large,
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def _swap_in(tmp: Path, final: Path) -> None:
    os.chmod(tmp, 0o755)
    swap_in_folder(tmp, final)
