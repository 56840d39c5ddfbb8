"""OpenVINO backend on the tiny fixtures (parity with torch, dynamic shapes, cache reuse, stale detection,
``crossrank export --engine openvino``) and the int8 gate on the trained embedded model.

Tolerances: fp32 IR vs torch fp32: max |logit difference| <= 1e-4 (measured ~3e-6 on the embedded model;
the real-model exactness gate is 1e-3). bf16 (native-bf16 CPUs): rank-based, as the gate, on the trained
embedded model (the tiny random models' logits are all ~1e-3 apart from noise, so there only |diff| <= 0.05
is checked; bf16 keeps 8 mantissa bits). int8: the gate (mean per-query Spearman >= 0.99, same top-1 on
>= 95%) on the shipped gate set and the embedded model; on the tiny model it only has to run, finite.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from crossrank import BackendError, InvalidInputError, Reranker  # first: it keeps OpenVINO's telemetry off

pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install 'crossrank[openvino]')")

from crossrank.backends import auto  # noqa: E402
from crossrank.backends import openvino_backend as ovb  # noqa: E402
from crossrank.backends.gate import compare  # noqa: E402
from crossrank.backends.openvino_backend import OpenVINOBackend, ensure_ir, read_manifest  # noqa: E402

PAIRS = [
    ("what is the capital of france", "Paris is the capital of France."),
    ("what is the capital of france", "Berlin is a large city in Germany. " * 60),  # windowed
    ("green tea", "Tea"),
    ("how do plants make food", "Photosynthesis turns light, water and carbon dioxide into sugar. " * 3),
    ("a", "b c d e f g h i j k l m n o p"),
    ("北京是哪个国家的首都", "北京是中华人民共和国的首都。"),
]
EXACT = 1e-4  # fp32 IR vs torch fp32 on the tiny models


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """An empty crossrank cache, so cache tests see only their own conversions."""
    monkeypatch.setenv("CROSSRANK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def xlmr_ir(tiny_xlmr_dir, tmp_path_factory):
    return ensure_ir(tiny_xlmr_dir, "fp32", out=tmp_path_factory.mktemp("xlmr-ov") / "fp32", progress=False)


@pytest.fixture(scope="module")
def bert_ir(tiny_bert_dir, tmp_path_factory):
    return ensure_ir(tiny_bert_dir, "fp32", out=tmp_path_factory.mktemp("bert-ov") / "fp32", progress=False)


def torch_scores(model_dir):
    return Reranker(model_dir, backend="torch", dtype="fp32").compute_score(PAIRS)


@pytest.mark.parametrize("batch_size", [1, 2, 16])  # batch and sequence lengths differ per call
def test_xlmr_fp32_matches_torch_at_any_batch_shape(tiny_xlmr_dir, xlmr_ir, batch_size):
    reranker = Reranker(xlmr_ir, backend="openvino", batch_size=batch_size)
    assert reranker.backend.name == "openvino" and reranker.backend.dtype == "fp32"
    assert reranker.backend.precision == "f32"  # not the CPU plugin's own bf16 default
    assert np.abs(np.subtract(reranker.compute_score(PAIRS), torch_scores(tiny_xlmr_dir))).max() <= EXACT


def test_bert_with_token_types_matches_torch(tiny_bert_dir, bert_ir):
    assert read_manifest(bert_ir)["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    scores = Reranker(bert_ir, backend="openvino", batch_size=2).compute_score(PAIRS)
    assert np.abs(np.subtract(scores, torch_scores(tiny_bert_dir))).max() <= EXACT


def test_bf16_ranks_like_fp32(tiny_xlmr_dir, xlmr_ir):
    scores = Reranker(xlmr_ir, backend=OpenVINOBackend(xlmr_ir, dtype="bf16")).compute_score(PAIRS)
    assert np.abs(np.subtract(scores, torch_scores(tiny_xlmr_dir))).max() <= 0.05


def test_a_process_with_fewer_threads_than_cores_does_not_pin_them(bert_ir):
    """Two one-thread replicas/actors would otherwise both be pinned to core 0 (no scaling, measured)."""
    from crossrank.backends.onnx_backend import usable_cores

    cores = usable_cores()
    whole = OpenVINOBackend(bert_ir, threads=cores)
    assert whole.compiled.get_property("ENABLE_CPU_PINNING") is True
    if cores > 1:
        part = OpenVINOBackend(bert_ir, threads=1)
        assert part.compiled.get_property("ENABLE_CPU_PINNING") is False
        assert part.compiled.get_property("INFERENCE_NUM_THREADS") == 1


def test_reranker_backend_openvino_ranks_like_torch(tiny_bert_dir, home):
    docs = [d for _, d in PAIRS]
    ov = Reranker(tiny_bert_dir, backend="openvino").rerank("capital of france", docs)
    ref = Reranker(tiny_bert_dir, backend="torch").rerank("capital of france", docs)
    assert [r.index for r in ov] == [r.index for r in ref]
    assert ov[0].score == pytest.approx(ref[0].score, abs=1e-4)


def test_cache_is_reused_and_stale_source_is_converted_again(tiny_bert_dir, tmp_path, home, monkeypatch):
    source = shutil.copytree(tiny_bert_dir, tmp_path / "model")
    first = ovb.prepare_openvino(source, "fp32", progress=False)
    assert first.parent == home / "openvino" and (first / "model.xml").is_file()
    assert ovb.prepare_openvino(source, "bf16", progress=False) == first  # bf16 runs the fp32 IR
    stamp = (first / "model.xml").stat().st_mtime_ns

    def no_convert(*args, **kwargs):
        raise AssertionError("a current IR was converted again")

    monkeypatch.setattr(ovb, "convert", no_convert)
    assert ovb.prepare_openvino(source, "fp32", progress=False) == first
    assert OpenVINOBackend(source, dtype="fp32").ir_dir == first
    assert (first / "model.xml").stat().st_mtime_ns == stamp
    monkeypatch.undo()
    monkeypatch.setenv("CROSSRANK_HOME", str(home))

    from safetensors.torch import load_file, save_file

    weights = source / "model.safetensors"
    tensors = load_file(weights)
    tensors["classifier.bias"] = tensors["classifier.bias"] + 1.0  # changed weights: different logits
    save_file(tensors, weights, metadata={"format": "pt"})
    assert ovb.cached_ir(source, "fp32") is None  # the old IR is never used
    backend = OpenVINOBackend(source, dtype="fp32", progress=False)
    assert backend.ir_dir != first and not first.exists()  # converted again; the stale IR pruned
    scores = Reranker(source, backend=backend).compute_score(PAIRS)
    assert np.abs(np.subtract(scores, torch_scores(source))).max() <= EXACT


def test_an_ir_left_aside_by_a_killed_swap_is_put_back_not_converted_again(
    xlmr_ir, tiny_xlmr_dir, monkeypatch
):
    """A conversion killed between swap_in_folder's two renames leaves the complete old IR in
    .old-<name>.*/<name> and no folder in its place: it is restored (the ONNX export already did this;
    the IR was converted again and the old copy stayed on disk), and other leftovers are removed."""
    out = xlmr_ir.parent / "swapped"
    shutil.copytree(xlmr_ir, out)
    aside = out.parent / ".old-swapped.k1ll3d"
    aside.mkdir()
    out.rename(aside / "swapped")
    (out.parent / ".tmp-swapped.123").mkdir()

    def no_convert(*args, **kwargs):
        raise AssertionError("a complete IR left aside was converted again")

    monkeypatch.setattr(ovb, "convert", no_convert)
    assert ensure_ir(tiny_xlmr_dir, "fp32", out=out, progress=False) == out
    assert (out / "model.xml").is_file()
    assert not aside.exists() and not (out.parent / ".tmp-swapped.123").exists()


def test_fingerprint_covers_engine_dtype_and_recipe(tiny_bert_dir):
    fp32 = ovb.ir_fingerprint(tiny_bert_dir, "fp32")
    int8 = ovb.ir_fingerprint(tiny_bert_dir, "int8")
    assert {"format", "crossrank", "openvino", "torch", "transformers", "ir", "source"} <= set(fp32)
    assert fp32["openvino"] == ovb.openvino_version() != ""
    assert ovb.cache_key(fp32) == ovb.cache_key(ovb.ir_fingerprint(tiny_bert_dir, "bf16"))
    assert ovb.cache_key(fp32) != ovb.cache_key(int8)
    assert {"nncf", "recipe", "calibration_sha256"} <= set(int8["quantization"])
    other = ovb.Int8Recipe(smooth_quant_alpha=0.5)
    assert ovb.cache_key(int8) != ovb.cache_key(ovb.ir_fingerprint(tiny_bert_dir, "int8", other))
    # auto's verdict key for the int8 candidate: the recipe and calibration data, not the model
    assert ovb.build_recipe("fp32") is None and ovb.build_recipe("bf16") is None
    assert ovb.build_recipe("int8")["recipe"] == int8["quantization"]["recipe"]
    assert ovb.build_recipe("int8") != ovb.build_recipe("int8", other)


def test_stale_or_damaged_export_folder_is_refused(xlmr_ir, tmp_path):
    copy = shutil.copytree(xlmr_ir, tmp_path / "old")
    manifest = read_manifest(copy)
    manifest["fingerprint"]["openvino"] = "2020.1.0"
    ovb.write_manifest(copy, manifest)
    with pytest.raises(BackendError, match="stale.*crossrank export .* --engine openvino"):
        OpenVINOBackend(copy)
    edited = shutil.copytree(xlmr_ir, tmp_path / "edited")
    (edited / "config.json").write_text((edited / "config.json").read_text().replace("}", ', "x": 1}', 1))
    with pytest.raises(BackendError, match="config.json differs"):
        OpenVINOBackend(edited)
    with pytest.raises(InvalidInputError, match="fp32 OpenVINO IR"):
        OpenVINOBackend(xlmr_ir, dtype="int8")


def test_bad_options_are_refused(tiny_xlmr_dir, xlmr_ir, tmp_path):
    with pytest.raises(InvalidInputError, match="CPU"):
        OpenVINOBackend(xlmr_ir, device="cuda")
    with pytest.raises(InvalidInputError, match="fp32, bf16, int8"):
        OpenVINOBackend(xlmr_ir, dtype="fp16")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(BackendError, match="not a crossrank OpenVINO IR"):
        ensure_ir(tiny_xlmr_dir, "fp32", out=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").is_file()


def test_int8_ir_of_tiny_model_runs_and_is_reused(tiny_xlmr_dir, home, monkeypatch):
    backend = OpenVINOBackend(tiny_xlmr_dir, dtype="int8", progress=False)
    manifest = read_manifest(backend.ir_dir)
    assert manifest["dtype"] == "int8" and manifest["fingerprint"]["quantization"]["recipe"]["preset"]

    def no_quantize(*args, **kwargs):
        raise AssertionError("a current int8 IR was quantised again")

    monkeypatch.setattr(ovb, "quantize", no_quantize)
    assert ovb.cached_ir(tiny_xlmr_dir, "int8") == backend.ir_dir  # the manifest's JSON fingerprint matches
    assert OpenVINOBackend(tiny_xlmr_dir, dtype="int8").ir_dir == backend.ir_dir
    scores = Reranker(tiny_xlmr_dir, backend=backend).compute_score(PAIRS)
    assert np.isfinite(scores).all()
    assert np.abs(np.subtract(scores, torch_scores(tiny_xlmr_dir))).max() <= 0.05


def test_a_cached_ir_runs_without_torch(tiny_bert_dir, home):
    """Loading and running a cached IR imports neither torch nor transformers (~230 MB of RSS), and the
    tokenizer is loaded once (no private copy of it)."""
    import subprocess

    ensure_ir(tiny_bert_dir, "fp32", progress=False)
    code = (
        "import sys; from crossrank import Reranker; "
        f"r = Reranker({str(tiny_bert_dir)!r}, backend='openvino', dtype='fp32'); "
        "r.compute_score([('a', 'b c')]); "
        + (  # FlagReranker asks for CUDA without torch where no GPU device exists
            "from crossrank import FlagReranker; "
            f"FlagReranker({str(tiny_bert_dir)!r}, backend='openvino').compute_score([('a', 'b c')]); "
            if not auto._gpu_device_nodes()
            else ""
        )
        + "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_nothing_phones_home():
    """The converter's and NNCF's telemetry module is kept from loading (they fall back to no-op stubs)."""
    assert ovb.openvino_available()
    assert sys.modules.get("openvino_telemetry", "absent") in (None, "absent")


def test_export_command_engine_openvino(tiny_bert_dir, tmp_path, capsys):
    from crossrank.cli.main import main

    out = tmp_path / "cli"
    assert main(["export", str(tiny_bert_dir), "--engine", "openvino", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["engine"] == "openvino" and summary["dtype"] == "fp32" and summary["export"] == str(out)
    scores = Reranker(out, backend="openvino").compute_score(PAIRS)
    assert np.abs(np.subtract(scores, torch_scores(tiny_bert_dir))).max() <= EXACT
    assert main(["export", str(tiny_bert_dir), "--engine", "openvino", "--opset", "17"]) != 0
    assert "--opset" in capsys.readouterr().err


@pytest.fixture(scope="module")
def embedded_gate():
    """The trained embedded model, the shipped gate set and torch fp32's logits on it."""
    from crossrank.backends.gate import gate_set, score_lists
    from crossrank.models.build import ensure_model

    embedded = ensure_model("embedded")
    lists = [(g.query, list(g.candidates)) for g in gate_set()]
    return embedded, lists, score_lists(Reranker(embedded, backend="torch", dtype="fp32"), lists)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["int8", "bf16", "fp32"])
