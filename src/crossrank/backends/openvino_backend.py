"""OpenVINO backend: a cross-encoder converted to OpenVINO IR, run in fp32, bf16 or int8 on the CPU.

Conversion: ``openvino.convert_model`` of the torch model (example inputs; batch and sequence axes
dynamic), saved with ``openvino.save_model`` (weights kept fp32) into
``$CROSSRANK_HOME/openvino/<fingerprint>/`` with the source's config and tokenizer files (so the folder is
itself a model folder) and ``crossrank-openvino.json``: the fingerprint of what it was built from and how
(source weights, crossrank / OpenVINO / torch / transformers versions, IR kind, quantisation recipe and
calibration data). A folder whose fingerprint differs from what the current code and source would produce
is stale and never used: the cache converts again; an explicit ``crossrank export --engine openvino``
folder raises :class:`BackendError` naming the fix. Writes are atomic (a temporary folder swapped in).

Dtypes:

- ``fp32``: the fp32 IR compiled with ``INFERENCE_PRECISION_HINT=f32`` (OpenVINO's CPU plugin would
  otherwise pick bf16 by itself on CPUs with native bf16). Matches torch fp32 to ~1e-5 on logits.
- ``bf16``: the same fp32 IR compiled with ``INFERENCE_PRECISION_HINT=bf16``. Only meaningful on CPUs with
  native bf16 (AVX-512 BF16 or AMX, see :func:`cpu_supports_bf16`); elsewhere OpenVINO runs
  f32 and a warning says so (``backend.precision`` is what the plugin really uses).
- ``int8``: an NNCF post-training-quantised IR (:data:`INT8_RECIPE`: static int8 of the attention and
  FFN-up projections and the attention matmuls, SmoothQuant 0.8, the FFN down-projections and the head
  kept float; calibrated on the permissive query lists shipped in ``calibration_set.jsonl.gz``), the
  operations left in float running in bf16 where native, else f32.

Telemetry: the OpenVINO converter and NNCF send usage data to Google Analytics unless the user opted out;
crossrank keeps their ``openvino_telemetry`` module from loading (in ``crossrank/backends/__init__.py``),
so both fall back to their built-in no-op stubs.
"""

from __future__ import annotations

import gc
import gzip
import json
import logging
import re
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BackendError, InvalidInputError, optional_import
from ..fsutil import swap_in_folder
from . import artifacts
from ._torch_source import example_inputs, load_fp32, logits_only
from .artifacts import cache_key, copy_model_files, package_version, sha256, source_fingerprint
from .base import Batch

logger = logging.getLogger(__name__)

IR_FORMAT = 1  # bump whenever the conversion pipeline's output changes
MANIFEST = "crossrank-openvino.json"
MODEL_FILE = "model.xml"
DTYPES = ("auto", "fp32", "bf16", "int8")
CALIBRATION_SET_FILE = Path(__file__).with_name("calibration_set.jsonl.gz")


@dataclass(frozen=True)
class Int8Recipe:
    """How the int8 IR is made with NNCF (``nncf.quantize``); every field is part of the fingerprint.

    ``ignored``: regular expressions over node names (``__module.model.<torch module path>/...``) kept in
    float; ``ignored_types``: OpenVINO operation types kept in float (e.g. ``ScaledDotProductAttention``:
    the attention matmuls and softmax). ``smooth_quant_alpha``: SmoothQuant's migration strength for
    MatMuls (``None``: SmoothQuant off). ``calibration_lists``: query lists of the calibration set used
    (each with up to 8 candidates). ``float_precision``: what the operations left in float run in
    (``"bf16-if-native"`` or ``"f32"``)."""

    preset: str = "mixed"
    smooth_quant_alpha: float | None = 0.95
    ignored: tuple[str, ...] = ()
    ignored_types: tuple[str, ...] = ()
    calibration_lists: int = 48
    batch_size: int = 8
    fast_bias_correction: bool = True
    float_precision: str = "bf16-if-native"
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        # JSON-shaped (tuples as lists): it is compared with the fingerprint read back from the manifest.
        return json.loads(json.dumps(asdict(self)))


