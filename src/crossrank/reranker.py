"""``Reranker``: load a cross-encoder once, then score pairs or rerank documents for a query."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from .backends.base import Backend, check_device
from .calibration import model_card
from .errors import InvalidInputError
from .scoring import DEFAULT_MAX_DOCUMENT_CHARS, ScoreOptions, ScoringEngine, as_pair_list, check_text
from .thresholds import select, sigmoid
from .types import PairScore, RerankResult

logger = logging.getLogger(__name__)


BACKENDS = ("auto", "torch", "onnx", "openvino")


def open_backend(name, model_dir, device: str | None, dtype: str):
    """``(backend, reason)``: the backend called ``name`` for a resolved model folder, and why it is the
    one running (for ``auto``, see :mod:`crossrank.backends.auto`). A ready backend object passes through."""
    if not isinstance(name, str):
        if not isinstance(name, Backend):
            raise InvalidInputError(
                f"backend must be one of {', '.join(BACKENDS)} or an object with name, dtype, device and "
                f"forward(batch) (crossrank.backends.base.Backend), got {name!r:.80}"
            )
        return name, "a backend object was passed"
    if name not in BACKENDS:
        raise InvalidInputError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name == "auto":
        from .backends.auto import choose  # the rule is written there, and only there

        choice = choose(model_dir, device, dtype)
        return choice.backend, choice.reason
    return load_explicit_backend(name, model_dir, device, dtype), f"backend={name!r} requested"


def load_backend(name, model_dir, device: str | None, dtype: str):
    """Create the backend called ``name`` for a resolved model folder (a ready backend object passes
    through)."""
    return open_backend(name, model_dir, device, dtype)[0]


def load_explicit_backend(name: str, model_dir, device: str | None, dtype: str):
    """One named engine (``torch``, ``onnx``, ``openvino``), no choosing."""
    if name == "onnx":
        from .backends.onnx_backend import OnnxBackend

        return OnnxBackend(model_dir, device=device, dtype=dtype)
    if name == "openvino":
        from .backends.openvino_backend import OpenVINOBackend

        return OpenVINOBackend(model_dir, device=device, dtype=dtype)
    from .backends.torch_backend import TorchBackend

    return TorchBackend(model_dir, device=device, dtype=dtype)


class Reranker:
    """A cross-encoder that judges whether each document answers the query.

    Args:
        model: ``"embedded"`` (offline default), a local model folder, or a hub id such as
            ``"BAAI/bge-reranker-v2-m3"``.
        backend: ``"auto"`` (default: on CPU the fastest backend whose accuracy gate passed for this
            model on this machine, prepared and gated once on first use; see
            :mod:`crossrank.backends.auto`), ``"torch"``, ``"onnx"`` or ``"openvino"``, or an object
            implementing :class:`crossrank.backends.base.Backend` (its ``forward`` is all that runs).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; ``None`` picks CUDA when available.
        dtype: ``"auto"`` (with ``backend="auto"`` on CPU: whatever the gated choice runs; else fp32 on
            CPU, fp16 on CUDA), ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"int8"`` (ONNX / OpenVINO).
        max_length: tokens per (query, window) pair, special tokens included.
        query_max_length: the query's token budget; default ``max_length * 3 // 4``.
        batch_size: rows per forward pass at most.
        max_batch_tokens: padded tokens (rows × longest row) per forward pass at most.
        window: passage tokens per window for long documents; default: all that fit beside the query.
        stride: step between window starts; default three quarters of the window (25% overlap).
        max_windows: windows scored per document at most (the first ones); the rest is reported as
            ``truncated``. Default 32.
        aggregate: ``"max"`` (default), ``"mean"``, ``"weighted"`` (softmax-weighted by window score)
            or ``"first"``.
        truncate: ``None`` (window long documents), ``"right"`` or ``"left"`` (score one window from
            that end, like a plain truncating reranker).
        max_document_chars: longer documents are refused with a message (``None``: no limit).

    Example:
        >>> reranker = Reranker("embedded")
        >>> [r.index for r in reranker.rerank("capital of France", ["Paris is the capital.", "Berlin."])]
        [0, 1]
    """

    def __init__(
        self,
        model: str = "embedded",
        *,
        backend: str | Backend = "auto",
        device: str | None = None,
        dtype: str = "auto",
        max_length: int = 512,
        query_max_length: int | None = None,
        batch_size: int = 32,
        max_batch_tokens: int = 16384,
        window: int | None = None,
        stride: int | None = None,
        max_windows: int = 32,
        aggregate: str = "max",
        truncate: str | None = None,
        max_document_chars: int | None = DEFAULT_MAX_DOCUMENT_CHARS,
    ):
        from .models.resolve import resolve_model
        from .tokenization import PairTokenizer

        device = check_device(device)
        self._asked = {"backend": backend, "device": device, "dtype": dtype}  # for config(): what to rebuild
        self.model = resolve_model(model)
        self.backend, self.backend_reason = open_backend(backend, self.model.path, device, dtype)
        tokenizer = PairTokenizer.from_pretrained(
            self.model.path, max_length=max_length, query_max_length=query_max_length
        )
        options = ScoreOptions(
            max_length=max_length,
            query_max_length=query_max_length,
            window=window,
            stride=stride,
            max_windows=max_windows,
            aggregate=aggregate,
            truncate=truncate,
            max_document_chars=max_document_chars,
        )
        self.engine = ScoringEngine(tokenizer, self.backend, options, batch_size, max_batch_tokens)
        self._query_max_length = query_max_length  # None: derived from max_length, also in with_options
        logger.info(
            "loaded %s (%s) on %s/%s: %s",
            self.model.name,
            self.model.source,
            self.backend.name,
            self.backend.dtype,
            self.backend_reason,
        )

    @property
    def options(self) -> ScoreOptions:
        return self.engine.options

    def info(self) -> dict[str, Any]:
        """Model, backend and limits, for logs, ``/info`` and benchmarks. ``calibration`` is the affine
        map folded into the model's head (``None``: scores are the plain sigmoid of the model's logit)."""
        card = model_card(self.model.path)
        return {
            "model": self.model.name,
            "model_path": str(self.model.path),
            "source": self.model.source,
            "backend": self.backend.name,
            "backend_reason": self.backend_reason,
            "device": self.backend.device,
            "dtype": self.backend.dtype,
            "max_length": self.options.max_length,
            "query_max_length": self.options.query_max_length,
            "batch_size": self.engine.batch_size,
            "max_batch_tokens": self.engine.max_batch_tokens,
            "window": self.options.window,
            "stride": self.options.stride,
            "max_windows": self.options.max_windows,
            "aggregate": self.options.aggregate,
            "trained": card.get("trained"),
            "calibration": card.get("calibration"),
        }

    def config(self) -> dict[str, Any]:
        """The keyword arguments that build this reranker again, ``Reranker(model.name, **config())``, for
        serialisation: the engine as it was asked for (``backend="auto"`` and ``dtype="auto"`` stay so and
        choose again where the reranker is rebuilt, as they chose here) and every scoring and batching
        option. A backend object is recorded as its engine (name, device, dtype) when it is one of ours;
        another cannot be rebuilt from arguments and raises :class:`InvalidInputError`."""
        asked = dict(self._asked)
        if not isinstance(asked["backend"], str):
            if self.backend.name not in BACKENDS[1:]:
                raise InvalidInputError(
                    f"this Reranker runs on a backend object ({self.backend.name!r}) that cannot be rebuilt "
                    f"from arguments; build it with backend= one of {', '.join(BACKENDS)} to serialise it"
                )
            asked = {"backend": self.backend.name, "device": self.backend.device, "dtype": self.backend.dtype}
        options = {f.name: getattr(self.options, f.name) for f in fields(ScoreOptions)}
        options["query_max_length"] = self._query_max_length  # None: derived from max_length again
        engine = {"batch_size": self.engine.batch_size, "max_batch_tokens": self.engine.max_batch_tokens}
        return asked | engine | options

    def with_options(self, **overrides) -> ScoreOptions:
        """The default options with some fields replaced (validated). A new ``max_length`` without a
        ``query_max_length`` gets the query budget the constructor would give it (its own, if one was
        passed; else ``max_length * 3 // 4``)."""
        if "max_length" in overrides and "query_max_length" not in overrides:
            overrides["query_max_length"] = self._query_max_length
        return self.engine.check_options(replace(self.options, **overrides))

    def score_pairs(
        self, pairs: Sequence, options: ScoreOptions | None = None, progress=None, encoded=None
    ) -> list[PairScore]:
        """Score (query, document) pairs in input order, with window details. See :class:`PairScore`.
        ``encoded``: the documents already tokenized (``self.engine.tokenizer.encode``), one per pair."""
        return self.engine.score_pairs(pairs, options, progress, encoded=encoded)

    def compute_score(self, pairs: Sequence, normalize: bool = False) -> list[float]:
        """One score per pair, in input order: raw logits, or sigmoid scores with ``normalize=True``.

        A single ``[query, passage]`` pair is accepted and also returns a one-element list.
        """
        scores = [s.logit for s in self.engine.score_pairs(as_pair_list(pairs))]
        return [sigmoid(s) for s in scores] if normalize else scores

    def rerank(
        self,
        query: str,
        documents: Sequence[str],
        top_n: int | None = None,
        threshold: float | str | None = None,
        min_score: float | None = None,
        return_documents: bool = True,
        options: ScoreOptions | None = None,
        progress=None,
    ) -> list[RerankResult]:
        """Rank ``documents`` for ``query``, best first (ties by input index).

        Args:
            top_n: keep at most this many (``None`` or 0: all).
            threshold: drop results whose sigmoid score is below it: a number in [0, 1] or
                ``"dynamic"`` (the σ rule of :func:`crossrank.thresholds.dynamic_threshold`).
            min_score: a fixed floor on the sigmoid score, applied with ``threshold``.
            return_documents: include each document's text in its result.
            options: per-call :class:`ScoreOptions` (see :meth:`with_options`).
            progress: called as ``progress(rows_done, rows_total)`` after each forward pass.
        """
        check_text(query, "query")
        if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
            raise InvalidInputError("documents must be a list of strings")
        if not documents:
            raise InvalidInputError("no documents to rerank: pass a list of at least one document")
        scored = self.engine.score_pairs([(query, d) for d in documents], options, progress)
        return rank(
            scored, documents, top_n=top_n, threshold=threshold, min_score=min_score,
            return_documents=return_documents,
        )


def rank(
    scored: Sequence[PairScore],
    documents: Sequence[str],
    *,
    top_n: int | None = None,
    threshold: float | str | None = None,
    min_score: float | None = None,
    return_documents: bool = True,
) -> list[RerankResult]:
    """Sort scored documents best first (ties by input index) and apply the cut-offs."""
    normalised = [sigmoid(s.logit) for s in scored]
    order = sorted(range(len(scored)), key=lambda i: (-scored[i].logit, i))
    kept, _ = select(
        [(i, normalised[i]) for i in order], top_n=top_n, threshold=threshold, min_score=min_score
    )
    return [
        RerankResult(
            index=i,
            score=score,
            document=documents[i] if return_documents else None,
            window=scored[i].window,
            logit=scored[i].logit,
            truncated=scored[i].truncated,
        )
        for i, score in kept
    ]
