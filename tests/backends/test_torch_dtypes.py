"""Torch bf16 on CPU: weights in bf16, pooler and head in fp32, fp32 logits out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossrank import Reranker
from crossrank.backends.torch_backend import HEAD_MODULES, TorchBackend, cpu_supports_bf16

PAIRS = [
    ("what is the capital of france", "Paris is the capital of France."),
    ("what is the capital of france", "Berlin is a large city. " * 30),
    ("tea", "Green tea is made from leaves."),
]


@pytest.mark.parametrize("fixture", ["tiny_xlmr_dir", "tiny_bert_dir"])
def test_bf16_keeps_head_in_fp32_and_returns_fp32(fixture, request):
    folder = request.getfixturevalue(fixture)
    backend = TorchBackend(folder, device="cpu", dtype="bf16")
    for name, module in backend.model.named_modules():
        if name.rsplit(".", 1)[-1] in HEAD_MODULES:
            assert all(p.dtype == torch.float32 for p in module.parameters()), name
    layer = next(p for n, p in backend.model.named_parameters() if "encoder" in n and n.endswith("weight"))
    assert layer.dtype == torch.bfloat16
    bf16 = np.array(Reranker(folder, backend=backend).compute_score(PAIRS))
    fp32 = np.array(Reranker(folder, backend="torch", dtype="fp32").compute_score(PAIRS))
    assert bf16.dtype == np.float64 and np.isfinite(bf16).all()
    assert np.abs(bf16 - fp32).max() < 0.05 * max(np.abs(fp32).max(), 1e-3) + 1e-3


def test_cpu_bf16_probe_returns_bool():
    assert isinstance(cpu_supports_bf16(), bool)
