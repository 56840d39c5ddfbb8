"""The dialect-free rerank path: check limits, count tokens, queue for the batcher, wait, rank."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..errors import InputTooLargeError, InvalidInputError
from ..reranker import Reranker, rank
from ..scoring import ScoreOptions, check_text
from ..thresholds import resolve_threshold, sigmoid
from ..types import RerankResult
from .batcher import Batcher, Job, UnavailableError
from .dialects import RerankJob
from .metrics import Metrics
from .settings import ServerSettings

logger = logging.getLogger(__name__)


class ClientGoneError(Exception):
    """The client disconnected before its scores were ready; nothing is sent."""


@dataclass
class Outcome:
    """Ranked results plus what the response headers and ``usage`` report (times in seconds)."""

    results: list[RerankResult]
    tokens: int
    characters: int
    threshold: float | None
    tokenization: float
    queue: float
    inference: float
    total: float


class RerankService:
    """Runs :class:`RerankJob` objects through the shared batcher."""

    def __init__(self, reranker: Reranker, batcher: Batcher, settings: ServerSettings, metrics: Metrics):
        self.reranker, self.batcher, self.settings, self.metrics = reranker, batcher, settings, metrics
        self._options: dict[tuple, ScoreOptions] = {}

    def options_for(self, overrides: dict) -> ScoreOptions:
        """Validated options for a request (cached: few distinct combinations are ever seen)."""
        key = tuple(sorted(overrides.items()))
        options = self._options.get(key)
        if options is None:
            try:
                options = self.reranker.with_options(**overrides)
            except InvalidInputError as exc:
                raise InvalidInputError(f"invalid window/truncation settings: {exc}") from None
            if len(self._options) < 1024:
                self._options[key] = options
        return options

    def check_limits(self, job: RerankJob) -> None:
        s = self.settings
        if len(job.texts) > s.max_documents:
            raise InputTooLargeError(
                f"the request has {len(job.texts)} documents, over max_documents={s.max_documents}; "
                "split it into several requests"
            )
        check_text(job.query, "query")
        if len(job.query) > s.max_document_chars:
            raise InputTooLargeError(
                f"the query has {len(job.query):,} characters, "
                f"over max_document_chars={s.max_document_chars:,}"
            )
        for i, text in enumerate(job.texts):
            check_text(text, f"document {i}")
            if len(text) > s.max_document_chars:
                raise InputTooLargeError(
                    f"document {i} has {len(text):,} characters, over max_document_chars="
                    f"{s.max_document_chars:,}; split it into chunks"
                )

    def count_tokens(self, job: RerankJob, options: ScoreOptions) -> tuple[int, list]:
        """Tokens the request puts through the model (every window with its copy of the query and the
        template), and the documents' encodings, which the engine then uses instead of tokenizing them
        again."""
        engine = self.reranker.engine
        documents = engine.tokenizer.encode(job.texts)
        # model_tokens refuses unreadable texts here, not in the shared batch, where they would fail others
        return engine.model_tokens(job.query, documents, options), documents

    async def run(self, job: RerankJob, disconnected: Callable[[], Awaitable]) -> Outcome:
        """Score and rank ``job``; ``disconnected()`` returns an awaitable that ends if the client leaves."""
        start = time.perf_counter()
        options = self.options_for(job.overrides)
        self.check_limits(job)
        with self.batcher.admit():  # overload is refused before it costs tokenization
            tokens, encoded = await asyncio.to_thread(self.count_tokens, job, options)
            tokenized = time.perf_counter()
            queued = self.batcher.submit([(job.query, t) for t in job.texts], options, tokens, encoded)
        scored = await self._wait(queued, disconnected)
        results, threshold = self._rank(job, scored)
        end = time.perf_counter()
        return Outcome(
            results=results,
            tokens=tokens,
            characters=len(job.query) * len(job.texts) + sum(len(t) for t in job.texts),
            threshold=threshold,
            tokenization=tokenized - start,
            queue=max(0.0, queued.started - queued.enqueued),
            inference=queued.finished - queued.started,
            total=end - start,
        )

    async def _wait(self, queued: Job, disconnected: Callable[[], Awaitable]) -> list:
        watcher = asyncio.ensure_future(disconnected())
        try:
            done, _ = await asyncio.wait(
                {queued.future, watcher},
                timeout=self.settings.request_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            watcher.cancel()
        if queued.future in done:
            return queued.future.result()
        queued.future.cancel()  # the batcher drops it if it has not started yet
        if watcher in done:
            raise ClientGoneError()
        raise UnavailableError(
            f"no result after request_timeout_s={self.settings.request_timeout_s:g}s; the server is too busy"
        )

    def _rank(self, job: RerankJob, scored: list) -> tuple[list[RerankResult], float | None]:
        normalised = [sigmoid(s.logit) for s in scored]
        applied = resolve_threshold(job.threshold, normalised)
        kept = rank(scored, job.texts, threshold=job.threshold, return_documents=False)
        self._observe(scored, normalised, dropped=len(scored) - len(kept))
        if job.top_n:
            kept = kept[: job.top_n]
        return kept, applied

    def _observe(self, scored: list, normalised: list[float], dropped: int) -> None:
        m = self.metrics
        for item, value in zip(scored, normalised, strict=True):
            m.scores.observe(value)
            if item.window.count > 1:
                m.windowed.inc()
            if item.truncated:
                m.truncated.inc()
        if dropped:
            m.threshold_drops.inc(dropped)
