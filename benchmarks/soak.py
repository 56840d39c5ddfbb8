"""Soak under overload: ``crossrank serve`` driven at 10x its capacity for minutes, on loopback.

1. Start ``crossrank serve`` (embedded model) as a subprocess with a bounded queue (``--max-queue``)
   and a request timeout (``--request-timeout-s``).
2. Capacity: closed-loop clients (``--clients``, keep-alive) send Cohere v2 requests of ``--docs``
   ArguAna passages (real text, read in place) for ``--calibrate-s`` seconds: admitted requests/s.
3. Overload: an open-loop sender issues ``--factor`` x capacity requests/s for ``--duration`` seconds
   from up to ``--max-in-flight`` connections. Every status code is recorded; a request that gets no
   answer within ``request timeout + 10 s`` counts as a hang. The server's RSS (psutil, every 0.5 s) is
   compared with its RSS at the end of the calibration.
4. Recovery: right after the load stops (and its last answers are in), closed-loop clients again; the
   recovery time is the end of the first window (1 s, or the time of ~5 answers on a slow server) that
   reaches 90% of the calibrated throughput with only 200s.

Pass criteria (exit status 1 otherwise): only 200 and 429 during overload, no hang, p99 latency of
admitted (200) requests within the request timeout, recovery within ``--recovery-limit-s``.

Bounded: about calibrate + duration + recovery limit seconds, at most ``--max-requests`` overload
requests. Loopback only.

    python benchmarks/soak.py --duration 120 --json soak.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load import body, free_port, make_requests, percentile, read_texts, wait_ready  # noqa: E402

OK, OVERLOADED = 200, 429


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "crossrank.cli.main", "serve", "--model", args.model,
        "--host", "127.0.0.1", "--port", str(port), "--max-length", str(args.max_length),
        "--max-queue", str(args.max_queue), "--request-timeout-s", str(args.request_timeout_s),
        "--log-level", "error",
    ]
    env = {k: v for k, v in os.environ.items() if k != "CROSSRANK_API_KEY"}
    return wait_ready(subprocess.Popen(command, env=env), port)


class Sampler(threading.Thread):
    """The server process's RSS every ``interval`` seconds (psutil), until stopped."""

    def __init__(self, pid: int, interval: float = 0.5):
        import psutil

        super().__init__(daemon=True)
        self.process, self.interval = psutil.Process(pid), interval
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                rss = self.process.memory_info().rss
                rss += sum(c.memory_info().rss for c in self.process.children(recursive=True))
            except Exception:  # the process is gone: the caller reports that
                return
            self.samples.append((time.monotonic(), rss))
            self.done.wait(self.interval)

    def peak_between(self, start: float, end: float) -> int:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0)

    def last_before(self, moment: float) -> int:
        return next((rss for t, rss in reversed(self.samples) if t <= moment), 0)


