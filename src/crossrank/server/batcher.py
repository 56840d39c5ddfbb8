"""Cross-request dynamic batching.

Requests wait in a bounded queue (full → :class:`OverloadedError`). One loop takes the oldest request,
gathers more until a token budget is reached or the oldest has waited ``max_wait_ms``, groups them by
:class:`~crossrank.scoring.ScoreOptions` and scores each group with one engine call on a single worker
thread, off the event loop. A failed call fails every request in it; requests whose caller went away
are dropped before compute; on shutdown or a crash of the loop every waiting request is failed, so no
caller waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import BackendError, CrossrankError
from ..scoring import ScoreOptions
from ..types import PairScore
from .metrics import Metrics

logger = logging.getLogger(__name__)

# score(pairs, options, encoded): ``encoded`` is the documents' encodings when every request of the batch
# brought them (tokenized at admission), else None.
ScoreFn = Callable[[list[tuple[str, str]], ScoreOptions, list | None], Sequence[PairScore]]


class OverloadedError(CrossrankError):
    """The queue is full; the client should retry later (HTTP 429)."""


class UnavailableError(CrossrankError):
    """The model cannot serve this request now: shutting down, crashed, or timed out (HTTP 503)."""


@dataclass(eq=False)
class Job:
    """One request's pairs on their way through the queue; ``future`` resolves to its scores."""

    pairs: list[tuple[str, str]]
    options: ScoreOptions
    tokens: int
    future: asyncio.Future
    enqueued: float
    encoded: list | None = None  # the documents' encodings, when the request was tokenized at admission
    started: float = 0.0
    finished: float = 0.0
    batch_requests: int = 0


@dataclass
class _State:
    queue: asyncio.Queue
    executor: ThreadPoolExecutor
    task: asyncio.Task | None = None
    inflight: list[Job] = field(default_factory=list)
    carry: Job | None = None


