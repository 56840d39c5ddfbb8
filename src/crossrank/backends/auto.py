"""``backend="auto"``: the fastest backend that has proven accurate for this model on this machine.

The rule, in order (this module is the only place it is written):

1. a folder written by ``crossrank export`` runs on its engine (ONNX Runtime, OpenVINO) in its own dtype;
2. CUDA (requested, or available with ``device=None``), or ``dtype`` bf16/fp16: torch in that dtype;
   ``dtype="int8"``: ONNX Runtime int8, as asked (not gated);
3. on CPU with ``dtype="auto"`` (or ``"fp32"``: the fp32 candidates only), the candidates of
   :func:`candidates` for this CPU's features, fastest first as measured by ``benchmarks/throughput.py``:
   OpenVINO int8, OpenVINO bf16 (native-bf16 CPUs), ONNX int8, torch bf16 (native bf16), OpenVINO fp32,
   ONNX fp32; with AMX and a model narrower than 768 (hidden size), OpenVINO bf16 before int8. The
   first one whose **gate passed** is used. On first use each candidate, in order, is prepared
   (converted / exported, cached by fingerprint), then gated: the shipped gate set
   (:func:`crossrank.backends.gate.gate_set`, English and Chinese query lists) is scored with it and
   compared with torch fp32 (:func:`crossrank.backends.gate.compare`: mean per-query Spearman >= 0.99 and
   the same top-1 on >= 95% of the lists). Preparation stops at the first candidate that passes;
4. otherwise torch fp32: the exact reference.

Verdicts (and the reference's logits) are cached in ``$CROSSRANK_HOME/auto/<model>.json``, keyed by the
model's fingerprint (config and weights), the engine's package versions and build recipe (OpenVINO int8:
the quantisation recipe and calibration data), this CPU's features, crossrank's version and the gate set
(its SHA-256): a change of any of them re-gates. A candidate that cannot run here (engine not
installed, conversion error, gate failed) is skipped with its reason, which is logged and reported in
``Reranker.info()["backend_reason"]``. ``CROSSRANK_AUTO_PREPARE=0`` uses cached verdicts only (nothing is
converted or gated at load time; ``crossrank models build`` prepares ahead of time). Preparation runs in a
child process (its memory peak never stays in the caller's), stopped after
``$CROSSRANK_AUTO_PREPARE_TIMEOUT`` seconds (default 1800).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.metadata
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import write_text_atomic

logger = logging.getLogger(__name__)

VERDICT_FORMAT = 1  # bump when the verdict file's layout or the gating procedure changes
PREPARE_ENV = "CROSSRANK_AUTO_PREPARE"
# Seconds one candidate's preparation may take before it is stopped and recorded as failed (bounded
# preparation; `crossrank models build --force MODEL` tries again).
PREPARE_TIMEOUT_ENV, PREPARE_TIMEOUT_S = "CROSSRANK_AUTO_PREPARE_TIMEOUT", 1800
# CPU flags that decide which kernels (and so which candidate order and numerics) a machine gets.
CPU_FLAGS = (
    "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
    "amx_tile", "amx_bf16", "amx_int8",
)
GATE_OPTIONS = {"truncate": "right", "max_length": 512}  # how the gate set is scored (one window per pair)
REFERENCE = ("torch", "fp32")
DTYPES = ("auto", "fp32", "bf16", "fp16", "int8")  # what backend="auto" accepts (see the rule)


@dataclass(frozen=True, slots=True)
class Engine:
    """An inference engine ``auto`` can choose: the modules it needs, the distributions whose versions
    key its verdicts, and how a model is prepared for it (``prepare(model_dir, dtype)``)."""

    name: str
    requires: tuple[str, ...]
    distributions: tuple[str, ...]
    prepare: Callable[[Path, str], object] = field(repr=False)
    isolate: bool = True  # prepare in a child process (see prepare_isolated)
    is_prepared: Callable[[Path, str], bool] = field(default=lambda model_dir, dtype: False, repr=False)
    # How the engine builds ``dtype`` (e.g. the int8 quantisation recipe and calibration data): part of
    # that candidate's verdict key, so a changed recipe is gated again.
    build: Callable[[str], object] = field(default=lambda dtype: None, repr=False)


def _prepare_openvino(model_dir: Path, dtype: str):
    from .openvino_backend import prepare_openvino

    return prepare_openvino(model_dir, dtype, progress=True)


def _prepare_onnx(model_dir: Path, dtype: str):
    from .onnx_export import ensure_export

    return ensure_export(model_dir, dtype)


def _prepare_nothing(model_dir: Path, dtype: str):
    return None


def _openvino_prepared(model_dir: Path, dtype: str) -> bool:
    from .openvino_backend import cached_ir

    return cached_ir(model_dir, dtype) is not None


def _openvino_build(dtype: str) -> dict | None:
    from .openvino_backend import build_recipe

    return build_recipe(dtype)


def _onnx_prepared(model_dir: Path, dtype: str) -> bool:
    from .onnx_export import cached_export

    return cached_export(model_dir, dtype) is not None


ENGINES: dict[str, Engine] = {
    "openvino": Engine(
        "openvino", ("openvino", "crossrank.backends.openvino_backend"), ("openvino", "nncf"),
        _prepare_openvino, is_prepared=_openvino_prepared, build=_openvino_build,
    ),
    # The ONNX export is traced by torch from the transformers model: their versions shape it too.
    "onnx": Engine(
        "onnx", ("onnxruntime", "onnx"), ("onnxruntime", "onnx", "torch", "transformers"), _prepare_onnx,
        is_prepared=_onnx_prepared,
    ),
    "torch": Engine(
        "torch", ("torch",), ("torch", "transformers"), _prepare_nothing, isolate=False,
        is_prepared=lambda model_dir, dtype: True,
    ),
}


def prepare_isolated(engine: str, model_dir: Path, dtype: str) -> None:
    """Prepare ``model_dir`` for ``engine`` in a child process.

    Converters peak far above what the converted model needs at run time (the ONNX export of the
    118M-parameter embedded model: 4.6 GB, against ~1.3 GB to serve it), and memory freed by a process is
    rarely handed back to the OS: preparing in the serving process would leave it that large. A plain
    ``python -m`` child (not multiprocessing's spawn, which re-imports the caller's main script) runs
    :func:`_prepare_main`; its stderr (progress, warnings) passes through."""
    import subprocess
    import sys

    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    from ..errors import BackendError

    timeout = float(os.environ.get(PREPARE_TIMEOUT_ENV) or PREPARE_TIMEOUT_S)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "crossrank.backends.auto", engine, dtype, str(model_dir)],
            stdout=subprocess.PIPE, text=True, env=env, check=False, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise BackendError(
            f"stopped after {timeout:.0f}s (${PREPARE_TIMEOUT_ENV}); "
            "crossrank models build --force MODEL retries"
        ) from None
    if proc.returncode != 0:
        lines = [x[len(_ERROR):] for x in proc.stdout.splitlines() if x.startswith(_ERROR)]
        detail = lines[-1] if lines else f"the preparing process exited with status {proc.returncode}"
        raise BackendError(detail.removeprefix("BackendError: "))


_ERROR = "crossrank-prepare-error: "


def _prepare_main(argv: Sequence[str]) -> int:
    """``python -m crossrank.backends.auto ENGINE DTYPE MODEL_DIR``: the child of :func:`prepare_isolated`."""
    import sys

    engine, dtype, model_dir = argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        ENGINES[engine].prepare(Path(model_dir), dtype)
    except Exception as exc:  # reported to the parent, which records it in the verdict
        sys.stdout.write(f"{_ERROR}{type(exc).__name__}: {' '.join(str(exc).split())}\n")
        return 1
    return 0


def _prepare(spec: Engine, model_dir: Path, dtype: str) -> None:
    if spec.is_prepared(model_dir, dtype):
        return
    if spec.isolate:
        prepare_isolated(spec.name, model_dir, dtype)
    else:
        spec.prepare(model_dir, dtype)


@dataclass(frozen=True, slots=True)
class Choice:
    """What ``auto`` picked and why (``backend`` is the loaded object, ready to run)."""

    backend: object
    engine: str
    dtype: str
    reason: str


# ---------------------------------------------------------------- the machine


def cpu_features() -> tuple[str, ...]:
    """The decisive ISA flags of this CPU (from ``/proc/cpuinfo``; elsewhere torch's CPU capability)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    return tuple(f for f in CPU_FLAGS if f in flags)
    except OSError:
        pass
    import torch

    return (f"torch:{torch.backends.cpu.get_cpu_capability()}",)


def native_bf16(features: Sequence[str]) -> bool:
    return "avx512_bf16" in features or "amx_bf16" in features


# With AMX, int8 gains only in the FullyConnected layers (both int8 and bf16 run them on the tiles, int8
# at up to twice the rate); the fused attention runs at the same rate in both and its share of the time
# falls as the model widens (attention ~L^2*H, projections ~L*H^2). Measured on a 2-core Xeon with AMX:
# hidden 384 (embedded): int8 34.1 vs bf16 37.0 pairs/s, and int8 ranks worse (ArguAna per-query Spearman
# vs torch fp32 0.9848 vs 0.9970); hidden 1024 (m3-shape): int8 5.00 vs bf16 3.97 pairs/s.
AMX_INT8_MIN_HIDDEN = 768


def candidates(
    features: Sequence[str], dtype: str = "auto", hidden_size: int | None = None
) -> list[tuple[str, str]]:
    """``(engine, dtype)`` to try, fastest first, for a CPU with ``features`` and a model of width
    ``hidden_size``; torch fp32 is the fallback (and the reference) and is not listed. bf16 candidates
    only where bf16 is native (elsewhere it is emulated, many times slower than fp32). int8 leads without
    AMX: ~2x the fp32 kernel rate even on AVX2-only CPUs, ~1.3x OpenVINO bf16 with AVX-512 VNNI + BF16
    (5.18x vs 4.05x sentence-transformers, benchmarks/README.md). With AMX, OpenVINO bf16 leads for models
    narrower than :data:`AMX_INT8_MIN_HIDDEN` (int8 is no faster there, see above)."""
    bf16 = native_bf16(features)
    if dtype == "fp32":
        return [("openvino", "fp32"), ("onnx", "fp32")]
    order = [("openvino", "int8")]
    if "amx_bf16" in features and (hidden_size or 0) < AMX_INT8_MIN_HIDDEN:
        order.insert(0, ("openvino", "bf16"))
    elif bf16:
        order.append(("openvino", "bf16"))
    order += [("onnx", "int8")]
    order += [("torch", "bf16")] if bf16 else []
    return order + [("openvino", "fp32"), ("onnx", "fp32")]


def engine_versions(engine: Engine) -> dict[str, str | None]:
    out = {}
    for dist in engine.distributions:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def missing_requirement(engine: Engine) -> str | None:
    """The first module of ``engine`` that does not import here (``None``: all do)."""
    for module in engine.requires:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"{module} is not installed ({exc.__class__.__name__}: {exc})"
    return None


# ---------------------------------------------------------------- verdict cache


def verdict_file(model_dir: Path) -> Path:
    """``$CROSSRANK_HOME/auto/<hash of the model folder's path>.json``: one file per model folder, whose
    fingerprint inside it says which weights its verdicts are for."""
    import hashlib

    from ..models.build import crossrank_home

    digest = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:20]
    return crossrank_home() / "auto" / f"{digest}.json"


