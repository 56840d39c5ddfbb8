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
    """Find the pair layout by post-processing two one-token segments and locating them."""
    a, b = backend.encode("a", add_special_tokens=False), backend.encode("b", add_special_tokens=False)
    pair = backend.post_process(a, b, add_special_tokens=True)
    ids, types = list(pair.ids), list(pair.type_ids)
    # `sequence_ids` is unreliable for encodings built without special tokens, so find the two
    # segments by position: the template adds only special tokens around them, in order.
    if len(a.ids) != 1 or len(b.ids) != 1 or a.ids[0] not in ids:
        raise InvalidInputError("this tokenizer has no pair template; it cannot drive a cross-encoder")
    q0 = ids.index(a.ids[0])
    q1 = q0 + 1
    p0 = ids.index(b.ids[0], q1) if b.ids[0] in ids[q1:] else -1
    if p0 < 0:
        raise InvalidInputError("this tokenizer has no pair template; it cannot drive a cross-encoder")
    p1 = p0 + 1
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


def _special_token(value) -> str | None:
    """A special token from tokenizer_config.json: a string or an AddedToken-like dict."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


class PairTokenizer:
    """Tokenizes queries and passages once, and builds model inputs for (query, passage-window) pairs.

    Works on the Rust ``tokenizers.Tokenizer`` of a model folder's ``tokenizer.json``; loading it
    directly takes a fraction of the time transformers' tokenizer classes need.
    """

    def __init__(
        self,
        backend,
        *,
        pad_id: int = 0,
        model_max_length: int | None = None,
        max_length: int = 512,
        query_max_length: int | None = None,
        _owned: bool = False,
    ):
        from tokenizers import Tokenizer

        # A private copy without the padding/truncation a tokenizer.json may carry (all-MiniLM's pads
        # and cuts everything to 128 tokens): windows need every token of a document. from_pretrained
        # hands over a tokenizer nobody else holds: no copy (a 250k-token vocabulary is ~290 MB of RSS
        # per copy, and the freed one is rarely returned to the OS).
        self.backend = backend if _owned else Tokenizer.from_str(backend.to_str())
        self.backend.no_padding()
        self.backend.no_truncation()
        self.template = _template_from(self.backend)
        self.pad_id = pad_id
        self.model_max_length = (
            model_max_length if model_max_length and model_max_length < 1_000_000 else None
        )
        # BERT-style models tell the segments apart by token type; XLM-R's types are all 0.
        t = self.template
        self.uses_token_types = any(
            (*t.prefix_types, t.query_type, *t.middle_types, t.passage_type, *t.suffix_types)
        )
        self.max_length, self.query_max_length = self.check_lengths(max_length, query_max_length)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> PairTokenizer:
        """Load ``tokenizer.json`` (and ``tokenizer_config.json`` for the pad token and length limit)."""
        import json

        from tokenizers import Tokenizer

        folder = Path(path)
        file = folder / "tokenizer.json"
        if not file.is_file():
            raise InvalidInputError(
                f"{folder} has no tokenizer.json; crossrank needs a fast (Rust) tokenizer. Re-save the "
                "model's tokenizer with transformers (tokenizer.save_pretrained) to create one."
            )
        backend = Tokenizer.from_file(str(file))
        config_file = folder / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        pad = _special_token(config.get("pad_token"))
        pad_id = backend.token_to_id(pad) if pad else None
        if pad_id is None:
            padding = backend.padding or {}
            pad_id = padding.get("pad_id", 0)
        return cls(
            backend, pad_id=pad_id, model_max_length=config.get("model_max_length"), _owned=True, **kwargs
        )

    def check_lengths(self, max_length: int, query_max_length: int | None) -> tuple[int, int]:
        """Validate a pair length and a query budget (default ``max_length * 3 // 4``, less where a short
        ``max_length`` leaves no room for a passage token beside it); return both."""
        n_special = self.template.n_special
        limit = self.model_max_length
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < n_special + 2:
            raise InvalidInputError(
                f"max_length must be an integer of at least {n_special + 2}, got {max_length!r}"
            )
        if limit and max_length > limit:
            raise InvalidInputError(
                f"max_length={max_length} exceeds what this model accepts ({limit} tokens); use <= {limit}"
            )
        if query_max_length is None:
            query_max_length = min(max_length * 3 // 4, max_length - n_special - 1)
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
