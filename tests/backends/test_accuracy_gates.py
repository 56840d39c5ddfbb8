"""Accuracy gates on real pairs: WikiQA dev query lists scored by the real embedded model.

Reference: torch fp32. Approximate backends (torch bf16, ONNX int8) must rank like it: mean Spearman per
query list >= 0.99 and the same top-1 on >= 95% of queries. ONNX fp32 must be exact: max |logit
difference| <= 1e-3. ``backend="auto"`` only picks an export whose gate passed (see backends/auto.py).
"""

from __future__ import annotations

import pytest

from crossrank import Reranker
from crossrank.backends.gate import MAX_ABS_FP32, MIN_SPEARMAN, MIN_TOP1, compare, score_lists, wikiqa_lists

pytestmark = pytest.mark.slow
N_QUESTIONS = 30  # a slice of WikiQA dev (~340 pairs) for CI speed


@pytest.fixture(scope="module")
def embedded():
    from crossrank.models.build import ensure_model

    return ensure_model("embedded")


@pytest.fixture(scope="module")
def lists(shared_data):
    return wikiqa_lists(shared_data / "wikiqa" / "WikiQA-dev.tsv", N_QUESTIONS)


@pytest.fixture(scope="module")
def reference(embedded, lists):
    return score_lists(Reranker(embedded, backend="torch", dtype="fp32"), lists)


def test_tolerances_are_the_documented_ones():
    assert (MIN_SPEARMAN, MIN_TOP1, MAX_ABS_FP32) == (0.99, 0.95, 1e-3)


def test_torch_bf16_gate(embedded, lists, reference):
    result = compare(reference, score_lists(Reranker(embedded, backend="torch", dtype="bf16"), lists))
    assert result.spearman_mean >= 0.99 and result.top1_agreement >= 0.95, result


def test_onnx_fp32_is_exact(embedded, lists, reference):
    result = compare(
        reference, score_lists(Reranker(embedded, backend="onnx", dtype="fp32"), lists), max_abs=1e-3
    )
    assert result.max_abs_diff <= 1e-3, result


@pytest.mark.xfail(
    reason="measured on WikiQA dev (40 lists): dynamic int8 (per-channel weights, per-tensor activations) "
    "reaches mean Spearman 0.93 / top-1 92.5% (AVX-512 VNNI CPU) and 0.954 / 87.5% (AVX2 CPU) on the trained "
    "embedded model. Keeping the FFN in fp32 (int8 only for attention) passes (0.9945 and 0.9907) but is "
    "slower than torch bf16 on AVX-512 and only 7% faster than ONNX fp32 on AVX2 "
    "(benchmarks/int8_variants.py), so it is not the int8 recipe. The export manifest records the failed "
    "gate, so backend='auto' never picks int8 for this model.",
    strict=False,
)
def test_onnx_int8_gate(embedded, lists, reference):
    result = compare(reference, score_lists(Reranker(embedded, backend="onnx", dtype="int8"), lists))
    assert result.spearman_mean >= 0.99 and result.top1_agreement >= 0.95, result


def test_auto_only_picks_a_candidate_whose_gate_passed(embedded):
    from crossrank.backends.auto import choose, read_verdicts

    choice = choose(embedded, "cpu", "auto", prepare=False)  # whatever `crossrank models build` gated
    if (choice.engine, choice.dtype) != ("torch", "fp32"):
        assert read_verdicts(embedded)["verdicts"][f"{choice.engine}-{choice.dtype}"]["passed"]
