"""Answer a question from retrieved chunks with an OpenAI-compatible chat endpoint.

:func:`build_messages` is pure: numbered context passages, an instruction to cite them as ``[n]``.
:func:`chat` posts to ``{base_url}/chat/completions`` with ``httpx``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import BackendError, InvalidInputError, optional_import
from .pipeline import Hit

logger = logging.getLogger(__name__)

API_KEY_VARS = ("CROSSRANK_LLM_API_KEY", "OPENAI_API_KEY")
SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages. Cite the passages you use as [n] "
    "right after the statement they support. If the passages do not contain the answer, say so. "
    "Answer in the language of the question."
)


@dataclass(frozen=True, slots=True)
class Citation:
    number: int
    chunk_id: str
    source: str
    title: str


def citations(hits: Sequence[Hit]) -> list[Citation]:
    """The numbered sources, in the order they appear in the prompt."""
    return [
        Citation(n, h.chunk.id, h.chunk.source or h.chunk.doc_id, h.chunk.title)
        for n, h in enumerate(hits, 1)
    ]


def build_messages(
    question: str, hits: Sequence[Hit], max_chars_per_passage: int = 4000
) -> list[dict[str, str]]:
    """Chat messages: the system instruction, then the numbered passages and the question.

    >>> build_messages("q?", [])[1]["content"].endswith("Question: q?")
    True
    """
    if not question.strip():
        raise InvalidInputError("the question is empty; pass the question to answer")
    blocks = []
    for cite, hit in zip(citations(hits), hits, strict=True):
        header = (
            f"[{cite.number}] {cite.title} ({cite.source})"
            if cite.title
            else f"[{cite.number}] ({cite.source})"
        )
        blocks.append(f"{header}\n{hit.chunk.text[:max_chars_per_passage]}")
    # An empty list means nothing passed the first stage and the rerank cut-offs (top_n, threshold).
    context = "\n\n".join(blocks) if blocks else "(no passage was found relevant to the question)"
    user = f"Context passages:\n\n{context}\n\nQuestion: {question}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def api_key_from_env() -> str | None:
    for name in API_KEY_VARS:
        if os.environ.get(name):
            return os.environ[name]
    return None


def chat(
    messages: list[dict[str, str]],
    *,
    base_url: str,
    model: str,
    api_key: str | None = None,
    timeout: float = 120.0,
    temperature: float = 0.0,
) -> str:
    """The assistant's reply from an OpenAI-compatible ``/chat/completions`` endpoint."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < float("inf"):
        raise InvalidInputError(f"the LLM timeout must be a positive number of seconds, got {timeout!r}")
    httpx = optional_import("httpx", "retrieval")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/chat/completions"
    body = {"model": model, "messages": messages, "temperature": temperature}
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=timeout)
    except httpx.ReadTimeout as exc:  # reached, but slower than the timeout (a long answer, a busy GPU)
        raise BackendError(
            f"the LLM at {url} did not answer within {timeout:g} s ({exc or type(exc).__name__}); "
            "raise --llm-timeout, or check that the endpoint is not overloaded"
        ) from exc
    except httpx.HTTPError as exc:
        raise BackendError(f"could not reach the LLM at {url}: {exc}; check --llm-base-url") from exc
    if response.status_code != 200:
        raise BackendError(
            f"the LLM at {url} answered HTTP {response.status_code}: {response.text[:300]}; "
            f"check --llm-model and the API key ({' or '.join(API_KEY_VARS)})"
        )
    try:
        message = response.json()["choices"][0]["message"]
        content = message["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BackendError(f"the LLM at {url} sent a reply without choices[0].message.content") from exc
    if not isinstance(content, str):  # null: a refusal, a tool call, or a reasoning model out of tokens
        refusal = message.get("refusal") if isinstance(message, dict) else None
        raise BackendError(
            f"the LLM at {url} sent no text (choices[0].message.content is {json.dumps(content)}"
            + (f"; refusal: {str(refusal)[:300]}" if refusal else "")
            + "); check that --llm-model is a chat model that answers in text"
        )
    return content
