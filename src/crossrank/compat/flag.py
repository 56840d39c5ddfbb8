"""``FlagReranker``: FlagEmbedding 1.4's reranker interface on crossrank's engine.

FlagEmbedding itself does not import on transformers 5; this shim keeps its constructor arguments and
``compute_score`` behaviour: raw logits unless ``normalize=True`` (sigmoid), input order, a single
``[query, passage]`` pair also returns a list, the query cut to ``query_max_length`` (default
``max_length * 3 // 4``) and the passage truncated to fit (``truncation='only_second'``), no windows.
``use_fp16`` selects fp16 on CUDA and is ignored on CPU, as in FlagEmbedding.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..backends import auto
from ..backends.base import check_device
from ..errors import InvalidInputError
from ..reranker import Reranker
from ..scoring import as_pair_list, validate_pairs
from ..thresholds import sigmoid

logger = logging.getLogger(__name__)


def flag_device(devices) -> str | None:
    """FlagEmbedding's ``devices`` (a device, a GPU number, or a list of either; ``None``: the default)
    as one crossrank device. crossrank runs one device per model: with several, the first is used."""
    if isinstance(devices, list | tuple):
        if not devices:
            return None
        if len(devices) > 1:
            logger.warning("FlagReranker runs on one device here: using %r of %r", devices[0], devices)
        devices = devices[0]
    if isinstance(devices, int) and not isinstance(devices, bool) and devices >= 0:
        return f"cuda:{devices}"  # FlagEmbedding: an int is a GPU number
    if devices is None or isinstance(devices, str):
        return check_device(devices)
    raise InvalidInputError(
        f"devices must be a device string ('cpu', 'cuda:0'), a GPU number or a list of them, got {devices!r}"
    )


class FlagReranker:
    """Drop-in for ``FlagEmbedding.FlagReranker`` (encoder-only rerankers such as bge-reranker-v2-m3)."""

    def __init__(
        self,
        model_name_or_path: str = "embedded",
        use_fp16: bool = False,
        query_instruction_for_rerank: str | None = None,
        query_instruction_format: str = "{}{}",
        passage_instruction_for_rerank: str | None = None,
        passage_instruction_format: str = "{}{}",
        trust_remote_code: bool = False,
        cache_dir: str | None = None,
        devices: str | list[str] | None = None,
        batch_size: int = 128,
        query_max_length: int | None = None,
        max_length: int = 512,
        normalize: bool = False,
        **kwargs,
    ):
        if trust_remote_code or cache_dir:
            logger.debug("trust_remote_code/cache_dir are accepted for compatibility and not used")
        device = flag_device(devices)
        on_cuda = device.startswith("cuda") if device else not auto.on_cpu(None)
        self.query_instruction = (query_instruction_for_rerank, query_instruction_format)
        self.passage_instruction = (passage_instruction_for_rerank, passage_instruction_format)
        self.normalize = normalize
        self.batch_size = batch_size
        self.reranker = Reranker(
            model_name_or_path,
            backend=kwargs.pop("backend", "auto"),  # a crossrank extension (FlagEmbedding has none)
            device=device,
            dtype="fp16" if use_fp16 and on_cuda else "fp32",
            max_length=max_length,
            query_max_length=query_max_length,
            batch_size=batch_size,
            truncate="right",
            max_document_chars=None,
        )

    def _instruct(self, pairs: Sequence) -> list[tuple[str, str]]:
        (q_inst, q_fmt), (p_inst, p_fmt) = self.query_instruction, self.passage_instruction
        out = []
        for q, p in validate_pairs(pairs, None):  # shape and text checked before the instructions
            # FlagEmbedding formats whenever an instruction is given, "" included (a format may add text)
            q = q if q_inst is None else q_fmt.format(q_inst, q)
            out.append((q, p if p_inst is None else p_fmt.format(p_inst, p)))
        return out

    def compute_score(
        self,
        sentence_pairs: Sequence,
        batch_size: int | None = None,
        max_length: int | None = None,
        query_max_length: int | None = None,
        normalize: bool | None = None,
        **kwargs,
    ) -> list[float]:
        """Scores for ``[[query, passage], ...]`` (or one ``[query, passage]``), in input order."""
        sentence_pairs = as_pair_list(sentence_pairs)
        # FlagEmbedding: a query budget not given here is the constructor's, else max_length * 3 // 4.
        overrides = {"max_length": max_length, "query_max_length": query_max_length}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        options = self.reranker.with_options(**overrides) if overrides else None
        scored = self.reranker.engine.score_pairs(
            self._instruct(sentence_pairs),
            options,
            batch_size=self.batch_size if batch_size is None else batch_size,
        )
        logits = [s.logit for s in scored]
        return (
            [sigmoid(x) for x in logits] if (self.normalize if normalize is None else normalize) else logits
        )
