"""Prometheus metrics on a per-app registry (never the process-global one), and the middleware that
counts requests per route and status."""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
TOKEN_BUCKETS = (64, 256, 1024, 4096, 16384, 32768, 65536, 131072, 262144)
SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))
METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """All of the server's metrics, registered on ``self.registry``."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "crossrank_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "crossrank_request_seconds",
            "HTTP request latency by route",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("crossrank_queue_depth", "requests waiting for the model", registry=r)
        self.rejected = Counter(
            "crossrank_rejected", "requests refused because the queue was full", registry=r
        )
        self.cancelled = Counter(
            "crossrank_cancelled", "requests dropped before compute (client gone)", registry=r
        )
        self.batch_requests = Histogram(
            "crossrank_batch_requests", "requests per engine call", buckets=SIZE_BUCKETS, registry=r
        )
        self.batch_pairs = Histogram(
            "crossrank_batch_pairs",
            "(query, document) pairs per engine call",
            buckets=SIZE_BUCKETS,
            registry=r,
        )
        self.batch_tokens = Histogram(
            "crossrank_batch_tokens", "tokens per engine call", buckets=TOKEN_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "crossrank_batch_seconds", "model time per engine call", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_failures = Counter("crossrank_batch_failures", "engine calls that failed", registry=r)
        self.scores = Histogram(
            "crossrank_score", "sigmoid relevance scores returned", buckets=SCORE_BUCKETS, registry=r
        )
        self.windowed = Counter(
            "crossrank_windowed_documents", "documents scored in several windows", registry=r
        )
        self.truncated = Counter(
            "crossrank_truncated_documents",
            "documents with tokens left unscored (truncate or max_windows)",
            registry=r,
        )
        self.threshold_drops = Counter(
            "crossrank_threshold_drops", "results dropped by a threshold", registry=r
        )

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: request count and latency per known route (others are ``other``)."""

    def __init__(self, app, metrics: Metrics, routes: frozenset[str]):
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"
        status = {"code": 500}
        start = time.perf_counter()

        async def capture(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            method = scope.get("method", "")
            method = method if method in METHODS else "other"
            self.metrics.requests.labels(route, method, str(status["code"])).inc()
            self.metrics.latency.labels(route, method).observe(time.perf_counter() - start)
