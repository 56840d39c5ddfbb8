"""HTTP routes: the three rerank routes, health, readiness, info and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from .. import __version__
from ..reranker import Reranker
from .auth import Authenticator, UnauthorizedError
from .batcher import Batcher, UnavailableError
from .dialects import RERANK, TEI, V1, V2, documents_body, job_from_documents, job_from_tei, tei_body
from .http_errors import dialect_of
from .metrics import Metrics
from .schemas import AnyRerankRequest, DocumentsRequest, ErrorBody, Health, RerankResponse, TEIError, TEIRank
from .service import Outcome, RerankService
from .settings import ServerSettings

ROUTES = frozenset({"/rerank", "/v1/rerank", "/v2/rerank", "/health", "/ready", "/info", "/metrics"})


@dataclass
class ServerState:
    """Everything the routes use, kept on ``app.state.server`` (no module globals)."""

    settings: ServerSettings
    reranker: Reranker
    metrics: Metrics
    batcher: Batcher
    service: RerankService
    model_name: str


def server_of(request: Request) -> ServerState:
    state = getattr(request.app.state, "server", None)
    if state is None:
        raise UnavailableError("the model is still loading; retry shortly")
    return state


_bearer = HTTPBearer(auto_error=False, description="the server's API key, when one is configured")


async def require_key(request: Request, _: Annotated[Any, Depends(_bearer)] = None) -> None:
    authenticator: Authenticator = request.app.state.auth
    try:
        authenticator.check(request.headers.get("authorization"))
    except UnauthorizedError:
        if request.url.path == "/rerank":  # its error shape depends on the body, which FastAPI has read
            try:
                body = await request.json()
            except ValueError:
                body = None
            request.state.dialect = dialect_of(request, body)
        raise


Server = Annotated[ServerState, Depends(server_of)]
Authorized = Depends(require_key)
DOCS_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 413, 422, 424, 429, 503)
}
TEI_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": TEIError} for code in (400, 401, 413, 422, 424, 429, 503)
}

router = APIRouter()


def _disconnected(request: Request):
    async def wait() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return wait


def _tei_headers(outcome: Outcome) -> dict[str, str]:
    ms = lambda seconds: str(round(seconds * 1000))  # noqa: E731 - TEI reports whole milliseconds
    return {
        "x-compute-time": ms(outcome.total),
        "x-compute-characters": str(outcome.characters),
        "x-compute-tokens": str(outcome.tokens),
        "x-total-time": ms(outcome.total),
        "x-tokenization-time": ms(outcome.tokenization),
        "x-queue-time": ms(outcome.queue),
        "x-inference-time": ms(outcome.inference),
    }


async def _documents(
    request: Request, server: ServerState, body: DocumentsRequest, dialect: str, default: bool
):
    request.state.dialect = dialect
    job = job_from_documents(body, dialect, default, server.settings.max_length)
    outcome = await server.service.run(job, _disconnected(request))
    payload = documents_body(job, outcome.results, server.model_name, outcome.tokens, outcome.threshold)
    return JSONResponse(payload)


@router.post(
    "/rerank",
    dependencies=[Authorized],
    response_model=list[TEIRank] | RerankResponse,
    responses=TEI_ERRORS,
    summary="Rerank: TEI body (with `texts`) or Jina/vLLM body (with `documents`)",
)
async def rerank(request: Request, server: Server, body: AnyRerankRequest):
    if isinstance(body, DocumentsRequest):
        return await _documents(request, server, body, RERANK, server.settings.rerank_return_documents)
    request.state.dialect = TEI
    job = job_from_tei(body)
    outcome = await server.service.run(job, _disconnected(request))
    return JSONResponse(tei_body(job, outcome.results), headers=_tei_headers(outcome))


@router.post(
    "/v1/rerank",
    dependencies=[Authorized],
    response_model=RerankResponse,
    responses=DOCS_ERRORS,
    summary="Rerank: Cohere v1 and Jina",
)
async def rerank_v1(request: Request, server: Server, body: DocumentsRequest):
    return await _documents(request, server, body, V1, server.settings.v1_return_documents)


@router.post(
    "/v2/rerank",
    dependencies=[Authorized],
    response_model=RerankResponse,
    responses=DOCS_ERRORS,
    summary="Rerank: Cohere v2 (legacy v1 fields accepted)",
)
async def rerank_v2(request: Request, server: Server, body: DocumentsRequest):
    return await _documents(request, server, body, V2, server.settings.v2_return_documents)


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": ErrorBody}}, summary="Readiness")
async def ready(request: Request) -> Health:
    server = server_of(request)
    if not server.batcher.running:
        raise UnavailableError(server.batcher.failure or "the batcher is not running")
    return Health(status="ready")


@router.get(
    "/info", dependencies=[Authorized], responses={401: {"model": ErrorBody}}, summary="Model and limits"
)
async def info(server: Server) -> dict[str, Any]:
    s = server.settings
    limits = {
        name: getattr(s, name)
        for name in (
            "max_documents",
            "max_document_chars",
            "max_body_bytes",
            "max_header_bytes",
            "max_queue",
            "batch_token_budget",
            "max_wait_ms",
            "request_timeout_s",
        )
    }
    return {
        "version": __version__,
        "served_model_name": server.model_name,
        **server.reranker.info(),
        "limits": limits,
        "auth": s.api_key is not None,
    }


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    data, content_type = request.app.state.metrics.exposition()
    return Response(data, media_type=content_type)