# Node-name patterns of the layer groups of a BERT / XLM-R encoder (as converted here).
GROUPS = {
    "head": (r".*\.(pooler|classifier)[./].*",),
    "qkv": (r".*\.attention\.self\.(query|key|value)/.*",),
    "attn_out": (r".*\.attention\.output\.dense/.*",),
    "ffn_up": (r".*\.intermediate\.dense/.*",),
    "ffn_down": (r".*\.layer\.\d+\.output\.dense/.*",),
}


def layers(first: int, last: int) -> tuple[str, ...]:
    """Patterns for every node of encoder layers ``first``..``last`` (inclusive)."""
    return tuple(rf".*\.encoder\.layer\.{i}\..*" for i in range(first, last + 1))


# The int8 recipe, chosen layer group by layer group on the trained embedded model
# (benchmarks/openvino_int8.py; numbers in benchmarks/README.md, "OpenVINO int8: what breaks ranking"):
# quantising only the FFN down-projections (their input is the GELU output, whose outliers per-tensor int8
# cannot hold) already drops mean Spearman to 0.987, while all the rest in int8 with SmoothQuant at 0.8
# keeps it at 0.992 (the first, short-text gate set; 0.992 on held-out permissive lists). SmoothQuant
# matters most (without it 0.886); the attention matmuls (SDPA) are harmless. The head is a sliver of the
# compute that decides the last digits, so it stays float too.
# On long passages it does not keep the ranking: ρ̄ 0.9899 on the gate set with long passages (fails,
# so auto runs OpenVINO bf16, ρ̄ 0.996) and 0.982 on 50 held-out ArguAna queries; no variant tried (SDPA,
# attention output or first/last layer float, SmoothQuant 0.9) reached 0.99 on ArguAna
# (benchmarks/README.md, "OpenVINO int8 on long passages").
INT8_RECIPE = Int8Recipe(ignored=GROUPS["head"] + GROUPS["ffn_down"], smooth_quant_alpha=0.8)


def openvino_available() -> bool:
    """True when the OpenVINO runtime can be imported (``pip install 'crossrank[openvino]'``)."""
    try:
        _no_telemetry()
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_version() -> str:
    """The OpenVINO runtime's version (``""`` when it is not installed)."""
    if not openvino_available():
        return ""
    import openvino

    return openvino.__version__


