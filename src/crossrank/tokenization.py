"""The one tokenization path: query budget, pair layout and passage windows.

FlagEmbedding's semantics: the query is cut to ``query_max_length`` tokens, then the pair is built as the
model's template (``<s> q </s></s> p </s>`` for XLM-RoBERTa, ``[CLS] q [SEP] p [SEP]`` for BERT) and only
the passage is truncated to fit ``max_length``. Here the passage is not thrown away: it is split into
windows that each fit (see :mod:`crossrank.windowing`).

We drive the Rust ``tokenizers`` object directly: transformers 5 no longer exposes
``build_inputs_with_special_tokens``, and we need the special-token layout to build many windows from
one tokenization of each text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class PairTemplate:
    """Special tokens and token types around the two segments of a pair."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    prefix_types: tuple[int, ...]
    query_type: int
    middle_types: tuple[int, ...]
    passage_type: int
    suffix_types: tuple[int, ...]

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)


@dataclass(frozen=True, slots=True)
class EncodedText:
    """Token ids of a text without special tokens, and each token's character span in the text."""

    ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]


def _template_from(backend) -> PairTemplate:
    """Find the pair layout by post-processing two single-token markers and locating them."""
    a, b = backend.encode("a", add_special_tokens=False), backend.encode("b", add_special_tokens=False)
    pair = backend.post_process(a, b, add_special_tokens=True)
    ids, types = list(pair.ids), list(pair.type_ids)
    # sequence_ids tells which segment each position belongs to (None for special tokens).
    seq = pair.sequence_ids
    qa = [i for i, s in enumerate(seq) if s == 0]
    pb = [i for i, s in enumerate(seq) if s == 1]
    if not qa or not pb:
        raise InvalidInputError("this tokenizer has no pair template; it cannot drive a cross-encoder")
    q0, q1, p0, p1 = qa[0], qa[-1] + 1, pb[0], pb[-1] + 1
    return PairTemplate(
        prefix=tuple(ids[:q0]),
        middle=tuple(ids[q1:p0]),
        suffix=tuple(ids[p1:]),
        prefix_types=tuple(types[:q0]),
        query_type=types[q0],
        middle_types=tuple(types[q1:p0]),
        passage_type=types[p0],
        suffix_types=tuple(types[p1:]),
    )


class PairTokenizer:
    """Tokenizes queries and passages once, and builds model inputs for (query, passage-window) pairs."""

    def __init__(self, hf_tokenizer, max_length: int = 512, query_max_length: int | None = None):
        if getattr(hf_tokenizer, "backend_tokenizer", None) is None:
            raise InvalidInputError(
                "crossrank needs a fast (Rust) tokenizer; the model folder must contain tokenizer.json"
            )
        self.hf = hf_tokenizer
        self.backend = hf_tokenizer.backend_tokenizer
        self.template = _template_from(self.backend)
        self.pad_id = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else 0
        self.uses_token_types = "token_type_ids" in getattr(hf_tokenizer, "model_input_names", ())
        self.max_length, self.query_max_length = self.check_lengths(max_length, query_max_length)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> PairTokenizer:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(path)), **kwargs)

    def check_lengths(self, max_length: int, query_max_length: int | None) -> tuple[int, int]:
        """Validate a pair length and a query budget (default ``max_length * 3 // 4``); return both."""
        n_special = self.template.n_special
        limit = getattr(self.hf, "model_max_length", None)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < n_special + 2:
            raise InvalidInputError(
                f"max_length must be an integer of at least {n_special + 2}, got {max_length!r}"
            )
        if limit and limit < 1_000_000 and max_length > limit:
            raise InvalidInputError(
                f"max_length={max_length} exceeds what this model accepts ({limit} tokens); use <= {limit}"
            )
        if query_max_length is None:
            query_max_length = max_length * 3 // 4
        if (
            isinstance(query_max_length, bool)
            or not isinstance(query_max_length, int)
            or not 1 <= query_max_length <= max_length - n_special - 1
        ):
            raise InvalidInputError(
                f"query_max_length must be an integer in [1, {max_length - n_special - 1}] "
                f"for max_length={max_length}, got {query_max_length!r}"
            )
        return max_length, query_max_length

    def encode(self, texts: Sequence[str]) -> list[EncodedText]:
        """Tokenize texts without special tokens, keeping character offsets."""
        encodings = self.backend.encode_batch(list(texts), add_special_tokens=False)
        return [EncodedText(tuple(e.ids), tuple(e.offsets)) for e in encodings]

    def encode_query(self, query: str, query_max_length: int | None = None) -> tuple[int, ...]:
        """Query ids, cut to the query budget (FlagEmbedding: ``truncation=True`` on the query alone)."""
        limit = query_max_length or self.query_max_length
        return tuple(self.backend.encode(query, add_special_tokens=False).ids[:limit])

    def passage_budget(self, query_ids: Sequence[int], max_length: int | None = None) -> int:
        """How many passage tokens fit beside this query within ``max_length``."""
        return (max_length or self.max_length) - len(query_ids) - self.template.n_special

    def build(self, query_ids: Sequence[int], passage_ids: Sequence[int]) -> tuple[list[int], list[int]]:
        """Model input ids and token type ids for one pair."""
        t = self.template
        ids = [*t.prefix, *query_ids, *t.middle, *passage_ids, *t.suffix]
        types = [
            *t.prefix_types,
            *([t.query_type] * len(query_ids)),
            *t.middle_types,
            *([t.passage_type] * len(passage_ids)),
            *t.suffix_types,
        ]
        return ids, types