class Batcher:
    """Batches requests from concurrent clients into token-budget engine calls."""

    def __init__(
        self,
        score: ScoreFn,
        *,
        token_budget: int = 32768,
        max_wait_ms: float = 5.0,
        max_queue: int = 64,
        metrics: Metrics | None = None,
    ):
        self.score = score
        self.token_budget = token_budget
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.metrics = metrics or Metrics()
        self._state: _State | None = None
        self._admitted = 0  # requests between admit() and submit(): they hold places in the queue
        self.failure: str | None = None

    @property
    def running(self) -> bool:
        return self._state is not None and self._state.task is not None and not self._state.task.done()

    async def start(self) -> None:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crossrank-model")
        self._state = _State(asyncio.Queue(maxsize=self.max_queue), executor)
        self._state.task = asyncio.create_task(self._loop(), name="crossrank-batcher")

    async def stop(self) -> None:
        state = self._state
        if state is None:
            return
        if state.task is not None:
            state.task.cancel()
            await asyncio.gather(state.task, return_exceptions=True)
        self._fail_waiting(UnavailableError("the server is shutting down; retry on another instance"))
        state.executor.shutdown(wait=False, cancel_futures=True)

    def check_room(self) -> None:
        """Raise what :meth:`submit` would raise now (not running: 503; the queue and the admitted
        requests fill ``max_queue``: 429)."""
        if not self.running:
            raise UnavailableError(self.failure or "the model is not running; retry shortly")
        if self._state.queue.qsize() + self._admitted >= self.max_queue:
            self._refuse()

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a place in the queue while a request is prepared (tokenized) for :meth:`submit`, so that
        overload is refused before that work: concurrent arrivals cannot all pass a bare check."""
        self.check_room()
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    def _refuse(self):
        self.metrics.rejected.inc()
        raise OverloadedError(
            f"the server is overloaded: {self.max_queue} requests are already waiting (max_queue); "
            "retry after a short delay"
        )

    @property
    def waiting(self) -> int:
        """Requests queued or being scored now (0 when idle: no work is left behind)."""
        state = self._state
        if state is None:
            return 0
        pending = [job for job in state.inflight if not job.future.done()]
        carry = 1 if state.carry is not None and not state.carry.future.done() else 0
        return state.queue.qsize() + len(pending) + carry

    def submit(
        self, pairs: list[tuple[str, str]], options: ScoreOptions, tokens: int, encoded: list | None = None
    ) -> Job:
        """Queue a request's pairs; await ``job.future`` for their scores (in order). Inside
        :meth:`admit`, the request's own place is the one it holds. ``encoded``: the documents' encodings
        (one per pair), handed to the score function so they are not tokenized again."""
        if not self.running:
            raise UnavailableError(self.failure or "the model is not running; retry shortly")
        loop = asyncio.get_running_loop()
        job = Job(pairs, options, tokens, loop.create_future(), loop.time(), encoded)
        try:
            self._state.queue.put_nowait(job)
        except asyncio.QueueFull:
            self._refuse()
        self.metrics.queue_depth.set(self._state.queue.qsize())
        return job

    async def _loop(self) -> None:
        state = self._state
        try:
            while True:
                first = state.carry or await state.queue.get()
                state.carry = None
                batch, state.carry = await self._gather(first)
                self.metrics.queue_depth.set(state.queue.qsize())
                await self._run(batch)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not leave callers waiting: fail them, report unhealthy
            logger.exception("the batching loop crashed; failing every waiting request")
            self.failure = "the batching loop crashed; see the server log"
            self._fail_waiting(UnavailableError(self.failure))

    async def _gather(self, first: Job) -> tuple[list[Job], Job | None]:
        """Jobs to score together, and one that did not fit the budget (scored next)."""
        loop = asyncio.get_running_loop()
        queue = self._state.queue
        batch, tokens = [first], first.tokens
        deadline = first.enqueued + self.max_wait
        while tokens < self.token_budget:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            if job.future.done():
                self.metrics.cancelled.inc()
                continue
            if tokens + job.tokens > self.token_budget:
                return batch, job
            batch.append(job)
            tokens += job.tokens
        return batch, None

    async def _run(self, batch: list[Job]) -> None:
        live = [job for job in batch if not job.future.done()]
        if len(live) < len(batch):
            self.metrics.cancelled.inc(len(batch) - len(live))
        groups: dict[ScoreOptions, list[Job]] = {}
        for job in live:
            groups.setdefault(job.options, []).append(job)
        for options, jobs in groups.items():
            jobs = [job for job in jobs if not job.future.done()]  # cancelled while an earlier group ran
            if jobs:
                await self._run_group(options, jobs)

    async def _run_group(self, options: ScoreOptions, jobs: list[Job]) -> None:
        loop = asyncio.get_running_loop()
        pairs = [pair for job in jobs for pair in job.pairs]
        encoded = None if any(j.encoded is None for j in jobs) else [e for j in jobs for e in j.encoded]
        self._observe_batch(jobs, len(pairs))
        started = loop.time()
        self._state.inflight = jobs  # failed by _fail_waiting if we are cancelled while computing
        try:
            scores = await loop.run_in_executor(self._state.executor, self.score, pairs, options, encoded)
            if len(scores) != len(pairs):
                raise BackendError(f"the engine returned {len(scores)} scores for {len(pairs)} pairs")
        except Exception as exc:
            self._state.inflight = []
            self.metrics.batch_failures.inc()
            logger.error("engine call for %d requests (%d pairs) failed: %r", len(jobs), len(pairs), exc)
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        self._state.inflight = []
        finished = loop.time()
        self.metrics.batch_seconds.observe(finished - started)
        offset = 0
        for job in jobs:
            job.started, job.finished, job.batch_requests = started, finished, len(jobs)
            part = list(scores[offset : offset + len(job.pairs)])
            offset += len(job.pairs)
            if not job.future.done():
                job.future.set_result(part)

    def _observe_batch(self, jobs: list[Job], n_pairs: int) -> None:
        self.metrics.batch_requests.observe(len(jobs))
        self.metrics.batch_pairs.observe(n_pairs)
        self.metrics.batch_tokens.observe(sum(job.tokens for job in jobs))

    def _fail_waiting(self, error: Exception) -> None:
        state = self._state
        waiting = list(state.inflight) + ([state.carry] if state.carry else [])
        while not state.queue.empty():
            waiting.append(state.queue.get_nowait())
        state.carry, state.inflight = None, []
        for job in waiting:
            if not job.future.done():
                job.future.set_exception(error)
        self.metrics.queue_depth.set(0)