def _no_telemetry() -> None:
    """Keep ``openvino_telemetry`` from loading (done on import of :mod:`crossrank.backends`; repeated here
    for callers that import this module by path): OpenVINO's converter and NNCF then use their own no-op
    stubs and nothing phones home, without an opt-out file written into the user's home directory."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]


def _ov():
    _no_telemetry()
    return optional_import("openvino", "openvino")


def openvino_home() -> Path:
    from ..models.build import crossrank_home

    return crossrank_home() / "openvino"


def read_manifest(folder: Path) -> dict | None:
    return artifacts.read_manifest(folder, MANIFEST)


def write_manifest(folder: Path, manifest: dict) -> None:
    artifacts.write_manifest(folder, manifest, MANIFEST)


def ir_kind(dtype: str) -> str:
    """bf16 runs the fp32 IR (precision is a compile-time hint); int8 has its own IR."""
    if dtype not in ("fp32", "bf16", "int8"):
        raise InvalidInputError(f"OpenVINO dtype must be fp32, bf16 or int8, got {dtype!r}")
    return "int8" if dtype == "int8" else "fp32"


def build_recipe(dtype: str, recipe: Int8Recipe = INT8_RECIPE) -> dict | None:
    """How ``dtype``'s IR is made beyond the engine's version (int8: the quantisation recipe and the
    calibration data's SHA-256; ``None`` for fp32 / bf16): a key of ``auto``'s verdicts."""
    if ir_kind(dtype) != "int8":
        return None
    return {
        "format": IR_FORMAT,
        "recipe": recipe.as_dict(),
        "calibration_sha256": sha256(CALIBRATION_SET_FILE.read_bytes()),
    }


def ir_fingerprint(model_dir: Path, dtype: str, recipe: Int8Recipe = INT8_RECIPE) -> dict:
    """Everything that determines an IR's bytes; two equal fingerprints mean interchangeable files.

    Package versions are read from their metadata, not by importing them: loading a cached IR then
    imports neither torch nor transformers (~230 MB of RSS that an OpenVINO process does not need)."""
    from .. import __version__

    kind = ir_kind(dtype)
    fingerprint = {
        "format": IR_FORMAT,
        "crossrank": __version__,
        "ir": kind,
        "openvino": openvino_version(),
        "torch": package_version("torch"),
        "transformers": package_version("transformers"),
        "source": source_fingerprint(model_dir),
    }
    if kind == "int8":
        nncf_version = package_version("nncf")
        if not nncf_version:
            optional_import("nncf", "openvino")  # raises the install hint
        fingerprint["quantization"] = {
            "nncf": nncf_version,
            "recipe": recipe.as_dict(),
            "calibration_sha256": sha256(CALIBRATION_SET_FILE.read_bytes()),
        }
    return fingerprint


def is_current(folder: Path, fingerprint: dict) -> bool:
    """True when ``folder`` is a finished conversion of exactly ``fingerprint``
    (:func:`.artifacts.is_current`)."""
    return artifacts.is_current(folder, fingerprint, MANIFEST, MODEL_FILE)


def cached_ir(model_dir: str | Path, dtype: str, recipe: Int8Recipe = INT8_RECIPE) -> Path | None:
    """The current cached IR of ``model_dir`` for ``dtype``, or ``None`` (never a stale one)."""
    model_dir = Path(model_dir).resolve()
    fingerprint = ir_fingerprint(model_dir, dtype, recipe)
    folder = openvino_home() / cache_key(fingerprint)
    return folder if is_current(folder, fingerprint) else None


def prepare_openvino(model_dir: Path, dtype: str, *, progress: bool = True) -> Path:
    """Convert ``model_dir`` to OpenVINO IR for ``dtype`` (fp32, bf16 or int8) into the cache, or reuse
    the current cached conversion; return its folder. Shows progress (tqdm) when ``progress``."""
    return ensure_ir(model_dir, dtype, progress=progress)


def ensure_ir(
    model_dir: str | Path,
    dtype: str = "fp32",
    *,
    out: str | Path | None = None,
    recipe: Int8Recipe = INT8_RECIPE,
    progress: bool = True,
) -> Path:
    """Return a current IR of ``model_dir`` for ``dtype`` (into the cache, or ``out``), converting only if
    needed."""
    model_dir = Path(model_dir).resolve()
    fingerprint = ir_fingerprint(model_dir, dtype, recipe)
    final = Path(out).resolve() if out else openvino_home() / cache_key(fingerprint)
    artifacts.check_out_folder(final, in_cache=not out)
    artifacts.ensure_folder(
        final, fingerprint, manifest_name=MANIFEST, model_file=MODEL_FILE, what="OpenVINO IR",
        build=lambda: _convert_into(model_dir, final, fingerprint, dtype, recipe, progress), in_cache=not out,
    )
    if out is None:
        prune_stale(model_dir, keep=final)
    return final


def prune_stale(model_dir: Path, keep: Path) -> None:
    """Delete cached IRs of the same source folder and kind that no longer match it."""
    root, kind = openvino_home(), read_manifest(keep)["fingerprint"]["ir"]
    for folder in root.iterdir() if root.is_dir() else ():
        manifest = read_manifest(folder)
        if folder != keep and manifest and manifest.get("source_path") == str(model_dir):
            if manifest["fingerprint"].get("ir") == kind:
                logger.info("removing stale OpenVINO IR %s", folder)
                shutil.rmtree(folder, ignore_errors=True)


def input_names(model_dir: Path) -> list[str]:
    """The model's inputs: token_type_ids only when the tokenizer produces them (BERT's, not XLM-R's)."""
    from transformers import AutoTokenizer

    names = getattr(AutoTokenizer.from_pretrained(str(model_dir)), "model_input_names", ())
    return ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in names else [])