def closed_loop(url: str, requests, clients: int, seconds: float, window: float = 1.0) -> dict:
    """``clients`` threads sending back to back for ``seconds``; per-``window`` counts of 200s/others
    (by completion time)."""
    start = time.monotonic()
    windows: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    latencies: list[float] = []
    lock = threading.Lock()

    def client(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            i = offset
            while time.monotonic() - start < seconds:
                query, docs = requests[i % len(requests)]
                i += clients
                sent = time.monotonic()
                try:
                    status = http.post("/v2/rerank", json=body(query, docs)).status_code
                except httpx.HTTPError:
                    status = -1
                now = time.monotonic()
                with lock:
                    windows[int((now - start) / window)][status] += 1
                    if status == OK:
                        latencies.append(now - sent)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - start
    ok = sum(w[OK] for w in windows.values())
    return {
        "seconds": wall,
        "ok": ok,
        "other": sum(sum(w.values()) - w[OK] for w in windows.values()),
        "ok_per_s": ok / wall,
        "p50_s": statistics.median(latencies) if latencies else None,
        "window_s": window,
        "windows": [dict(windows[i]) for i in range(max(windows) + 1)] if windows else [],
    }


def overload(url: str, requests, rate: float, args: argparse.Namespace) -> dict:
    """Open loop: one request every ``1/rate`` s for ``args.duration`` s (bounded by ``max_requests``);
    a request that finds every connection busy is counted as ``not_sent`` (client-side shedding)."""
    statuses: collections.Counter = collections.Counter()
    admitted: list[float] = []
    refused: list[float] = []
    hangs = 0
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(args.max_in_flight)
    hang_after = args.request_timeout_s + 10
    local = threading.local()

    def send(query: str, docs: list[str]) -> None:
        nonlocal hangs
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(base_url=url, timeout=hang_after)
        sent = time.monotonic()
        try:
            status = http.post("/v2/rerank", json=body(query, docs)).status_code
        except httpx.TimeoutException:
            status = "hang"
        except httpx.HTTPError as exc:
            status = f"transport:{type(exc).__name__}"
        finally:
            slots.release()
        elapsed = time.monotonic() - sent
        with lock:
            statuses[str(status)] += 1
            if status == OK:
                admitted.append(elapsed)
            elif status == OVERLOADED:
                refused.append(elapsed)
            elif status == "hang":
                hangs += 1

    start = time.monotonic()
    sent = not_sent = 0
    with ThreadPoolExecutor(args.max_in_flight) as pool:
        while time.monotonic() - start < args.duration and sent + not_sent < args.max_requests:
            due = start + (sent + not_sent) / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if not slots.acquire(blocking=False):
                not_sent += 1
                continue
            query, docs = requests[sent % len(requests)]
            pool.submit(send, query, docs)
            sent += 1
        sending = time.monotonic() - start
    wall = time.monotonic() - start
    return {
        "sending_seconds": sending,
        "seconds_with_drain": wall,
        "target_rate_per_s": rate,
        "sent": sent,
        "not_sent_all_connections_busy": not_sent,
        "statuses": dict(statuses),
        "hangs": hangs,
        "admitted": len(admitted),
        "admitted_per_s": len(admitted) / wall,
        "sent_per_s": sent / sending,
        "admitted_p50_s": statistics.median(admitted) if admitted else None,
        "admitted_p99_s": percentile(admitted, 0.99) if admitted else None,
        "refused_p99_s": percentile(refused, 0.99) if refused else None,
    }


def recovery_time(result: dict, capacity: float) -> float | None:
    """Seconds until the end of the first window with >= 90% of capacity and nothing but 200s."""
    window = result["window_s"]
    for i, counts in enumerate(result["windows"]):
        if counts.get(OK, 0) >= 0.9 * capacity * window and set(counts) <= {OK}:
            return (i + 1) * window
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--duration", type=float, default=120.0, help="overload seconds (default 120)")
    parser.add_argument("--factor", type=float, default=10.0, help="overload rate / measured capacity")
    parser.add_argument("--calibrate-s", type=float, default=15.0, help="capacity measurement seconds")
    parser.add_argument("--clients", type=int, default=4, help="closed-loop clients (capacity, recovery)")
    parser.add_argument("--docs", type=int, default=5, help="documents per request")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per pair (texts cut right)")
    parser.add_argument("--max-queue", type=int, default=8, help="the server's --max-queue")
    parser.add_argument("--request-timeout-s", type=float, default=30.0, help="the server's request timeout")
    parser.add_argument("--max-in-flight", type=int, default=128, help="overload connections at most")
    parser.add_argument("--max-requests", type=int, default=200_000, help="overload requests at most")
    parser.add_argument("--recovery-limit-s", type=float, default=30.0, help="recovery must happen by then")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    queries = read_texts("queries.jsonl.gz", 200)
    passages = read_texts("corpus.jsonl.gz", 1000)
    requests = make_requests(queries, passages, args.docs, 500)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(args, port)
    sampler = Sampler(server.pid)
    sampler.start()
    try:
        closed_loop(url, requests, 1, 2.0)  # warm-up
        calibration = closed_loop(url, requests, args.clients, args.calibrate_s)
        capacity = calibration["ok_per_s"]
        if capacity <= 0:
            raise SystemExit(f"no request succeeded while measuring capacity: {calibration}")
        print(f"capacity: {capacity:.2f} requests/s", file=sys.stderr, flush=True)
        rss_before = sampler.last_before(time.monotonic())
        load_start = time.monotonic()
        load = overload(url, requests, args.factor * capacity, args)
        print(f"overload: {json.dumps(load)}", file=sys.stderr, flush=True)
        window = max(1.0, 5 / capacity)  # long enough for ~5 answers at full throughput
        after = closed_loop(url, requests, args.clients, args.recovery_limit_s, window)
        peak = sampler.peak_between(load_start, time.monotonic())
        alive = server.poll() is None
    finally:
        sampler.done.set()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    recovered = recovery_time(after, capacity)
    codes = {code for code in load["statuses"]}
    p99 = load["admitted_p99_s"]
    checks = {
        "only_200_and_429": codes <= {str(OK), str(OVERLOADED)},
        "no_hang": load["hangs"] == 0,
        "admitted_p99_within_timeout": p99 is not None and p99 <= args.request_timeout_s,
        "recovered": recovered is not None and recovered <= args.recovery_limit_s,
        "server_alive": alive,
    }
    results = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "cpu_count": os.cpu_count(),
        "capacity_requests_per_s": capacity,
        "calibration": {k: v for k, v in calibration.items() if k != "windows"},
        "overload": load,
        "rss_before_mb": rss_before / 2**20,
        "rss_peak_mb": peak / 2**20,
        "rss_peak_growth_mb": (peak - rss_before) / 2**20,
        "rss_end_mb": sampler.last_before(time.monotonic()) / 2**20,  # after the recovery run
        "recovery_s": recovered,
        "after": {k: v for k, v in after.items() if k != "windows"},
        "after_first_windows": after["windows"][:10],
        "checks": checks,
        "passed": all(checks.values()),
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
