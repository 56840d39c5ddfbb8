"""``backend="auto"``: candidate order per CPU kind, the verdict cache (hit, miss, stale model, other CPU,
other engine version), fallbacks (preparation error, failed gate, engine not installed) with the reason
recorded, ``models build`` preparing ahead of time, and the shipped gate set.

Gating runs for real: the candidates are prepared, scored on the shipped gate set and compared with torch
fp32. The fast tests use the tiny BERT fixture and short candidate lists; the real model's runs are slow.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import replace

import pytest

from crossrank import Reranker
from crossrank.backends import auto
from crossrank.backends.auto import ENGINES, Engine, candidates, choose, read_verdicts, verdict_file
from crossrank.backends.gate import GATE_SET_FILE, gate_set

ONNX = importlib.util.find_spec("onnxruntime") is not None


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A private crossrank cache with preparation on (conftest turns it off for the other tests)."""
    monkeypatch.setenv("CROSSRANK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(auto.PREPARE_ENV, "1")
    return tmp_path / "home"


@pytest.fixture()
def model(tiny_bert_dir, tmp_path):
    """A private copy of the tiny BERT, so changing its weights touches no other test."""
    return shutil.copytree(tiny_bert_dir, tmp_path / "tiny-bert")


def test_candidate_order_follows_the_cpu():
    bf16_cpu = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16")
    assert candidates(bf16_cpu) == [
        ("openvino", "int8"), ("openvino", "bf16"), ("onnx", "int8"), ("torch", "bf16"),
        ("openvino", "fp32"), ("onnx", "fp32"),
    ]
    # AVX2-only: bf16 would be emulated (many times slower than fp32), so no bf16 candidate at all.
    assert candidates(("avx2", "fma")) == [
        ("openvino", "int8"), ("onnx", "int8"), ("openvino", "fp32"), ("onnx", "fp32"),
    ]
    # AMX: bf16's projections run on the tiles too; on a narrow model int8 is no faster (measured), so
    # bf16 leads; on a wide one (bge-reranker-v2-m3: 1024) int8's faster projections win.
    amx_cpu = (*bf16_cpu, "amx_tile", "amx_bf16", "amx_int8")
    narrow = [("openvino", "bf16"), ("openvino", "int8"), ("onnx", "int8")]
    assert candidates(amx_cpu, hidden_size=384)[:3] == narrow
    assert candidates(amx_cpu, hidden_size=1024) == candidates(bf16_cpu)
    assert candidates(bf16_cpu, "fp32") == [("openvino", "fp32"), ("onnx", "fp32")]
    assert all(c != ("torch", "fp32") for c in candidates(bf16_cpu))  # the fallback, never gated


def test_cpu_check_without_torch_agrees_with_torch():
    import torch

    assert auto.on_cpu(None) == (not torch.cuda.is_available())
    assert auto.on_cpu("cpu") and not auto.on_cpu("cuda")


def test_shipped_gate_set_is_permissive_english_and_chinese():
    lists = gate_set()
    assert GATE_SET_FILE.stat().st_size <= 150_000
    assert {g.lang for g in lists} == {"en", "zh"}
    assert sum(g.lang == "en" for g in lists) >= 30 and sum(g.lang == "zh" for g in lists) >= 30
    assert {g.licence for g in lists} <= {"Apache-2.0", "CC BY-SA 4.0", "CC BY-SA 3.0", "CC BY 4.0"}
    assert not any("wikiqa" in g.source.lower() for g in lists)  # its licence forbids shipping it
    assert all(5 <= len(g.candidates) <= 8 and g.query.strip() for g in lists)
    assert len({g.id for g in lists}) == len(lists)
    attribution = (GATE_SET_FILE.parent / "GATE_SET.md").read_text(encoding="utf-8")
    assert all(name in attribution for name in ("SelQA", "XQuAD", "DRCD", "MedQuAD", "CC BY-SA", "Apache"))
    # long passages too (int8 errors grow with length): a third of the English lists
    long_lists = [g for g in lists if g.lang == "en" and max(map(len, g.candidates)) > 800]
    assert len(long_lists) >= 10 and {"MedQuAD", "XQuAD en"} <= {g.source for g in long_lists}


@pytest.mark.skipif(not ONNX, reason="onnxruntime not installed")
def test_miss_gates_and_writes_then_hit_reuses_the_verdict(model, home):
    order = [("onnx", "fp32")]
    first = choose(model, "cpu", "auto", order=order)
    assert (first.engine, first.dtype) == ("onnx", "fp32") and first.backend.name == "onnx"
    assert "gate passed" in first.reason and "80 shipped gate lists" in first.reason
    path = verdict_file(model)
    state = read_verdicts(model)
    verdict = state["verdicts"]["onnx-fp32"]
    assert state["gate_runs"] == 1 and verdict["passed"] and verdict["gate"]["n_queries"] == len(gate_set())
    assert verdict["gate"]["max_abs_diff"] < 1e-3  # fp32 vs fp32: the same numbers
    assert state["reference"]["logits"] and verdict["engine_versions"]["onnxruntime"]
    mtime = path.stat().st_mtime_ns

    again = choose(model, "cpu", "auto", order=order)
    assert (again.engine, again.dtype) == ("onnx", "fp32")
    assert path.stat().st_mtime_ns == mtime and read_verdicts(model)["gate_runs"] == 1  # not gated again
    reranker = Reranker(str(model), backend=again.backend)
    assert reranker.info()["backend"] == "onnx"


@pytest.mark.skipif(not ONNX, reason="onnxruntime not installed")
def test_changed_weights_cpu_engine_version_or_recipe_gate_again(model, home, monkeypatch):
    order = [("onnx", "fp32")]
    choose(model, "cpu", "auto", order=order)
    assert read_verdicts(model)["gate_runs"] == 1

    weights = next(model.glob("*.safetensors"))  # rewritten weights: a new fingerprint
    weights.write_bytes(weights.read_bytes())
    choose(model, "cpu", "auto", order=order)
    state = read_verdicts(model)
    assert state["gate_runs"] == 2 and state["key"]["model"]["weights"][weights.name]["mtime_ns"] == (
        weights.stat().st_mtime_ns
    )

    state["key"]["cpu"] = ["avx2", "fma"]  # a verdict file from a CPU with other features
    verdict_file(model).write_text(json.dumps(state), encoding="utf-8")
    choose(model, "cpu", "auto", order=order)
    state = read_verdicts(model)
    assert state["gate_runs"] == 3 and state["key"]["cpu"] == list(auto.cpu_features())

    state["verdicts"]["onnx-fp32"]["engine_versions"]["onnxruntime"] = "0.0.1"  # another engine version
    verdict_file(model).write_text(json.dumps(state), encoding="utf-8")
    choose(model, "cpu", "auto", order=order)
    assert read_verdicts(model)["gate_runs"] == 4

    # another build recipe (as a changed OpenVINO int8 recipe or calibration set): gated again, once
    monkeypatch.setitem(ENGINES, "onnx", replace(ENGINES["onnx"], build=lambda dtype: {"recipe": (2, dtype)}))
    choose(model, "cpu", "auto", order=order)
    choose(model, "cpu", "auto", order=order)
    state = read_verdicts(model)
    assert state["gate_runs"] == 5 and state["verdicts"]["onnx-fp32"]["build"] == {"recipe": [2, "fp32"]}


@pytest.mark.skipif(not ONNX, reason="onnxruntime not installed")
def test_a_damaged_verdict_file_is_gated_again_not_a_crash(model, home):
    order = [("onnx", "fp32")]
    choose(model, "cpu", "auto", order=order)
    good = read_verdicts(model)
    verdict = good["verdicts"]["onnx-fp32"]
    damaged = [
        None,  # valid JSON, not an object
        [],
        {**good, "verdicts": "x"},
        {**good, "verdicts": {"onnx-fp32": {k: v for k, v in verdict.items() if k != "passed"}}},
        {**good, "verdicts": {"onnx-fp32": {**verdict, "gate": None}}},
        {**good, "gate_runs": "x"},  # and the next gate has a cut reference: scored again, not "failed"
        {**good, "verdicts": {}, "reference": {"logits": good["reference"]["logits"][:3]}},
    ]
    for state in damaged:
        verdict_file(model).write_text(json.dumps(state), encoding="utf-8")
        assert choose(model, "cpu", "auto", order=order, prepare=False).engine in ("onnx", "torch")
        choice = choose(model, "cpu", "auto", order=order)
        assert (choice.engine, choice.dtype) == ("onnx", "fp32") and "gate passed" in choice.reason, state
    assert read_verdicts(model)["reference"]["logits"] == good["reference"]["logits"]


def test_verdict_key_covers_the_gate_set_and_the_int8_recipe(model):
    key = auto._model_key(model, ("avx2",))
    assert key["gate_set_sha256"] == hashlib.sha256(GATE_SET_FILE.read_bytes()).hexdigest()
    if importlib.util.find_spec("openvino") is not None:
        from crossrank.backends.openvino_backend import INT8_RECIPE

        assert ENGINES["openvino"].build("int8")["recipe"] == INT8_RECIPE.as_dict()
        assert ENGINES["openvino"].build("bf16") is None


@pytest.mark.skipif(not ONNX, reason="onnxruntime not installed")
def test_failures_fall_back_with_their_reasons(model, home, monkeypatch):
    # Not installed: an engine whose module does not import (the one stand-in: a candidate-list entry).
    monkeypatch.setitem(ENGINES, "ghost", Engine("ghost", ("crossrank_ghost_engine",), (), lambda d, t: None))
    # Preparation error: ONNX Runtime has no fp16 export; the exporter refuses it.
    order = [("ghost", "int8"), ("onnx", "fp16"), ("onnx", "fp32")]
    choice = choose(model, "cpu", "auto", order=order)
    assert (choice.engine, choice.dtype) == ("onnx", "fp32")
    assert "ghost int8 (crossrank_ghost_engine is not installed" in choice.reason
    assert "onnx fp16 (prepare failed: BackendError" in choice.reason
    verdicts = read_verdicts(model)["verdicts"]
    assert "ghost-int8" not in verdicts  # not installed is not a verdict: installing it later is tried
    assert verdicts["onnx-fp16"]["passed"] is False

    # Every candidate out: torch fp32, the exact reference, with all the reasons.
    last = choose(model, "cpu", "auto", order=[("ghost", "int8"), ("onnx", "fp16")])
    assert (last.engine, last.dtype, last.backend.name) == ("torch", "fp32", "torch")
    assert last.reason.startswith("torch fp32: the exact reference; faster candidates skipped: ghost int8")
    assert read_verdicts(model)["gate_runs"] == 2  # the failed verdict was cached, not re-run


@pytest.mark.skipif(not ONNX, reason="onnxruntime not installed")
def test_without_preparation_only_cached_verdicts_count(model, home, monkeypatch):
    monkeypatch.setenv(auto.PREPARE_ENV, "0")
    choice = choose(model, "cpu", "auto", order=[("onnx", "fp32")])
    assert (choice.engine, choice.dtype) == ("torch", "fp32") and "not gated yet" in choice.reason
    assert not verdict_file(model).exists()


@pytest.mark.skipif(not ONNX, reason="onnxruntime not installed")
def test_without_preparation_a_deleted_export_is_not_converted_at_load(model, home, monkeypatch):
    order = [("onnx", "fp32")]
    export_dir = choose(model, "cpu", "auto", order=order).backend.export_dir
    shutil.rmtree(export_dir)  # the verdict stays: passed
    monkeypatch.setenv(auto.PREPARE_ENV, "0")
    choice = choose(model, "cpu", "auto", order=order)
    assert (choice.engine, choice.dtype) == ("torch", "fp32") and not export_dir.exists()
    assert "onnx fp32 (gated, but not converted yet (CROSSRANK_AUTO_PREPARE=0))" in choice.reason
    monkeypatch.setenv(auto.PREPARE_ENV, "1")
    assert choose(model, "cpu", "auto", order=order).engine == "onnx" and export_dir.is_dir()


def test_models_build_no_prepare_leaves_a_local_folder_alone(model, home, capsys):
    from crossrank.cli.main import main

    assert main(["models", "build", str(model), "--no-prepare"]) == 0
    assert capsys.readouterr().out == f"{model}: {model.resolve()}\n"
    assert not verdict_file(model).exists() and not (home / "openvino").exists()


def test_models_build_of_a_folder_with_an_unwritable_cache_is_an_error(model, tmp_path, monkeypatch, capsys):
    """It printed 'prepared in 8s' and exited 0, every candidate 'not gated yet: Not a directory'."""
    from crossrank.cli.main import main

    (tmp_path / "blocker").write_text("a file where the cache should be", encoding="utf-8")
    monkeypatch.setenv("CROSSRANK_HOME", str(tmp_path / "blocker" / "home"))
    monkeypatch.setenv(auto.PREPARE_ENV, "1")
    assert main(["models", "build", str(model)]) == 2
    captured = capsys.readouterr()
    assert "prepared" not in captured.out and "set CROSSRANK_HOME to a writable folder" in captured.err


def test_explicit_choices_are_not_gated(model, home):
    reranker = Reranker(str(model), backend="torch", dtype="fp32")
    assert reranker.info()["backend_reason"] == "backend='torch' requested"
    bf16 = Reranker(str(model), dtype="bf16", device="cpu")  # auto with an explicit dtype: torch, as asked
    assert (bf16.backend.name, bf16.backend.dtype) == ("torch", "bf16")
    assert not verdict_file(model).exists()


def test_an_unknown_dtype_names_what_auto_accepts(model, home):
    from crossrank import InvalidInputError

    with pytest.raises(InvalidInputError, match="one of auto, fp32, bf16, fp16, int8, got 'int4'"):
        Reranker(str(model), dtype="int4", device="cpu")


def test_reranker_info_shows_backend_and_reason():
    info = Reranker("embedded").info()  # cached verdicts only here (conftest): what the last build chose
    assert info["backend"] in ("torch", "onnx", "openvino") and info["backend_reason"]
    assert info["backend_reason"].startswith(f"{info['backend']} {info['dtype']}")


@pytest.mark.slow
@pytest.mark.skipif(not ONNX, reason="onnxruntime not installed")
def test_real_int8_gate_failure_falls_back(monkeypatch):
    """The trained embedded model's dynamic ONNX int8 fails the gate (ρ̄ ≈ 0.91): auto must say so and
    take the next candidate (real verdicts, kept in the cache for the real model)."""
    from crossrank.models.build import ensure_model

    monkeypatch.setenv(auto.PREPARE_ENV, "1")
    embedded = ensure_model("embedded")
    choice = choose(embedded, "cpu", "auto", order=[("onnx", "int8"), ("onnx", "fp32")])
    assert (choice.engine, choice.dtype) == ("onnx", "fp32")
    assert "onnx int8 (gate failed: ρ̄ 0.9" in choice.reason


@pytest.mark.slow
def test_models_build_prepares_the_fast_backend(capsys, monkeypatch):
    from crossrank.cli.main import main
    from crossrank.models.build import ensure_model

    monkeypatch.setenv(auto.PREPARE_ENV, "1")
    assert main(["models", "build", "embedded"]) == 0
    out = capsys.readouterr().out
    assert "embedded: CPU backend" in out
    state = read_verdicts(ensure_model("embedded"))
    assert state["verdicts"] and state["reference"]["logits"]
    # the first candidate that passed is what auto now loads without preparing anything
    choice = choose(ensure_model("embedded"), "cpu", "auto", prepare=False)
    assert f"CPU backend {choice.engine} {choice.dtype}" in out
    flag = choose(ensure_model("embedded"), "cpu", "fp32", prepare=False)  # FlagReranker's, also ready
    assert f"CPU fp32 backend (FlagReranker) {flag.engine} fp32" in out and flag.engine != "torch"