def _steps(progress: bool, total: int, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"crossrank: OpenVINO {name}", unit="step", disable=not progress)


def _convert_into(
    model_dir: Path, final: Path, fingerprint: dict, dtype: str, recipe: Int8Recipe, progress: bool
) -> None:
    ov = _ov()
    start = time.perf_counter()
    kind = fingerprint["ir"]
    logger.warning(
        "converting %s to OpenVINO IR (%s) into %s; this runs once%s",
        model_dir,
        kind,
        final,
        " (int8 calibration takes a minute or two)" if kind == "int8" else "",
    )
    inputs = input_names(model_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}.", dir=final.parent))
    timings = {}
    try:
        with _steps(progress, 3 if kind == "int8" else 1, kind) as bar:
            bar.set_postfix_str("convert")
            t = time.perf_counter()
            model = convert(model_dir, inputs)
            timings["convert_seconds"] = round(time.perf_counter() - t, 1)
            bar.update()
            if kind == "int8":
                bar.set_postfix_str("calibration inputs")
                t = time.perf_counter()
                data = calibration_batches(model_dir, recipe.calibration_lists, recipe.batch_size)
                bar.update()
                bar.set_postfix_str("quantise")
                model = quantize(model, data, recipe, progress=progress)
                timings["quantize_seconds"] = round(time.perf_counter() - t, 1)
                bar.update()
            ov.save_model(model, str(tmp / MODEL_FILE), compress_to_fp16=False)
        del model
        gc.collect()
        copy_model_files(model_dir, tmp)
        write_manifest(
            tmp,
            {
                "fingerprint": fingerprint,
                "dtype": kind,
                "inputs": inputs,
                "source_path": str(model_dir),
                **timings,
                "seconds": round(time.perf_counter() - start, 1),
                "gate": None,
                "files": artifacts.file_sizes(tmp, MANIFEST),
            },
        )
        tmp.chmod(0o755)
        swap_in_folder(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.warning("converted %s (%s) in %.0fs", model_dir.name, kind, time.perf_counter() - start)


def convert(model_dir: Path, inputs: Sequence[str]):
    """``openvino.convert_model`` of the torch model returning logits, batch and sequence axes dynamic."""
    import torch

    ov = _ov()
    model = load_fp32(model_dir)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python constants in transformers' mask code
        try:
            converted = ov.convert_model(
                logits_only(model),
                example_input=example_inputs(inputs),
                input=[(name, ov.PartialShape([-1, -1]), ov.Type.i64) for name in inputs],
            )
        except Exception as exc:  # the converter raises its own exception types
            raise BackendError(f"OpenVINO could not convert {model_dir}: {exc}") from exc
    converted.outputs[0].get_tensor().set_names({"logits"})
    return converted


class _Recorder:
    """A backend that keeps the padded batches the scoring engine builds (and returns zeros): calibration
    sees exactly the inputs real use produces (tokenization, windowing, length-sorted batches)."""

    name, dtype, device = "calibration", "fp32", "cpu"

    def __init__(self):
        self.batches: list[Batch] = []

    def forward(self, batch: Batch) -> np.ndarray:
        self.batches.append(batch)
        return np.zeros(batch.shape[0], dtype=np.float32)


def calibration_lists(n: int | None = None, path: Path | None = None) -> list[tuple[str, list[str]]]:
    """``(query, candidates)`` of the shipped calibration set (see ``CALIBRATION_SET.md``)."""
    path = path or CALIBRATION_SET_FILE
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise BackendError(f"the int8 calibration set {path} is missing or damaged ({exc})") from exc
    return [(r["query"], list(r["candidates"])) for r in rows[:n]]


def calibration_batches(
    model_dir: Path, n_lists: int, batch_size: int, lists: Sequence[tuple[str, Sequence[str]]] | None = None
) -> list[dict[str, np.ndarray]]:
    """The model's input feeds for the calibration lists, batched as the scoring engine batches them."""
    from ..reranker import Reranker

    recorder = _Recorder()
    lists = lists if lists is not None else calibration_lists(n_lists)
    pairs = [(q, d) for q, docs in lists for d in docs]
    Reranker(str(model_dir), backend=recorder, batch_size=batch_size).compute_score(pairs)
    inputs = input_names(model_dir)
    return [_feed(b, inputs) for b in recorder.batches]


def _feed(batch: Batch, inputs: Sequence[str]) -> dict[str, np.ndarray]:
    feed = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    if "token_type_ids" in inputs:
        types = batch.token_type_ids
        feed["token_type_ids"] = types if types is not None else np.zeros_like(batch.input_ids)
    return feed


def quantize(model, data: Sequence[dict], recipe: Int8Recipe, *, progress: bool = True):
    """NNCF static post-training quantisation of the OpenVINO model ``model`` following ``recipe``."""
    nncf = optional_import("nncf", "openvino")
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
    )

    names = [op.get_friendly_name() for op in model.get_ops()]
    patterns = [p for p in recipe.ignored if any(re.fullmatch(p, n) for n in names)]
    alpha = -1 if recipe.smooth_quant_alpha is None else recipe.smooth_quant_alpha
    advanced = AdvancedQuantizationParameters(
        smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=alpha), **recipe.extra
    )
    level = logging.getLogger("nncf").level
    if not progress:
        logging.getLogger("nncf").setLevel(logging.ERROR)
    try:
        return nncf.quantize(
            model,
            nncf.Dataset(list(data)),
            preset=nncf.QuantizationPreset(recipe.preset),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(data),
            fast_bias_correction=recipe.fast_bias_correction,
            ignored_scope=nncf.IgnoredScope(
                patterns=patterns, types=list(recipe.ignored_types), validate=False
            ),
            advanced_parameters=advanced,
        )
    except Exception as exc:  # NNCF raises its own exception types
        raise BackendError(f"NNCF could not quantise the model: {exc}") from exc
    finally:
        logging.getLogger("nncf").setLevel(level)


