"""Translate each dialect's request into one :class:`RerankJob`, and results back into its response.

Dialects: ``tei`` (``/rerank`` with ``texts``), ``v1`` (Cohere v1 and Jina on ``/v1/rerank``), ``v2``
(Cohere v2) and ``rerank`` (Jina/vLLM bodies on ``/rerank``). The Cohere/Jina/vLLM routes answer with one
superset body (``id``, ``model``, ``usage``, ``results``, ``meta``) that each of their clients accepts.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from .schemas import DocumentObject, DocumentsRequest, Extensions, TEIRequest

TEI, V1, V2, RERANK = "tei", "v1", "v2", "rerank"
API_VERSIONS = {V1: "1", V2: "2", RERANK: "1"}
DOCS_PER_SEARCH_UNIT = 100


class EmptyInputError(InvalidInputError):
    """No documents to rank (TEI's ``Empty``, HTTP 400)."""


@dataclass
class RerankJob:
    """A rerank request in dialect-free terms."""

    dialect: str
    query: str
    texts: list[str]
    documents: list[dict[str, Any]]
    overrides: dict[str, Any] = field(default_factory=dict)
    top_n: int | None = None
    threshold: float | str | None = None
    raw_scores: bool = False
    return_documents: bool = False
    return_windows: bool = False


def _side(value: str) -> str:
    return value.lower()


def extension_overrides(ext: Extensions) -> dict[str, Any]:
    """ScoreOptions fields set by crossrank's window extensions."""
    names = ("window", "stride", "max_windows", "aggregate")
    return {name: getattr(ext, name) for name in names if getattr(ext, name) is not None}


def job_from_tei(req: TEIRequest) -> RerankJob:
    if not req.texts:
        raise EmptyInputError("`texts` cannot be empty")
    overrides = extension_overrides(req)
    if req.truncate:
        overrides["truncate"] = _side(req.truncation_direction)
    return RerankJob(
        dialect=TEI,
        query=req.query,
        texts=list(req.texts),
        documents=[{"text": t} for t in req.texts],
        overrides=overrides,
        threshold=req.threshold,
        raw_scores=req.raw_scores,
        return_documents=req.return_text,
        return_windows=req.return_windows,
    )


def job_from_documents(
    req: DocumentsRequest, dialect: str, return_documents: bool, model_max_length: int
) -> RerankJob:
    """``return_documents`` is the route's default; an explicit value in the body wins."""
    if not req.documents:
        raise EmptyInputError("`documents` cannot be empty")
    texts, documents = document_texts(req.documents, req.rank_fields)
    return RerankJob(
        dialect=dialect,
        query=req.query,
        texts=texts,
        documents=documents,
        overrides=documents_overrides(req, model_max_length),
        top_n=req.top_n or None,
        threshold=req.threshold,
        raw_scores=req.use_activation is False,
        return_documents=return_documents if req.return_documents is None else req.return_documents,
        return_windows=req.return_windows,
    )


def documents_overrides(req: DocumentsRequest, model_max_length: int) -> dict[str, Any]:
    """Map ``max_tokens_per_doc``, ``max_chunks_per_doc``, ``truncate*`` onto ScoreOptions fields."""
    overrides = extension_overrides(req)
    if req.max_tokens_per_doc is not None:  # Cohere: chunks of this many tokens, scored by the best
        overrides["window"] = min(overrides.get("window", req.max_tokens_per_doc), req.max_tokens_per_doc)
    if req.max_chunks_per_doc is not None and "max_windows" not in overrides:
        overrides["max_windows"] = req.max_chunks_per_doc
    side = _side(req.truncation_direction)
    if isinstance(req.truncate, str):
        overrides["truncate"] = _side(req.truncate)
    elif req.truncate:
        overrides["truncate"] = side
    if req.truncate_prompt_tokens is not None and req.truncate_prompt_tokens != 0:
        limit = model_max_length if req.truncate_prompt_tokens < 0 else req.truncate_prompt_tokens
        overrides["max_length"] = min(limit, model_max_length)
        overrides["query_max_length"] = None  # recomputed for the new length
        overrides.setdefault("truncate", side)
    return overrides


def document_texts(
    documents: list[str | DocumentObject], rank_fields: list[str] | None
) -> tuple[list[str], list[dict[str, Any]]]:
    """The text scored for each document, and each document as echoed back (``{"text": ...}`` first)."""
    texts, echoed = [], []
    for i, doc in enumerate(documents):
        if isinstance(doc, str):
            texts.append(doc)
            echoed.append({"text": doc})
            continue
        data = doc.model_dump()
        _check_echo(data, i)
        text = _object_text(data, rank_fields, i)
        texts.append(text)
        echoed.append({**data, "text": data["text"] if isinstance(data.get("text"), str) else text})
    return texts, echoed


def _check_echo(data: dict[str, Any], i: int) -> None:
    """A document object is echoed back as sent: every field must be valid Unicode (no lone surrogate
    from a ``\\ud800`` escape) and hold no NaN/Infinity (Python's JSON parser accepts them, JSON does
    not), or the response could not be encoded."""
    for key, value in data.items():
        name = key.encode("utf-8", "backslashreplace").decode("utf-8")
        try:
            json.dumps([key, value], ensure_ascii=False, allow_nan=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(
                f"documents[{i}].{name} holds a lone surrogate (an unpaired \\ud800-\\udfff escape), which "
                "is not valid Unicode; send valid UTF-8 text"
            ) from None
        except ValueError:
            raise InvalidInputError(
                f"documents[{i}].{name} holds NaN or Infinity, which JSON does not allow; send a number"
            ) from None


def _object_text(data: dict[str, Any], rank_fields: list[str] | None, i: int) -> str:
    if rank_fields:  # Cohere: "field: value" lines, in the order of rank_fields
        lines = [f"{name}: {_as_text(data[name])}" for name in rank_fields if data.get(name) is not None]
        if not lines:
            raise InvalidInputError(f"documents[{i}] has none of the rank_fields {rank_fields}")
        return "\n".join(lines)
    if not isinstance(data.get("text"), str):
        raise InvalidInputError(
            f'documents[{i}] is an object without a "text" string; send a string, {{"text": ...}}, '
            "or name the fields to rank with rank_fields"
        )
    return data["text"]


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# --------------------------------------------------------------------------- responses


def _window(result) -> dict[str, Any]:
    w = result.window
    return {"index": w.index, "start": w.start, "end": w.end, "count": w.count, "truncated": result.truncated}


def _item(job: RerankJob, r, score_key: str, document_key: str, documents) -> dict[str, Any]:
    """One result in a dialect's key names; the document and the window only when asked for."""
    item: dict[str, Any] = {"index": r.index, score_key: r.logit if job.raw_scores else r.score}
    if job.return_documents:
        item[document_key] = documents[r.index]
    if job.return_windows:
        item["window"] = _window(r)
    return item


def tei_body(job: RerankJob, results: list) -> list[dict[str, Any]]:
    """TEI's bare array: ``index``, ``score`` (sigmoid unless ``raw_scores``), ``text`` when asked."""
    return [_item(job, r, "score", "text", job.texts) for r in results]


def documents_body(job: RerankJob, results: list, model: str, tokens: int, threshold: float | None) -> dict:
    """The Cohere/Jina/vLLM superset body."""
    items = [_item(job, r, "relevance_score", "document", job.documents) for r in results]
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        "results": items,
        "meta": {
            "api_version": {"version": API_VERSIONS.get(job.dialect, "1"), "is_experimental": False},
            "billed_units": {"search_units": max(1, math.ceil(len(job.texts) / DOCS_PER_SEARCH_UNIT))},
            "tokens": {"input_tokens": tokens, "output_tokens": 0},
        },
    }
    if threshold is not None:
        body["threshold"] = threshold
    return body


def error_body(dialect: str, kind: str, message: str) -> dict[str, str]:
    """TEI: ``{"error", "error_type"}``; others: ``{"message", "detail", "type"}``."""
    if dialect == TEI:
        return {"error": message, "error_type": kind}
    return {"message": message, "detail": message, "type": kind}
