"""Errors → HTTP, in one place: each error becomes its status and the error shape of the route's dialect.

Unexpected exceptions become a 500 with a generic message (details go to the log, never to the client).
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import BackendError, InputTooLargeError, InvalidInputError
from .auth import UnauthorizedError
from .batcher import OverloadedError, UnavailableError
from .dialects import RERANK, TEI, V1, V2, EmptyInputError, error_body
from .service import ClientGoneError

logger = logging.getLogger(__name__)

# Most specific first: (exception type, HTTP status, TEI error_type).
ERROR_MAP: tuple[tuple[type[BaseException], int, str], ...] = (
    (EmptyInputError, 400, "Empty"),
    (InputTooLargeError, 413, "Validation"),
    (InvalidInputError, 422, "Validation"),
    (UnauthorizedError, 401, "Unauthorized"),
    (OverloadedError, 429, "Overloaded"),
    (UnavailableError, 503, "Unhealthy"),
    (BackendError, 424, "Backend"),
)
CLIENT_CLOSED = 499
MAX_LISTED_ERRORS = 5


def dialect_of(request: Request, body=None) -> str:
    """The dialect whose error shape this request gets (set by the route once the body is parsed)."""
    dialect = getattr(request.state, "dialect", None)
    if dialect:
        return dialect
    path = request.url.path
    if path == "/v1/rerank":
        return V1
    if path == "/v2/rerank":
        return V2
    if path == "/rerank":
        return RERANK if isinstance(body, dict) and "documents" in body and "texts" not in body else TEI
    return RERANK


def error_response(dialect: str, status: int, kind: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    # A message may quote a field name from the body; a lone surrogate there has no UTF-8 form.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse(error_body(dialect, kind, message), status_code=status, headers=headers)


def describe_validation(exc: RequestValidationError, tagged: bool = False) -> str:
    """``body.texts: Field required; ...`` (locations and messages only, never the input values).
    ``tagged``: locations carry the body-kind tag of ``/rerank`` after ``body``; it is left out."""
    parts = []
    for error in exc.errors()[:MAX_LISTED_ERRORS]:
        loc = list(error.get("loc", ()))
        if tagged and len(loc) > 2 and loc[1] in ("tei", "documents"):
            del loc[1]
        location = ".".join(str(x) for x in loc)
        parts.append(f"{location}: {error.get('msg', 'invalid')}" if location else str(error.get("msg")))
    more = len(exc.errors()) - MAX_LISTED_ERRORS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def is_json(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` names JSON (``application/json`` or ``application/*+json``)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    body = exc.body
    content_type = request.headers.get("content-type")
    if isinstance(body, bytes) and body and not is_json(content_type):
        # FastAPI parses JSON only when the request says it is JSON (a guard against cross-site
        # requests); say so instead of reporting the body's fields as missing. 415, as TEI answers.
        return error_response(
            dialect_of(request),
            415,
            "Validation",
            f"send the body as JSON with the header 'Content-Type: application/json' "
            f"(got {'no Content-Type' if not content_type else repr(content_type)})",
        )
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    rerank = request.url.path == "/rerank"
    if rerank and isinstance(body, dict) and "texts" not in body and "documents" not in body:
        message = "invalid request: /rerank needs 'texts' (TEI) or 'documents' (Jina, Cohere, vLLM)"
    else:
        message = f"invalid request: {describe_validation(exc, tagged=rerank)}"
    return error_response(dialect_of(request, body), 422, "Validation", message)


async def _http_handler(request: Request, exc: StarletteHTTPException) -> Response:
    """The framework's own errors (unknown route, wrong method, a body it cannot parse) in the
    dialect's error shape, keeping their status and headers (``Allow`` on 405)."""
    if exc.status_code < 400 or exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    response = error_response(dialect_of(request), exc.status_code, "Validation", str(exc.detail))
    response.headers.update(exc.headers or {})
    return response


async def _crossrank_handler(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ClientGoneError):
        return Response(status_code=CLIENT_CLOSED)
    for kind_type, status, kind in ERROR_MAP:
        if isinstance(exc, kind_type):
            return error_response(dialect_of(request), status, kind, _message(exc, status))
    return await _unexpected_handler(request, exc)


def _message(exc: Exception, status: int) -> str:
    if status == 424:  # backend text may hold internals: keep it in the log
        return "the model failed on the batch holding this request; the error is in the server log"
    return str(exc)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(dialect_of(request), 500, "Internal", "internal server error; see the server log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    for kind_type in (*(entry[0] for entry in ERROR_MAP), ClientGoneError):
        app.add_exception_handler(kind_type, _crossrank_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