def check_ir_folder(folder: Path, dtype: str | None = None) -> dict:
    """Validate a ``crossrank export --engine openvino`` folder against this crossrank; return its
    manifest."""
    from .. import __version__

    manifest = read_manifest(folder) or {}
    expected = {"format": IR_FORMAT, "crossrank": __version__, "openvino": openvino_version()}
    problems = artifacts.folder_problems(folder, manifest, expected, MODEL_FILE, "the IR")
    kind = manifest.get("dtype")
    again = f"crossrank export {manifest.get('source_path', 'MODEL')} --engine openvino"
    if problems:
        raise BackendError(
            f"the OpenVINO IR in {folder} is stale or damaged: {'; '.join(problems)}. "
            f"Convert it again: {again} --out {folder}" + (" --int8" if kind == "int8" else "")
        )
    if dtype not in (None, "auto") and ir_kind(dtype) != kind:
        raise InvalidInputError(
            f"{folder} holds a {kind} OpenVINO IR, which cannot run as {dtype}; convert it with "
            f"{again} {'--int8 ' if dtype == 'int8' else ''}--out DIR"
        )
    return manifest


def cpu_supports_bf16() -> bool:
    """Native bf16 on this CPU (AVX-512 BF16 or AMX), read from the CPU flags without importing torch."""
    from .auto import cpu_features, native_bf16

    features = cpu_features()
    if any(f.startswith("torch:") for f in features):  # no /proc/cpuinfo: ask torch
        from .torch_backend import cpu_supports_bf16 as torch_says

        return torch_says()
    return native_bf16(features)


def _precision_hint(dtype: str, recipe: Int8Recipe = INT8_RECIPE) -> str:
    if dtype == "fp32":
        return "f32"
    if dtype == "bf16":
        if not cpu_supports_bf16():
            logger.warning(
                "this CPU has no native bf16 instructions: OpenVINO bf16 runs in f32 here; use fp32 or int8"
            )
        return "bf16"
    return "bf16" if recipe.float_precision == "bf16-if-native" and cpu_supports_bf16() else "f32"


