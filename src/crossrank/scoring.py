"""The one inference path.

validate → tokenize (each distinct query once, all documents in one batch call) → plan windows →
sort by length → token-budget batches → ``backend.forward`` → restore input order → aggregate windows.
Activation (sigmoid) is applied by callers on the fp32 logits this returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .backends.base import Backend, Batch
from .errors import BackendError, InputTooLargeError, InvalidInputError
from .tokenization import EncodedText, PairTokenizer
from .types import PairScore, WindowSpan
from .windowing import AGGREGATES, aggregate, plan_windows

logger = logging.getLogger(__name__)

DEFAULT_MAX_DOCUMENT_CHARS = 200_000
TRUNCATE_SIDES = ("right", "left")


@dataclass(frozen=True, slots=True)
class ScoreOptions:
    """How pairs are scored. ``window=None`` means "as many passage tokens as fit beside the query";
    ``truncate`` (``"right"``/``"left"``) scores one window from that end instead of all of them."""

    max_length: int = 512
    query_max_length: int | None = None
    window: int | None = None
    stride: int | None = None
    max_windows: int = 32
    aggregate: str = "max"
    truncate: str | None = None
    max_document_chars: int | None = DEFAULT_MAX_DOCUMENT_CHARS

    def validated(self) -> ScoreOptions:
        if self.aggregate not in AGGREGATES:
            raise InvalidInputError(
                f"aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}"
            )
        if self.truncate not in (None, *TRUNCATE_SIDES):
            raise InvalidInputError(f"truncate must be None, 'right' or 'left', got {self.truncate!r}")
        for name in ("window", "stride", "max_windows", "max_document_chars"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidInputError(f"{name} must be a positive integer or None, got {value!r}")
        if self.window is not None and self.stride is not None and self.stride > self.window:
            raise InvalidInputError(
                f"stride ({self.stride}) is larger than window ({self.window}): tokens between windows "
                "would never be scored; use a stride <= window"
            )
        return self


@dataclass(slots=True)
class _Feature:
    pair: int
    window: int
    ids: list[int]
    types: list[int]


def as_pair_list(pairs):
    """FlagEmbedding's convention: one ``[query, passage]`` pair may be passed bare; wrap it in a list."""
    if isinstance(pairs, Sequence) and len(pairs) == 2 and all(isinstance(x, str) for x in pairs):
        return [pairs]
    return pairs


def check_readable(encoded: Sequence[EncodedText]) -> None:
    """Refuse a document that encodes to no token (only zero-width or control characters, which pass
    a blank check): the model would score the query against an empty passage, often highly."""
    for i, doc in enumerate(encoded):
        if not doc.ids:
            raise InvalidInputError(
                f"document {i} has no text the model can read (only invisible or control characters); "
                "pass non-blank text"
            )


def validate_pairs(pairs: Sequence, max_document_chars: int | None) -> list[tuple[str, str]]:
    """Check shape and content of (query, document) pairs without modifying the caller's objects."""
    if isinstance(pairs, str | bytes) or not isinstance(pairs, Sequence):
        raise InvalidInputError("pairs must be a list of [query, document] pairs")
    if len(pairs) == 0:
        raise InvalidInputError("no pairs to score: pass at least one [query, document] pair")
    out = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise InvalidInputError(
                f"pair {i} must be a [query, document] list of two strings, got {pair!r:.80}"
            )
        query, doc = pair
        check_text(query, f"the query of pair {i}")
        check_text(doc, f"document {i}")
        if max_document_chars is not None and len(doc) > max_document_chars:
            raise InputTooLargeError(
                f"document {i} has {len(doc):,} characters, over max_document_chars={max_document_chars:,}. "
                "Split it into chunks before reranking, or raise max_document_chars (None for no limit)."
            )
        out.append((query, doc))
    return out


def check_text(value, what: str) -> None:
    """The one check of text entering the inference path (library, CLI, server, pipeline, index): a
    non-blank string that the tokenizer can take (:func:`check_encodable`)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{what} is empty; pass non-blank text or drop it")
    check_encodable(value, what)


def check_encodable(value: str, what: str) -> None:
    """Refuse text that is not valid Unicode: lone surrogates (U+D800–U+DFFF), which JSON's ``\\ud800``
    escapes, ``surrogateescape``-decoded bytes and ``str`` slicing of UTF-16 data produce. They have no
    UTF-8 form, so the Rust tokenizer cannot take them (a raw ``TypeError``). Every other code point,
    NUL and non-characters included, is valid and tokenized as is. The text is refused rather than
    repaired: a silent replacement would score a different text than the caller sent."""
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = value[exc.start]
        raise InvalidInputError(
            f"{what} holds a lone surrogate U+{ord(char):04X} at character {exc.start}, which is not "
            "valid Unicode and cannot be tokenized; send valid text (decode bytes with errors='replace'; "
            "a UTF-16 surrogate pair must be joined into one code point, e.g. by decoding as UTF-16)"
        ) from None


def plan_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int) -> list[list[int]]:
    """Group positions of ``lengths`` (already sorted, longest first) into batches whose padded size
    ``rows × longest`` stays within ``max_batch_tokens`` and whose row count stays within ``batch_size``.
    A single sequence longer than the budget gets a batch of its own."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for pos, length in enumerate(lengths):
        longer = max(longest, length)
        if current and (len(current) + 1 > batch_size or longer * (len(current) + 1) > max_batch_tokens):
            batches.append(current)
            current, longer = [], length
        current.append(pos)
        longest = longer
    if current:
        batches.append(current)
    return batches