def read_verdicts(model_dir: Path) -> dict:
    """The verdict file's content; ``{}`` when it is missing, unreadable or not a JSON object."""
    try:
        state = json.loads(verdict_file(model_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


_SUMMARY_FIELDS = ("spearman_mean", "top1_agreement", "n_queries")  # what _summary reads of a gate


def _well_formed(verdict) -> bool:
    """Whether a verdict read back from the file holds what choosing reads (an edited or damaged one is
    gated again, never a crash)."""
    if not isinstance(verdict, dict) or not isinstance(verdict.get("passed"), bool):
        return False
    if not isinstance(verdict.get("reason"), str):
        return False
    gate = verdict.get("gate")
    return not verdict["passed"] or (
        isinstance(verdict.get("checked_at"), str)
        and isinstance(gate, dict)
        and all(isinstance(gate.get(k), int | float) for k in _SUMMARY_FIELDS)
    )


def _is_reference(logits) -> bool:
    """Whether ``logits`` (read back from the verdict file) holds one list per gate list, of its length."""
    from .gate import gate_set

    if not isinstance(logits, list):
        return False
    sizes = [len(x) if isinstance(x, list) else None for x in logits]
    return sizes == [len(g.candidates) for g in gate_set()]


def forget(model_dir: str | Path) -> None:
    """Delete the cached verdicts of ``model_dir`` (the next ``auto`` load prepares and gates again)."""
    verdict_file(Path(model_dir)).unlink(missing_ok=True)


def _write(model_dir: Path, state: dict) -> None:
    path = verdict_file(model_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(state, indent=2, sort_keys=True) + "\n")


def _json(value):
    """``value`` as it reads back from the verdict file (tuples as lists)."""
    return json.loads(json.dumps(value))


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _model_key(model_dir: Path, features: Sequence[str]) -> dict:
    """What every verdict of this model depends on, whatever the engine."""
    from .. import __version__
    from .gate import MIN_SPEARMAN, MIN_TOP1, gate_set_sha256
    from .onnx_export import source_fingerprint

    return {
        "format": VERDICT_FORMAT,
        "crossrank": __version__,
        "model": source_fingerprint(model_dir),
        "cpu": list(features),
        "machine": platform.machine(),
        "gate_set_sha256": gate_set_sha256(),
        "gate": {"min_spearman": MIN_SPEARMAN, "min_top1": MIN_TOP1, **GATE_OPTIONS},
        "reference": engine_versions(ENGINES["torch"]),
    }


# ---------------------------------------------------------------- choosing


def _load(engine: str, model_dir: Path, device: str | None, dtype: str):
    from ..reranker import load_explicit_backend

    return load_explicit_backend(engine, model_dir, device, dtype)


def _load_reference(model_dir: Path):
    return _load(REFERENCE[0], model_dir, "cpu", REFERENCE[1])


def _gate_reranker(model_dir: Path, backend):
    from ..reranker import Reranker

    return Reranker(str(model_dir), backend=backend, **GATE_OPTIONS)


def _score_gate_set(model_dir: Path, backend, what: str) -> list[list[float]]:
    from tqdm import tqdm

    from .gate import gate_set, score_lists

    lists = [(g.query, g.candidates) for g in gate_set()]
    total = sum(len(c) for _, c in lists)
    with tqdm(total=total, desc=f"gating {what}", unit="pair", disable=None, leave=False) as bar:
        return score_lists(_gate_reranker(model_dir, backend), lists, lambda done, _: bar.update(done))


def _hidden_size(model_dir: Path) -> int | None:
    try:
        return int(json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not a Hugging Face folder (an export): the engine is fixed anyway


def _summary(gate: dict) -> str:
    return (
        f"ρ̄ {gate['spearman_mean']:.4f}, top-1 {gate['top1_agreement']:.0%} on {gate['n_queries']} "
        "shipped gate lists vs torch fp32"
    )


def choose(
    model_dir: str | Path,
    device: str | None = None,
    dtype: str = "auto",
    *,
    prepare: bool | None = None,
    order: Sequence[tuple[str, str]] | None = None,
) -> Choice:
    """What ``backend="auto"`` means for this model folder, device and dtype (see the module rule), with
    the backend loaded. ``prepare=False`` (default: ``$CROSSRANK_AUTO_PREPARE`` unless ``0``) only uses
    cached verdicts; ``order`` replaces the CPU's candidate list (tests, benchmarks)."""
    model_dir = Path(model_dir).resolve()
    fixed = _fixed_rule(model_dir, device, dtype)
    if fixed is not None:
        engine, chosen_dtype, reason = fixed
        return Choice(_load(engine, model_dir, device, chosen_dtype), engine, chosen_dtype, reason)
    if prepare is None:
        prepare = os.environ.get(PREPARE_ENV, "1").strip() not in ("0", "false", "no")
    features = cpu_features()
    order = list(order) if order is not None else candidates(features, dtype, _hidden_size(model_dir))
    try:
        key = _model_key(model_dir, features)
    except Exception as exc:  # not a folder the fingerprint understands (no weights files, ...)
        reason = f"torch fp32: no fast candidate for this folder ({exc})"
        logger.info("auto: %s", reason)
        return Choice(_load_reference(model_dir), "torch", "fp32", reason)
    return _Chooser(model_dir, key, order, prepare).run()


def _fixed_rule(model_dir: Path, device: str | None, dtype: str) -> tuple[str, str, str] | None:
    """Steps 1-2 of the rule: choices that need no gate. ``None``: gate candidates on the CPU."""
    try:
        from .onnx_export import read_manifest

        manifest = read_manifest(model_dir)
    except ImportError:
        manifest = None
    if manifest is not None:
        chosen = manifest["dtype"] if dtype == "auto" else dtype
        return "onnx", chosen, f"onnx {chosen}: the model is a crossrank ONNX export folder"
    ir = _openvino_manifest(model_dir)
    if ir is not None:
        chosen = ir.get("dtype", "auto") if dtype == "auto" else dtype
        return "openvino", chosen, f"openvino {chosen}: the model is a crossrank OpenVINO IR folder"
    if not on_cpu(device):
        return "torch", dtype, f"torch (dtype {dtype}): a CUDA device"
    if dtype in ("bf16", "fp16"):
        return "torch", dtype, f"torch {dtype}: dtype={dtype!r} requested"
    if dtype == "int8":
        return "onnx", "int8", "onnx int8: dtype='int8' requested (not gated)"
    if dtype not in ("auto", "fp32"):
        from ..errors import InvalidInputError

        raise InvalidInputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return None


def _openvino_manifest(model_dir: Path) -> dict | None:
    if not (model_dir / "crossrank-openvino.json").is_file():
        return None
    try:
        from .openvino_backend import read_manifest
    except ImportError:
        return None
    return read_manifest(model_dir)


def on_cpu(device: str | None) -> bool:
    """Whether ``device`` (None: the default one) is the CPU, without importing torch where no GPU can be."""
    if device is not None:
        return device == "cpu"
    if not _gpu_device_nodes():
        return True  # no GPU device here: no need to import torch (~200 MB of RSS) to ask it
    import torch

    return not torch.cuda.is_available()


def _gpu_device_nodes() -> bool:
    """False only where CUDA (or ROCm) surely cannot be available: Linux without the device nodes their
    drivers create (``/dev/nvidiactl``, ``/dev/nvidia*``, ROCm's ``/dev/kfd``, WSL's ``/dev/dxg``).
    Elsewhere (other OSes) True: torch is asked."""
    import sys

    if not sys.platform.startswith("linux"):
        return True
    dev = Path("/dev")
    return any(dev.glob("nvidia*")) or (dev / "kfd").exists() or (dev / "dxg").exists()


class _Chooser:
    """Walks the candidates in order; prepares and gates those without a current verdict."""

    def __init__(self, model_dir: Path, key: dict, order: list[tuple[str, str]], prepare: bool):
        self.model_dir, self.key, self.order, self.prepare = model_dir, key, order, prepare
        self.skipped: list[str] = []
        self.state: dict = {}
        self.not_preparing = f" ({PREPARE_ENV}=0)"  # why nothing is gated or converted now

    def run(self) -> Choice:
        from ..fsutil import file_lock

        self.state = self._current_state(read_verdicts(self.model_dir))
        if self.prepare and self._needs_gating():
            lock = verdict_file(self.model_dir).with_suffix(".lock")
            try:
                lock.parent.mkdir(parents=True, exist_ok=True)
                with file_lock(lock):  # one process prepares; the others then find its verdicts
                    self.state = self._current_state(read_verdicts(self.model_dir))
                    return self._walk()
            except OSError as exc:  # a read-only or full cache: run what needs no preparation
                logger.warning("auto: cannot prepare in %s (%s); not preparing", lock.parent, exc)
                self.prepare = False
                self.not_preparing = f": {exc.strerror or exc}: {lock.parent}"
        return self._walk()

    def _current_state(self, state: dict) -> dict:
        if state.get("key") != self.key or not isinstance(state.get("verdicts"), dict):
            if state:
                logger.warning(
                    "auto: the cached verdicts for %s are stale or damaged (model, CPU or crossrank "
                    "changed); gating again", self.model_dir,
                )
            runs = state.get("gate_runs", 0)  # gate runs for this folder, ever (stale ones included)
            return {"key": self.key, "model_path": str(self.model_dir), "verdicts": {}, "gate_runs": runs}
        return state

    def _verdict(self, engine: str, dtype: str) -> dict | None:
        verdict = self.state["verdicts"].get(f"{engine}-{dtype}")
        spec = ENGINES[engine]
        if (
            _well_formed(verdict)
            and verdict.get("engine_versions") == engine_versions(spec)
            and verdict.get("build") == _json(spec.build(dtype))
        ):
            return verdict
        return None

    def _needs_gating(self) -> bool:
        for engine, dtype in self.order:
            spec = ENGINES.get(engine)
            if spec is None or missing_requirement(spec):
                continue
            verdict = self._verdict(engine, dtype)
            if verdict is None:
                return True
            if verdict["passed"]:
                return False
        return False

    def _walk(self) -> Choice:
        for engine, dtype in self.order:
            name = f"{engine} {dtype}"
            spec = ENGINES.get(engine)
            problem = f"unknown engine {engine!r}" if spec is None else missing_requirement(spec)
            if problem:
                self._skip(name, problem)
                continue
            verdict = self._verdict(engine, dtype)
            backend = None
            if verdict is None:
                if not self.prepare:
                    self._skip(name, "not gated yet" + self.not_preparing)
                    continue
                verdict, backend = self._gate(spec, dtype)
            if not verdict["passed"]:
                self._skip(name, verdict["reason"])
                continue
            if backend is None:
                try:
                    if not self.prepare and not spec.is_prepared(self.model_dir, dtype):
                        self._skip(name, "gated, but not converted yet" + self.not_preparing)
                        continue
                    _prepare(spec, self.model_dir, dtype)  # cached: a lookup; deleted: converted again
                    backend = _load(engine, self.model_dir, "cpu", dtype)
                except Exception as exc:  # any engine failure: fall back, with the reason
                    self._skip(name, f"gated, but failed to load: {type(exc).__name__}: {exc}")
                    continue
            return self._chosen(backend, engine, dtype, f"gate passed ({_summary(verdict['gate'])}, "
                                f"checked {verdict['checked_at'][:10]})")
        backend = _load_reference(self.model_dir)
        return self._chosen(backend, *REFERENCE, "the exact reference")

    def _skip(self, name: str, why: str) -> None:
        logger.info("auto: %s skipped for %s: %s", name, self.model_dir.name, why)
        self.skipped.append(f"{name} ({why})")

    def _chosen(self, backend, engine: str, dtype: str, why: str) -> Choice:
        reason = f"{engine} {dtype}: {why}"
        if self.skipped:
            reason += "; faster candidates skipped: " + "; ".join(self.skipped)
        logger.info("auto: %s uses %s", self.model_dir.name, reason)
        return Choice(backend, engine, dtype, reason)

    def _reference(self) -> list[list[float]]:
        ref = self.state.get("reference")
        if not _is_reference(ref.get("logits") if isinstance(ref, dict) else None):  # none yet, or damaged
            start = time.perf_counter()
            backend = _load_reference(self.model_dir)
            logits = _score_gate_set(self.model_dir, backend, "torch fp32 (reference)")
            del backend
            ref = {"logits": logits, "seconds": round(time.perf_counter() - start, 1)}
            self.state["reference"] = ref
        return ref["logits"]

    def _gate(self, spec: Engine, dtype: str) -> tuple[dict, object]:
        """Prepare, load and gate one candidate; record and return its verdict (and the backend)."""
        from .gate import compare

        name = f"{spec.name} {dtype}"
        logger.warning(
            "auto: preparing %s for %s and checking its accuracy on the shipped gate set (one time)",
            name, self.model_dir.name,
        )
        verdict = {
            "engine_versions": engine_versions(spec), "build": _json(spec.build(dtype)), "checked_at": _now(),
            "gate": None,
        }
        backend, stage, start = None, "prepare", time.perf_counter()
        try:
            _prepare(spec, self.model_dir, dtype)
            verdict["prepare_s"] = round(time.perf_counter() - start, 1)
            stage = "load"
            backend = _load(spec.name, self.model_dir, "cpu", dtype)
            stage = "reference"
            reference = self._reference()
            stage, start = "gate", time.perf_counter()
            result = compare(reference, _score_gate_set(self.model_dir, backend, name))
            verdict["gate_s"] = round(time.perf_counter() - start, 1)
            verdict["gate"] = result.as_dict()
            verdict["passed"] = result.passed
            verdict["reason"] = ("gate passed: " if result.passed else "gate failed: ") + _summary(
                verdict["gate"]
            )
        except Exception as exc:  # conversion, loading or scoring failed: the candidate is out
            verdict["passed"] = False
            verdict["reason"] = f"{stage} failed: {type(exc).__name__}: {str(exc)[:300]}"
            backend = None
        runs = self.state.get("gate_runs")
        self.state["gate_runs"] = (runs if isinstance(runs, int) else 0) + 1
        self.state["verdicts"][f"{spec.name}-{dtype}"] = verdict
        _write(self.model_dir, self.state)
        level = logging.WARNING if not verdict["passed"] else logging.INFO
        logger.log(level, "auto: %s for %s: %s", name, self.model_dir.name, verdict["reason"])
        return verdict, (backend if verdict["passed"] else None)


def pick_backend(model_dir: str | Path, device: str | None, dtype: str) -> tuple[str, str]:
    """``(engine, dtype)`` that ``auto`` means for this model, device and dtype (the backend is loaded,
    and prepared and gated first if needed; see :func:`choose`)."""
    choice = choose(model_dir, device, dtype)
    return choice.engine, choice.dtype


if __name__ == "__main__":
    import sys

    sys.exit(_prepare_main(sys.argv[1:]))
