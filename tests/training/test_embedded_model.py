"""The shipped embedded reranker: a compact weights file, and (slow) the assembled model's golden scores."""

from __future__ import annotations

import json

import pytest

from crossrank.calibration import Calibration
from crossrank.models.build import EMBEDDED_CALIBRATION, EMBEDDED_WEIGHTS

# (query, passage) pairs whose logits were recorded from the assembled model (fp32 inference on CPU).
PAIRS = [
    ("what is the capital of france", "Paris is the capital and largest city of France."),
    ("what is the capital of france", "Berlin is the capital of Germany."),
    ("what is the capital of france", "The Loire is the longest river in France."),
    ("法国的首都是哪里？", "巴黎是法国的首都和最大城市。"),
    ("法国的首都是哪里？", "柏林是德国的首都。"),
    ("法国的首都是哪里？", "卢瓦尔河是法国最长的河流。"),
]
GOLDEN = [8.59695, 1.86371, -7.48904, -8.41261, -16.04688, -14.31288]
# The trained head's own logits, recorded from the assembled model before calibration was folded in
# (fp16-stored weights, fp32 inference). Rerunning on this CPU reproduces
# them to ~1e-5; the allowance covers other CPUs' fp32 kernels. (fp16 storage itself moves logits by up to
# ~6e-3 against the fp32 trained weights; that difference is baked into these values.)
TOLERANCE = 1e-3


def test_weights_file_is_compact_and_omits_word_embeddings():
    from safetensors import safe_open

    assert EMBEDDED_WEIGHTS.is_file(), "the trained embedded-reranker.safetensors is missing"
    assert EMBEDDED_WEIGHTS.stat().st_size <= 50_000_000
    with safe_open(str(EMBEDDED_WEIGHTS), framework="pt") as fh:
        keys = set(fh.keys())
        dtypes = {str(fh.get_slice(k).get_dtype()) for k in keys}
    assert "bert.embeddings.word_embeddings.weight" not in keys
    assert {
        "classifier.weight",
        "bert.pooler.dense.weight",
        "bert.encoder.layer.11.output.dense.weight",
    } <= keys
    assert dtypes == {"F16"}


@pytest.mark.slow
def test_assembled_embedded_model_gives_golden_scores():
    from crossrank.models.build import ensure_model
    from crossrank.reranker import Reranker

    folder = ensure_model("embedded")
    card = json.loads((folder / "crossrank.json").read_text(encoding="utf-8"))
    assert card["trained"] is True
    # The bundled calibration is folded into the head: the model outputs scale * logit + bias.
    cal = Calibration.read(EMBEDDED_CALIBRATION)
    assert card["calibration"] == cal.to_dict()
    logits = [s.logit for s in Reranker("embedded", dtype="fp32").score_pairs(PAIRS)]
    assert logits == pytest.approx([cal.apply(z) for z in GOLDEN], abs=TOLERANCE)
    for first in (0, 3):  # the answering passage ranks first, in English and in Chinese
        assert max(range(first, first + 3), key=lambda i: logits[i]) == first
