"""ONNX export on the tiny fixtures: parity with torch, dynamic shapes, cache reuse, stale detection,
an export folder passed as the model and the ``crossrank export`` command (``auto``: test_auto.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from crossrank import BackendError, InvalidInputError, Reranker  # noqa: E402
from crossrank.backends import onnx_export  # noqa: E402
from crossrank.backends.onnx_backend import OnnxBackend  # noqa: E402
from crossrank.backends.onnx_export import MANIFEST, ensure_export, read_manifest, write_manifest  # noqa: E402

# Varied lengths (one long enough to be windowed) so batches are padded and shapes differ per batch.
PAIRS = [
    ("what is the capital of france", "Paris is the capital of France."),
    ("what is the capital of france", "Berlin is a large city in Germany. " * 60),
    ("green tea", "Tea"),
    ("how do plants make food", "Photosynthesis turns light, water and carbon dioxide into sugar. " * 3),
    ("a", "b c d e f g h i j k l m n o p"),
]
EXACT = (
    1e-4  # fp32 ONNX vs fp32 torch on the tiny models (the real-model gate is 1e-3, in test_accuracy_gates)
)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """An empty crossrank cache, so cache tests see only their own exports."""
    monkeypatch.setenv("CROSSRANK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def xlmr_fp32_out(tiny_xlmr_dir, tmp_path_factory):
    return ensure_export(tiny_xlmr_dir, "fp32", out=tmp_path_factory.mktemp("xlmr-onnx") / "fp32")


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_xlmr_fp32_export_matches_torch_at_any_batch_shape(tiny_xlmr_dir, xlmr_fp32_out, batch_size):
    torch_scores = Reranker(tiny_xlmr_dir, backend="torch", dtype="fp32").compute_score(PAIRS)
    onnx = Reranker(xlmr_fp32_out, backend="onnx", batch_size=batch_size)
    assert onnx.backend.name == "onnx" and onnx.backend.dtype == "fp32"
    assert np.abs(np.subtract(onnx.compute_score(PAIRS), torch_scores)).max() <= EXACT


def test_bert_export_with_token_types_matches_torch(tiny_bert_dir, tmp_path):
    out = ensure_export(tiny_bert_dir, "fp32", out=tmp_path / "bert")
    assert read_manifest(out)["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert read_manifest(out)["fused_operators"].get("Attention") == 2
    onnx_scores = Reranker(out, backend="onnx", batch_size=2).compute_score(PAIRS)
    torch_scores = Reranker(tiny_bert_dir, backend="torch", dtype="fp32").compute_score(PAIRS)
    assert np.abs(np.subtract(onnx_scores, torch_scores)).max() <= EXACT


def test_export_folder_is_a_model_folder_and_auto_uses_onnx(xlmr_fp32_out):
    for name in ("config.json", "tokenizer.json", MANIFEST, "model.onnx"):
        assert (xlmr_fp32_out / name).is_file()
    reranker = Reranker(xlmr_fp32_out)  # backend="auto" on an export folder
    assert reranker.backend.name == "onnx"
    with pytest.raises(InvalidInputError, match="fp32 export"):
        OnnxBackend(xlmr_fp32_out, dtype="int8")
    with pytest.raises(InvalidInputError, match="torch"):
        OnnxBackend(xlmr_fp32_out, dtype="bf16")


def test_int8_export_runs_and_ranks_like_fp32(tiny_xlmr_dir, home):
    backend = OnnxBackend(tiny_xlmr_dir, dtype="int8")
    assert backend.export_dir.parent == home / "onnx"
    assert read_manifest(backend.export_dir)["fingerprint"]["quantization"] == "dynamic-int8-per-channel"
    scores = Reranker(tiny_xlmr_dir, backend=backend).compute_score(PAIRS)
    assert np.isfinite(scores).all()
    # int8 derives from the cached fp32 export, which is reused rather than traced again
    assert onnx_export.cached_export(tiny_xlmr_dir, "fp32") is not None


def test_cache_is_reused_and_stale_source_is_re_exported(tiny_bert_dir, tmp_path, home, monkeypatch):
    source = shutil.copytree(tiny_bert_dir, tmp_path / "model")
    first = ensure_export(source, "fp32")
    stamp = (first / "model.onnx").stat().st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("a current export was exported again")

    monkeypatch.setattr(onnx_export, "_torch_export", no_export)
    assert ensure_export(source, "fp32") == first
    assert (first / "model.onnx").stat().st_mtime_ns == stamp
    assert OnnxBackend(source, dtype="fp32").export_dir == first
    monkeypatch.undo()
    monkeypatch.setenv("CROSSRANK_HOME", str(home))

    config = json.loads((source / "config.json").read_text())
    config["classifier_dropout"] = 0.0  # a config change, same weights
    (source / "config.json").write_text(json.dumps(config))
    assert onnx_export.cached_export(source, "fp32") is None  # the old export is not used
    second = ensure_export(source, "fp32")
    assert second != first and not first.exists()  # stale export of the same source pruned

    weights = source / "model.safetensors"
    weights.write_bytes(weights.read_bytes())  # rewritten weights: new mtime
    assert onnx_export.cached_export(source, "fp32") is None


def test_cached_export_with_a_cut_manifest_is_exported_again(tiny_bert_dir, home):
    first = ensure_export(tiny_bert_dir, "fp32")
    manifest = first / MANIFEST
    manifest.write_text(manifest.read_text()[:100])  # cut mid-write (or damaged on disk)
    assert onnx_export.cached_export(tiny_bert_dir, "fp32") is None  # never used as it is
    backend = OnnxBackend(tiny_bert_dir, dtype="fp32")  # the cache heals itself: no "--out" advice
    assert backend.export_dir == first and read_manifest(first)["dtype"] == "fp32"
    # (a user's --out folder that holds no export is still refused: test_out_folder_that_is_not_...)


def test_fingerprint_covers_exporter_settings(tiny_bert_dir, home):
    fp32 = onnx_export.export_fingerprint(tiny_bert_dir, "fp32")
    assert onnx_export.cache_key(fp32) != onnx_export.cache_key(
        onnx_export.export_fingerprint(tiny_bert_dir, "int8")
    )
    assert onnx_export.cache_key(fp32) != onnx_export.cache_key(
        onnx_export.export_fingerprint(tiny_bert_dir, "fp32", opset=18)
    )
    assert {"crossrank", "opset", "quantization", "onnxruntime", "format", "source"} <= set(fp32)


def test_stale_export_folder_is_refused(xlmr_fp32_out, tmp_path):
    copy = shutil.copytree(xlmr_fp32_out, tmp_path / "old")
    manifest = read_manifest(copy)
    manifest["fingerprint"]["crossrank"] = "0.0.1"
    write_manifest(copy, manifest)
    with pytest.raises(BackendError, match="stale.*crossrank export"):
        OnnxBackend(copy)
    copy2 = shutil.copytree(xlmr_fp32_out, tmp_path / "edited")
    (copy2 / "config.json").write_text((copy2 / "config.json").read_text().replace("}", ', "x": 1}', 1))
    with pytest.raises(BackendError, match="config.json differs"):
        OnnxBackend(copy2)


def test_out_folder_that_is_not_an_export_is_refused(tiny_bert_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(BackendError, match="not a crossrank ONNX export"):
        ensure_export(tiny_bert_dir, "fp32", out=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").is_file()


def test_export_command(tiny_bert_dir, tmp_path, capsys, shared_data, home):
    from crossrank.cli.main import main

    out = tmp_path / "cli"
    code = main(
        [
            "export",
            str(tiny_bert_dir),
            "--out",
            str(out),
            "--int8",
            "--gate",
            str(shared_data / "wikiqa" / "WikiQA-dev.tsv"),
            "--gate-questions",
            "3",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["dtype"] == "int8" and summary["export"] == str(out)
    gate = read_manifest(out)["gate"]
    assert gate["n_queries"] == 3 and code == (0 if gate["passed"] else 1)
    if summary["torch_bf16_gate"] is not None:  # CPUs with native bf16 also gate torch bf16 for auto
        assert list((home / "gates").glob("*-torch-bf16.json"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("garbage\n", "no column QuestionID"),
        ("a\tb\tc\n1\t2\t3\n", "no column QuestionID"),
        ("QuestionID\tQuestion\tSentenceID\tSentence\tLabel\nQ1\tq\tS1\n", "fewer columns than the header"),
        ("QuestionID\tQuestion\tSentenceID\tSentence\tLabel\nQ1\tq\tS1\ts\t1\n", "no question with 3"),
    ],
)
def test_export_refuses_a_bad_gate_file_before_exporting(tiny_bert_dir, tmp_path, capsys, text, message):
    from crossrank.cli.main import main

    gate = tmp_path / "gate.tsv"
    gate.write_text(text, encoding="utf-8")
    out = tmp_path / "never"
    assert main(["export", str(tiny_bert_dir), "--out", str(out), "--gate", str(gate)]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_truncated_cached_export_is_rebuilt_and_a_truncated_export_folder_refused(
    tiny_bert_dir, tmp_path, home
):
    source = shutil.copytree(tiny_bert_dir, tmp_path / "model")
    first = ensure_export(source, "fp32")
    assert read_manifest(first)["files"]["model.onnx"] == (first / "model.onnx").stat().st_size
    with (first / "model.onnx").open("r+b") as fh:
        fh.truncate(1000)
    assert onnx_export.cached_export(source, "fp32") is None  # never loaded as it is
    backend = OnnxBackend(source, dtype="fp32")  # the cache exports it again
    assert backend.export_dir == first and (first / "model.onnx").stat().st_size > 1000

    out = shutil.copytree(first, tmp_path / "exp")
    with (out / "model.onnx").open("r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(BackendError, match="stale or damaged.*model.onnx is 1000 bytes"):
        OnnxBackend(out)
    assert ensure_export(source, "fp32", out=out) == out  # `crossrank export --out` rebuilds it
    assert Reranker(out, backend="onnx").compute_score(PAIRS[:1])

    manifest = read_manifest(out)
    del manifest["files"]  # a manifest written before sizes were recorded: rebuilt once
    write_manifest(out, manifest)
    assert not onnx_export.is_current(out, manifest["fingerprint"])


def test_an_edited_tokenizer_makes_the_export_stale(tiny_xlmr_dir, xlmr_fp32_out, tmp_path, home):
    source = shutil.copytree(tiny_xlmr_dir, tmp_path / "model")
    out = ensure_export(source, "fp32", out=tmp_path / "exp")
    from tokenizers import Tokenizer  # what crossrank tokenizes with (tokenization.PairTokenizer)

    def ids(folder):
        return Tokenizer.from_file(str(folder / "tokenizer.json")).encode("Paris is in France.").ids

    before = ids(source)
    tokenizer = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    normalizers = [tokenizer["normalizer"]] if tokenizer.get("normalizer") else []
    tokenizer["normalizer"] = {"type": "Sequence", "normalizers": [*normalizers, {"type": "Lowercase"}]}
    (source / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    assert ids(source) != before  # the edit changes what the model reads

    assert onnx_export.cached_export(source, "fp32") is None
    assert ensure_export(source, "fp32", out=out) == out  # exported again, with the new tokenizer
    assert (
        json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["normalizer"]
        == tokenizer["normalizer"]
    )
    assert ids(out) == ids(source)
    scores = Reranker(out, backend="onnx").compute_score(PAIRS)
    torch_scores = Reranker(source, backend="torch", dtype="fp32").compute_score(PAIRS)
    assert np.abs(np.subtract(scores, torch_scores)).max() <= EXACT

    edited = shutil.copytree(xlmr_fp32_out, tmp_path / "edited")  # a tokenizer edited in the export
    (edited / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    with pytest.raises(BackendError, match="tokenizer.json differs"):
        OnnxBackend(edited)


def test_an_export_folder_with_another_opset_loads(tiny_bert_dir, tmp_path, capsys, home):
    from crossrank.cli.main import main

    out = tmp_path / "opset18"
    assert main(["export", str(tiny_bert_dir), "--opset", "18", "--out", str(out)]) == 0
    capsys.readouterr()
    assert read_manifest(out)["fingerprint"]["opset"] == 18
    scores = Reranker(out, backend="onnx").compute_score(PAIRS)
    torch_scores = Reranker(tiny_bert_dir, backend="torch", dtype="fp32").compute_score(PAIRS)
    assert np.abs(np.subtract(scores, torch_scores)).max() <= EXACT
    with pytest.raises(BackendError, match="opset=18"):  # asked for another opset explicitly
        OnnxBackend(out, opset=17)
    manifest = read_manifest(out)
    manifest["fingerprint"]["crossrank"] = "0.0.1"
    write_manifest(out, manifest)
    with pytest.raises(BackendError, match="--out .* --opset 18"):  # the fix keeps the opset
        OnnxBackend(out)


def test_export_mistakes_are_crossrank_errors(tiny_bert_dir, xlmr_fp32_out, tmp_path, capsys, home):
    from crossrank.cli.main import main

    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    assert main(["export", str(tiny_bert_dir), "--out", str(afile)]) != 0
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["export", str(tiny_bert_dir), "--out", str(afile / "sub")]) != 0
    assert "is a file, not a folder" in capsys.readouterr().err

    def no_export(*args, **kwargs):
        raise AssertionError("exported before checking the --gate file")

    import crossrank.backends.onnx_export as module

    original, module._export_into = module._export_into, no_export
    try:
        out = tmp_path / "gated"
        assert main(["export", str(tiny_bert_dir), "--output", str(out), "--gate", "/nonexistent.tsv"]) != 0
    finally:
        module._export_into = original
    assert "/nonexistent.tsv" in capsys.readouterr().err and not out.exists()

    out = tmp_path / "alias"
    assert main(["export", str(tiny_bert_dir), "--output", str(out)]) == 0  # --output: as in other commands
    assert json.loads(capsys.readouterr().out)["export"] == str(out)


def test_a_model_that_cannot_be_loaded_is_a_backend_error(tiny_bert_dir, tmp_path, home):
    broken = shutil.copytree(tiny_bert_dir, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(BackendError, match="could not load the model"):
        ensure_export(broken, "fp32")
