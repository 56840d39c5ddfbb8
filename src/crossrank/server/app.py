"""``create_app(settings, reranker=None)``: the FastAPI application.

The model is loaded (when not given) and the batcher started in the app's lifespan; all state lives on
``app.state``. Request bodies larger than ``max_body_bytes`` are refused before they are parsed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from ..reranker import Reranker
from .auth import Authenticator
from .batcher import Batcher
from .http_errors import install_error_handlers
from .metrics import Metrics, MetricsMiddleware
from .routes import ROUTES, ServerState, router
from .service import RerankService
from .settings import ServerSettings

logger = logging.getLogger(__name__)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def load_reranker(settings: ServerSettings) -> Reranker:
    """The model the settings name (blocking: call it off the event loop)."""
    return Reranker(settings.model, **settings.model_kwargs())


def create_app(settings: ServerSettings | None = None, reranker: Reranker | None = None) -> FastAPI:
    """Build the server. ``reranker`` (e.g. with a fake backend in tests) skips loading ``settings.model``."""
    settings = settings or ServerSettings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        model = reranker if reranker is not None else await asyncio.to_thread(load_reranker, settings)
        batcher = Batcher(
            lambda pairs, options, encoded: model.score_pairs(pairs, options, encoded=encoded),
            token_budget=settings.batch_token_budget,
            max_wait_ms=settings.max_wait_ms,
            max_queue=settings.max_queue,
            metrics=metrics,
        )
        await batcher.start()
        app.state.server = ServerState(
            settings=settings,
            reranker=model,
            metrics=metrics,
            batcher=batcher,
            service=RerankService(model, batcher, settings, metrics),
            model_name=settings.served_model_name or model.model.name,
        )
        logger.info("serving %s (%s)", app.state.server.model_name, model.backend.name)
        try:
            yield
        finally:
            await batcher.stop()
            app.state.server = None

    app = FastAPI(
        title="crossrank",
        version=__version__,
        description="Cross-encoder reranking with TEI, Cohere v1/v2, Jina and vLLM compatible routes.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.auth = Authenticator(settings.api_key)
    app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeaderLimitMiddleware, max_bytes=settings.max_header_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=ROUTES)
    return app


class HeaderLimitMiddleware:
    """Refuses requests whose headers total more than ``max_bytes`` (431). uvicorn's httptools parser
    accepts headers of any size, so the limit is kept here, for every server that runs the app."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope.get("headers") or ())
            if size > self.max_bytes:
                message = (
                    f"the request headers total {size:,} bytes, over max_header_bytes={self.max_bytes:,}; "
                    "send shorter headers (cookies, tokens)"
                )
                await _refuse(send, 431, message)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Reads request bodies up to ``max_bytes`` (413 beyond), refuses JSON bodies that are not UTF-8
    (422: RFC 8259 requires it, and Python's decoder would otherwise guess UTF-16 or pass encoded
    surrogates through), then hands the body on in one piece."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(send, 413, self._too_large())
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = _not_utf8_json(body, headers.get(b"content-type", b""))
        if problem:
            await _refuse(send, 422, problem, close=False)  # the body was read: the connection stays usable
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> str:
        return (
            f"the request body is larger than max_body_bytes={self.max_bytes:,} bytes; "
            "send fewer or shorter documents per request"
        )


def _not_utf8_json(body: bytes, content_type: bytes) -> str | None:
    """Why a JSON body (``application/json``, ``*+json`` or no content type) is not UTF-8, or None."""
    kind = content_type.split(b";")[0].strip().lower()
    if kind and not (kind == b"application/json" or kind.endswith(b"+json")):
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"invalid request: the body is not valid UTF-8 at byte {exc.start} "
            f"({body[exc.start : exc.start + 4].hex(' ')}); JSON must be sent as UTF-8"
        )
    return None


async def _refuse(send, status: int, message: str, close: bool = True) -> None:
    """An error answered before the body is parsed; the dialect cannot be told without the body, so
    this shape satisfies TEI and Cohere/Jina clients alike. ``close``: the body was not read."""
    kind = "Validation"
    body = {"error": message, "error_type": kind, "message": message, "detail": message, "type": kind}
    payload = json.dumps(body).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes, receive):
    """A ``receive`` that yields the buffered body once, then defers to the real one (disconnects)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
