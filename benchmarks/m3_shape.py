"""A model with bge-reranker-v2-m3's architecture and random weights, for speed measurements only.

XLMRobertaForSequenceClassification, 24 layers, hidden 1024, 16 heads, intermediate 4096, vocab 250002,
8194 positions, one label, with the real XLM-R tokenizer (rebuilt offline by crossrank). Throughput does
not depend on weight values, so this measures the real model's speed without downloading it; its scores
mean nothing. Built once into ``$CROSSRANK_HOME/bench/m3-shape``.
"""

from __future__ import annotations

import json
from pathlib import Path

M3_CONFIG = {
    "vocab_size": 250002,
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "max_position_embeddings": 8194,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
    "num_labels": 1,
    "architectures": ["XLMRobertaForSequenceClassification"],
}


def ensure_m3_shape() -> Path:
    """The m3-shaped model folder (built with seed 0 on first use)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, XLMRobertaConfig

    from crossrank.models.build import crossrank_home, ensure_model

    folder = crossrank_home() / "bench" / "m3-shape"
    stamp = folder / ".complete"
    if stamp.is_file() and json.loads(stamp.read_text()) == M3_CONFIG:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(XLMRobertaConfig(**M3_CONFIG)).eval()
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(ensure_model("xlmr-tokenizer"))).save_pretrained(folder)
    stamp.write_text(json.dumps(M3_CONFIG))
    return folder


if __name__ == "__main__":
    print(ensure_m3_shape())
