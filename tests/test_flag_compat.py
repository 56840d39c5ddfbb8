"""FlagReranker: FlagEmbedding 1.4's interface and semantics on crossrank's engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from crossrank import FlagReranker, Reranker


def test_compute_score_matches_flagembedding_semantics(tiny_xlmr_dir):
    tok = AutoTokenizer.from_pretrained(str(tiny_xlmr_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_xlmr_dir)).eval()
    pairs = [["what is panda?", "hi"], ["what is panda?", "The giant panda " * 100]]
    flag = FlagReranker(str(tiny_xlmr_dir), use_fp16=True, max_length=64)
    got = flag.compute_score(pairs)
    expected = []
    for q, p in pairs:  # FlagEmbedding: query cut to max_length*3//4, passage truncated only_second
        enc = tok(q, p, truncation="only_second", max_length=64, return_tensors="pt")
        with torch.inference_mode():
            expected.append(float(model(**enc).logits[0, 0]))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert isinstance(got, list) and all(isinstance(x, float) for x in got)


def test_single_pair_returns_a_list_and_normalize_is_sigmoid(tiny_xlmr_dir):
    flag = FlagReranker(str(tiny_xlmr_dir))
    [raw] = flag.compute_score(["what is panda?", "hi"])
    [norm] = flag.compute_score(["what is panda?", "hi"], normalize=True)
    assert norm == 1 / (1 + np.exp(-raw))
    default_normalized = FlagReranker(str(tiny_xlmr_dir), normalize=True)
    assert default_normalized.compute_score(["what is panda?", "hi"]) == [norm]


def test_use_fp16_is_ignored_on_cpu(tiny_xlmr_dir):
    assert FlagReranker(str(tiny_xlmr_dir), use_fp16=True).reranker.backend.dtype == "fp32"


def test_flag_truncates_where_reranker_windows(tiny_xlmr_dir):
    long_doc = "bamboo " * 400
    flag = FlagReranker(str(tiny_xlmr_dir), max_length=64)
    windowed = Reranker(str(tiny_xlmr_dir), max_length=64).score_pairs([("panda", long_doc)])[0]
    assert windowed.window.count > 1
    first_window = Reranker(str(tiny_xlmr_dir), max_length=64, aggregate="first").score_pairs(
        [("panda", long_doc)]
    )
    assert first_window[0].truncated and first_window[0].window.count == 1
    assert flag.compute_score(["panda", long_doc])[0] == first_window[0].logit


def test_compute_score_keeps_the_constructors_query_budget(tiny_xlmr_dir):
    """FlagEmbedding: a ``max_length`` passed to compute_score keeps the constructor's query_max_length."""
    pair = ["panda " * 40 + "bamboo", "pandas eat bamboo"]
    short_query = FlagReranker(str(tiny_xlmr_dir), query_max_length=4)
    expected = short_query.compute_score(pair)
    assert short_query.compute_score(pair, max_length=256) == expected
    assert FlagReranker(str(tiny_xlmr_dir)).compute_score(pair, query_max_length=4) == expected


@pytest.mark.parametrize(
    "devices,device",
    [("cpu", "cpu"), (["cpu"], "cpu"), (["cpu", "cuda:1"], "cpu"), (("cpu",), "cpu")],
)
def test_devices_take_flagembeddings_forms(tiny_xlmr_dir, devices, device):
    assert FlagReranker(str(tiny_xlmr_dir), devices=devices).reranker.backend.device == device


@pytest.mark.parametrize(
    "devices,match", [(0, "CUDA is not available"), (1.5, "devices must be"), ("tpu", "device must be")]
)
def test_bad_devices_get_clear_errors(tiny_xlmr_dir, devices, match):
    from crossrank import InvalidInputError

    with pytest.raises(InvalidInputError, match=match):
        FlagReranker(str(tiny_xlmr_dir), devices=devices)


def test_batch_size_zero_is_refused(tiny_xlmr_dir):
    from crossrank import InvalidInputError

    with pytest.raises(InvalidInputError, match="batch_size must be a positive integer"):
        FlagReranker(str(tiny_xlmr_dir)).compute_score(["a", "b"], batch_size=0)


def test_instructions_are_prepended(tiny_xlmr_dir):
    plain = FlagReranker(str(tiny_xlmr_dir))
    instructed = FlagReranker(str(tiny_xlmr_dir), query_instruction_for_rerank="A: ")
    assert instructed.compute_score(["panda", "bamboo"]) == plain.compute_score(["A: panda", "bamboo"])


def test_an_empty_instruction_still_applies_its_format(tiny_xlmr_dir):
    """FlagEmbedding formats when an instruction is not None: "" with "Query: {}{}" adds "Query: "."""
    formatted = FlagReranker(
        str(tiny_xlmr_dir),
        query_instruction_for_rerank="",
        query_instruction_format="Query: {}{}",
        passage_instruction_for_rerank="",
        passage_instruction_format="Passage: {}{}",
    )
    plain = FlagReranker(str(tiny_xlmr_dir))
    expected = plain.compute_score(["Query: panda", "Passage: bamboo"])
    assert formatted.compute_score(["panda", "bamboo"]) == expected