def _gap_end(text: str, token_end: int, next_start: int) -> int:
    """Where a window ending at a token (``token_end``) ends in ``text``: past the characters before the
    next token (``next_start``) that no token holds, trailing whitespace excluded."""
    end = max(token_end, next_start)
    while end > token_end and text[end - 1].isspace():
        end -= 1
    return end


class ScoringEngine:
    """Scores (query, document) pairs with a tokenizer and a backend; the single inference path."""

    def __init__(
        self,
        tokenizer: PairTokenizer,
        backend: Backend,
        options: ScoreOptions | None = None,
        batch_size: int = 32,
        max_batch_tokens: int = 16384,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if (
            isinstance(max_batch_tokens, bool)
            or not isinstance(max_batch_tokens, int)
            or max_batch_tokens < 1
        ):
            raise InvalidInputError(f"max_batch_tokens must be a positive integer, got {max_batch_tokens!r}")
        self.tokenizer = tokenizer
        self.backend = backend
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.options = self.check_options(options or ScoreOptions())

    def check_options(self, options: ScoreOptions) -> ScoreOptions:
        """Validate options, including lengths against the tokenizer (raises :class:`InvalidInputError`)."""
        if not isinstance(options, ScoreOptions):
            raise InvalidInputError(
                f"options must be a ScoreOptions, got {type(options).__name__}; build one with "
                "reranker.with_options(window=..., ...)"
            )
        options = options.validated()
        _, query_max_length = self.tokenizer.check_lengths(options.max_length, options.query_max_length)
        return replace(options, query_max_length=query_max_length)

    def score_pairs(
        self,
        pairs: Sequence,
        options: ScoreOptions | None = None,
        progress: Callable[[int, int], None] | None = None,
        batch_size: int | None = None,
        encoded: Sequence[EncodedText] | None = None,
    ) -> list[PairScore]:
        """Score pairs in input order. ``progress(rows_done, rows_total)`` is called after each batch;
        ``batch_size`` overrides the engine's rows-per-batch for this call. ``encoded``: the documents
        already tokenized with ``self.tokenizer.encode`` (one per pair, e.g. by the server, which counts
        tokens at admission), so they are not tokenized twice."""
        opts = self.check_options(options) if options is not None else self.options
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise InvalidInputError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        checked = validate_pairs(pairs, opts.max_document_chars)
        if encoded is not None and len(encoded) != len(checked):
            raise InvalidInputError(
                f"{len(encoded)} encoded documents for {len(checked)} pairs: pass one encoding per pair "
                "(from engine.tokenizer.encode of the documents, in order), or encoded=None"
            )
        features, layouts, encoded = self._features(checked, opts, encoded)
        logits = self._run(features, progress, batch_size or self.batch_size)
        return self._collect(features, logits, layouts, encoded, checked, opts.aggregate)

    def _features(self, pairs: list[tuple[str, str]], opts: ScoreOptions, encoded=None):
        tok = self.tokenizer
        queries = {q: self._query_ids(q, opts) for q in dict.fromkeys(q for q, _ in pairs)}
        if encoded is None:
            encoded = tok.encode([d for _, d in pairs])
        features: list[_Feature] = []
        layouts: list[tuple[list[tuple[int, int]], bool]] = []
        check_readable(encoded)
        for i, ((query, _), doc) in enumerate(zip(pairs, encoded, strict=True)):
            q_ids = queries[query]
            spans, truncated = self._windows(q_ids, doc, opts)
            layouts.append((spans, truncated))
            for w, (start, end) in enumerate(spans):
                ids, types = tok.build(q_ids, doc.ids[start:end])
                features.append(_Feature(i, w, ids, types))
        return features, layouts, encoded

    def _query_ids(self, query: str, opts: ScoreOptions) -> tuple[int, ...]:
        ids = self.tokenizer.encode_query(query, opts.query_max_length)
        if not ids:  # only zero-width or control characters: the model would see no query at all
            raise InvalidInputError(
                f"the query {query!r:.40} has no text the model can read (only invisible or control "
                "characters); pass non-blank text"
            )
        return ids

    def _windows(self, q_ids: Sequence[int], doc: EncodedText, opts: ScoreOptions):
        """The windows of one document beside this query (``plan_windows``' ranges and truncated flag)."""
        budget = self.tokenizer.passage_budget(q_ids, opts.max_length)
        window = min(opts.window or budget, budget)
        stride = min(opts.stride, window) if opts.stride else None
        # "first" looks at the first window only, so scoring the others would be wasted work.
        truncate = opts.truncate or ("right" if opts.aggregate == "first" else None)
        return plan_windows(len(doc.ids), window, stride, opts.max_windows, truncate)

    def model_tokens(
        self, query: str, encoded: Sequence[EncodedText], options: ScoreOptions | None = None
    ) -> int:
        """Tokens the model reads to score the documents ``encoded`` (``self.tokenizer.encode``) against
        ``query``: every window counts, each with the query and the template's special tokens, exactly
        as :meth:`score_pairs` builds them. What the server reports as usage and budgets batches by. Raises
        :class:`InvalidInputError` where :meth:`score_pairs` would (a text with no token the model reads)."""
        opts = self.check_options(options) if options is not None else self.options
        check_readable(encoded)
        q_ids = self._query_ids(query, opts)
        fixed = len(q_ids) + self.tokenizer.template.n_special
        return sum(
            fixed + end - start for doc in encoded for start, end in self._windows(q_ids, doc, opts)[0]
        )

    def _run(self, features: list[_Feature], progress, batch_size: int) -> np.ndarray:
        # Longest first: memory problems surface on the first batch, and padding within a batch is minimal.
        order = sorted(range(len(features)), key=lambda i: (-len(features[i].ids), i))
        lengths = [len(features[i].ids) for i in order]
        logits = np.empty(len(features), dtype=np.float32)
        for batch_positions in plan_batches(lengths, batch_size, self.max_batch_tokens):
            rows = [features[order[p]] for p in batch_positions]
            out = self._forward(rows)
            for p, value in zip(batch_positions, out, strict=True):
                logits[order[p]] = value
            if progress is not None:
                progress(len(rows), len(features))
        return logits

    def _forward(self, rows: list[_Feature]) -> np.ndarray:
        width = max(len(r.ids) for r in rows)
        input_ids = np.full((len(rows), width), self.tokenizer.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64) if self.tokenizer.uses_token_types else None
        for r, row in enumerate(rows):
            input_ids[r, : len(row.ids)] = row.ids
            mask[r, : len(row.ids)] = 1
            if types is not None:
                types[r, : len(row.types)] = row.types
        try:
            out = np.asarray(
                self.backend.forward(Batch(input_ids, mask, types)), dtype=np.float32
            ).reshape(-1)
        except BackendError:
            raise
        except Exception as exc:  # a backend failure must surface as one clear error type
            raise BackendError(
                f"{self.backend.name} forward pass failed on a batch of {input_ids.shape}: {exc}"
            ) from exc
        if out.shape[0] != len(rows):
            raise BackendError(f"{self.backend.name} returned {out.shape[0]} logits for {len(rows)} rows")
        if not np.isfinite(out).all():
            raise BackendError(
                f"{self.backend.name} ({self.backend.dtype}) produced NaN/inf logits; "
                "the model weights or the dtype are broken — try dtype='fp32'"
            )
        return out

    def _collect(
        self, features, logits, layouts, encoded: list[EncodedText], pairs, mode: str
    ) -> list[PairScore]:
        per_pair: list[list[float]] = [[] for _ in pairs]
        for feature, value in zip(features, logits, strict=True):
            per_pair[feature.pair].append(float(value))
        results = []
        for i, window_logits in enumerate(per_pair):
            spans, truncated = layouts[i]
            value, best = aggregate(window_logits, mode)
            start, end = spans[best]
            offsets, text = encoded[i].offsets, pairs[i][1]
            # Characters the tokenizer normalises away (a combining mark, a zero-width space) belong to
            # no token but are still covered: the last window runs to the text's end, another up to the
            # next token less the blanks before it ("cafe\u0301", not "cafe" cut from its accent).
            last = len(text) if end == len(offsets) else _gap_end(text, offsets[end - 1][1], offsets[end][0])
            chars = (offsets[start][0], last)
            results.append(
                PairScore(
                    logit=value,
                    window=WindowSpan(index=best, start=chars[0], end=chars[1], count=len(spans)),
                    truncated=truncated,
                    n_tokens=len(encoded[i].ids),
                )
            )
        return results