class OpenVINOBackend:
    """Runs a cross-encoder with OpenVINO on the CPU.

    Args:
        model_dir: a source model folder (converted on first use, then cached) or a folder written by
            ``crossrank export --engine openvino``.
        device: ``"cpu"`` (default; OpenVINO's GPU plugin targets Intel GPUs, not CUDA).
        dtype: ``"fp32"``, ``"bf16"``, ``"int8"`` or ``"auto"`` (an export folder's own kind; fp32 for a
            source folder).
        threads: inference threads (``INFERENCE_NUM_THREADS``); default ``$CROSSRANK_THREADS`` or all usable
            cores.
        convert: convert a source folder that has no current cached IR (else raise).
    """

    name = "openvino"

    def __init__(
        self,
        model_dir: str | Path,
        device: str | None = None,
        dtype: str = "auto",
        threads: int | None = None,
        convert: bool = True,
        progress: bool = True,
    ):
        from .onnx_backend import default_threads, usable_cores

        ov = _ov()
        if device not in (None, "cpu", "auto"):
            raise InvalidInputError(
                f"backend='openvino' runs on the CPU, not {device!r}; use backend='torch' for CUDA"
            )
        if dtype not in DTYPES:
            raise InvalidInputError(f"OpenVINO dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.device = "cpu"
        model_dir = Path(model_dir).resolve()
        manifest = read_manifest(model_dir)
        if manifest is not None:  # a crossrank export folder
            check_ir_folder(model_dir, dtype)
            self.dtype = manifest["dtype"] if dtype == "auto" else dtype
            self.ir_dir = model_dir
        else:
            self.dtype = "fp32" if dtype == "auto" else dtype
            found = (
                ensure_ir(model_dir, self.dtype, progress=progress)
                if convert
                else cached_ir(model_dir, self.dtype)
            )
            if found is None:
                raise BackendError(
                    f"no current {self.dtype} OpenVINO IR of {model_dir}; run crossrank export "
                    f"{model_dir} --engine openvino{' --int8' if self.dtype == 'int8' else ''}"
                )
            self.ir_dir = found
        self.manifest = read_manifest(self.ir_dir)
        self.threads = threads or default_threads()
        config = {
            "INFERENCE_PRECISION_HINT": _precision_hint(self.dtype),
            "INFERENCE_NUM_THREADS": self.threads,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            # OpenVINO pins its threads to the first cores of the process's mask: two replicas or Ray
            # actors of one thread each would both run on core 0 (measured: no scaling). Pin only a
            # process that owns all of its cores.
            "ENABLE_CPU_PINNING": self.threads >= usable_cores(),
        }
        try:
            self.compiled = ov.Core().compile_model(str(self.ir_dir / MODEL_FILE), "CPU", config)
        except Exception as exc:  # OpenVINO raises its own exception types
            raise BackendError(f"OpenVINO could not load {self.ir_dir / MODEL_FILE}: {exc}") from exc
        hint = self.compiled.get_property("INFERENCE_PRECISION_HINT")  # what the plugin really runs
        self.precision = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        self.input_names = [i.get_any_name() for i in self.compiled.inputs]
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request; the server may call forward from threads
        logger.info(
            "OpenVINO %s IR %s, %d threads, precision %s",
            *(self.dtype, self.ir_dir, self.threads, self.precision),
        )

    def forward(self, batch: Batch) -> np.ndarray:
        feed = _feed(batch, self.input_names)
        with self._lock:
            logits = self._request.infer(feed)[0]
            return np.array(logits[:, 0], dtype=np.float32)  # a copy: the request reuses its buffers


__all__ = [
    "INT8_RECIPE",
    "Int8Recipe",
    "OpenVINOBackend",
    "openvino_available",
    "openvino_version",
    "prepare_openvino",
]