def test_gate_on_the_embedded_model(embedded_gate, dtype):
    """bf16 keeps the ranking of the trained embedded model on the shipped gate set and fp32 is exact (1e-3,
    the real-model exactness gate); the shipped int8 recipe keeps most of it but sits at the gate's edge on
    the gate set's long passages, on one side or the other by CPU (ρ̄ 0.9899 measured with AVX-512 VNNI,
    0.9900 with AMX; 0.98 on long ArguAna arguments), which is why auto tries bf16 first where it is as
    fast (AMX) and the gate, not this test, decides elsewhere."""
    from crossrank.backends.gate import MAX_ABS_FP32, score_lists

    embedded, lists, reference = embedded_gate
    candidate = score_lists(Reranker(embedded, backend="openvino", dtype=dtype), lists)
    result = compare(reference, candidate, max_abs=MAX_ABS_FP32 if dtype == "fp32" else None)
    if dtype == "int8":
        assert 0.96 <= result.spearman_mean < 0.995 and result.top1_agreement >= 0.9, result
    else:
        assert result.passed, result


def test_truncated_cached_ir_is_converted_again_and_a_truncated_export_refused(tiny_bert_dir, tmp_path, home):
    source = shutil.copytree(tiny_bert_dir, tmp_path / "model")
    first = ensure_ir(source, "fp32", progress=False)
    size = (first / "model.bin").stat().st_size
    assert read_manifest(first)["files"]["model.bin"] == size
    with (first / "model.bin").open("r+b") as fh:
        fh.truncate(size // 2)
    assert ovb.cached_ir(source, "fp32") is None  # never loaded as it is
    backend = OpenVINOBackend(source, dtype="fp32", progress=False)  # converted again
    assert backend.ir_dir == first and (first / "model.bin").stat().st_size == size

    out = shutil.copytree(first, tmp_path / "exp")
    with (out / "model.bin").open("r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(BackendError, match="stale or damaged.*model.bin is"):
        OpenVINOBackend(out)
    assert ensure_ir(source, "fp32", out=out, progress=False) == out  # `crossrank export --out` rebuilds it
    assert (out / "model.bin").stat().st_size == size


def test_an_openvino_folder_run_with_onnx_is_a_backend_error(tiny_xlmr_dir, xlmr_ir, tmp_path, capsys, home):
    pytest.importorskip("onnxruntime")
    from crossrank.backends.onnx_backend import OnnxBackend
    from crossrank.cli.main import main

    with pytest.raises(BackendError, match="holds an OpenVINO IR"):  # its model.bin is no torch weights
        OnnxBackend(xlmr_ir)
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    assert main(["export", str(tiny_xlmr_dir), "--engine", "openvino", "--out", str(afile)]) != 0
    assert "is a file, not a folder" in capsys.readouterr().err
