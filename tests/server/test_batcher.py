"""The batcher on its own: token budgets, option groups, cancellation, failures, backpressure, shutdown."""

from __future__ import annotations

import asyncio
import threading

import pytest

from crossrank.errors import BackendError
from crossrank.scoring import ScoreOptions
from crossrank.server.batcher import Batcher, OverloadedError, UnavailableError

OPTIONS = ScoreOptions()


class Recorder:
    """A score function that records each call and scores a pair by its document's length."""

    def __init__(self, gate: threading.Event | None = None, fail: bool = False, short: bool = False):
        self.calls: list[list[tuple[str, str]]] = []
        self.options: list[ScoreOptions] = []
        self.gate, self.fail, self.short = gate, fail, short

    def __call__(self, pairs, options, encoded=None):
        self.calls.append(list(pairs))
        self.options.append(options)
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise BackendError("boom")
        scores = [float(len(d)) for _, d in pairs]
        return scores[:-1] if self.short else scores


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_token_budget_and_results_in_order():
    async def main():
        score = Recorder()
        batcher = Batcher(score, token_budget=100, max_wait_ms=100, max_queue=10)
        await batcher.start()
        jobs = [batcher.submit([("q", "d" * (i + 1)), ("q", "x")], OPTIONS, tokens=40) for i in range(5)]
        results = await asyncio.gather(*(job.future for job in jobs))
        await batcher.stop()
        return score, results

    score, results = run(main())
    assert results == [[float(i + 1), 1.0] for i in range(5)]
    assert [len(call) for call in score.calls] == [4, 4, 2]  # two 40-token requests fit a 100-token budget


def test_options_are_grouped_into_separate_calls():
    async def main():
        score = Recorder()
        batcher = Batcher(score, token_budget=1000, max_wait_ms=100, max_queue=10)
        await batcher.start()
        other = ScoreOptions(truncate="right")
        jobs = [batcher.submit([("q", "d")], OPTIONS if i % 2 else other, tokens=1) for i in range(4)]
        await asyncio.gather(*(job.future for job in jobs))
        await batcher.stop()
        return score

    score = run(main())
    assert len(score.calls) == 2 and {o.truncate for o in score.options} == {None, "right"}


def test_cancelled_request_is_dropped_before_compute():
    async def main():
        gate = threading.Event()
        score = Recorder(gate)
        batcher = Batcher(score, token_budget=10, max_wait_ms=0, max_queue=10)
        await batcher.start()
        first = batcher.submit([("q", "first")], OPTIONS, tokens=10)
        await asyncio.sleep(0.05)  # the first is computing
        gone = batcher.submit([("q", "gone")], OPTIONS, tokens=1)
        kept = batcher.submit([("q", "kept")], OPTIONS, tokens=1)
        gone.future.cancel()
        gate.set()
        await asyncio.gather(first.future, kept.future)
        await batcher.stop()
        return score, batcher

    score, batcher = run(main())
    seen = [d for call in score.calls for _, d in call]
    assert "gone" not in seen and seen == ["first", "kept"]
    assert batcher.metrics.cancelled._value.get() == 1


def test_failed_batch_fails_every_request_in_it():
    async def main():
        batcher = Batcher(Recorder(fail=True), token_budget=1000, max_wait_ms=50, max_queue=10)
        await batcher.start()
        jobs = [batcher.submit([("q", "d")], OPTIONS, tokens=1) for _ in range(3)]
        outcomes = await asyncio.gather(*(job.future for job in jobs), return_exceptions=True)
        still_running = batcher.running
        await batcher.stop()
        return outcomes, still_running

    outcomes, still_running = run(main())
    assert all(isinstance(o, BackendError) for o in outcomes) and still_running


def test_wrong_number_of_scores_is_an_error():
    async def main():
        batcher = Batcher(Recorder(short=True), token_budget=1000, max_wait_ms=0, max_queue=10)
        await batcher.start()
        job = batcher.submit([("q", "a"), ("q", "b")], OPTIONS, tokens=1)
        outcome = await asyncio.gather(job.future, return_exceptions=True)
        await batcher.stop()
        return outcome[0]

    error = run(main())
    assert isinstance(error, BackendError) and "1 scores for 2 pairs" in str(error)


def test_full_queue_refuses_and_stop_fails_waiting():
    async def main():
        gate = threading.Event()
        batcher = Batcher(Recorder(gate), token_budget=1, max_wait_ms=0, max_queue=2)
        await batcher.start()
        computing = batcher.submit([("q", "a")], OPTIONS, tokens=1)
        await asyncio.sleep(0.05)
        waiting = [batcher.submit([("q", "b")], OPTIONS, tokens=1) for _ in range(2)]
        with pytest.raises(OverloadedError, match="max_queue"):
            batcher.submit([("q", "c")], OPTIONS, tokens=1)
        await batcher.stop()
        gate.set()
        outcomes = await asyncio.gather(
            computing.future, *(j.future for j in waiting), return_exceptions=True
        )
        with pytest.raises(UnavailableError):
            batcher.submit([("q", "d")], OPTIONS, tokens=1)
        return outcomes

    outcomes = run(main())
    assert all(isinstance(o, UnavailableError) for o in outcomes)


def test_check_room_refuses_before_any_work_and_waiting_counts_jobs():
    async def main():
        gate = threading.Event()
        batcher = Batcher(Recorder(gate), token_budget=1, max_wait_ms=0, max_queue=1)
        await batcher.start()
        batcher.check_room()  # room: no error
        computing = batcher.submit([("q", "a")], OPTIONS, tokens=1)
        await asyncio.sleep(0.05)
        with batcher.admit():  # holds the one place
            with pytest.raises(OverloadedError, match="max_queue"):
                batcher.check_room()
            queued = batcher.submit([("q", "b")], OPTIONS, tokens=1)
        assert batcher.waiting == 2  # one being scored, one queued
        with pytest.raises(OverloadedError, match="max_queue"):
            batcher.check_room()
        rejected = batcher.metrics.rejected._value.get()
        gate.set()
        await asyncio.gather(computing.future, queued.future)
        assert batcher.waiting == 0
        batcher.check_room()
        await batcher.stop()
        with pytest.raises(UnavailableError):
            batcher.check_room()
        return rejected

    assert run(main()) == 2


@pytest.mark.timeout(60)
def test_overload_is_refused_before_tokenization(make_server, fake_reranker):
    """With the queue full, a request is answered 429 without its texts being tokenized."""
    import concurrent.futures

    import httpx

    from .fakes import FakeBackend

    with make_server(FakeBackend(delay=0.5), max_queue=1, max_wait_ms=0, batch_token_budget=64) as live:
        service = live.server.config.app.state.server.service
        counted: list[int] = []
        original = service.count_tokens

        def counting(job, options):
            counted.append(len(job.texts))
            return original(job, options)

        service.count_tokens = counting

        def call(i):
            with httpx.Client(base_url=live.url, timeout=30) as c:
                return c.post("/v2/rerank", json={"query": f"q{i}", "documents": ["paris"] * (i + 1)})

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            statuses = [r.status_code for r in pool.map(call, range(10))]
    assert set(statuses) <= {200, 429} and statuses.count(429) >= 5
    assert len(counted) == statuses.count(200), "refused requests were tokenized"
