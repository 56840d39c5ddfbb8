"""What the framework adapters share: one scorer (in process or through ``crossrank serve``) and the cut-offs.

An adapter turns its framework's documents into texts, calls :meth:`Scorer.rank` (or :meth:`Scorer.arank`)
and builds new framework objects from the :class:`Ranked` items; nothing here touches the caller's objects.

Remote scoring posts to the server's ``/v2/rerank`` with ``return_windows``, so long documents are windowed
by the server exactly as in process and the winning window comes back with each score.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import BackendError, InvalidInputError, optional_import
from ..thresholds import check_threshold, check_top_n
from ..types import WindowSpan

DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Ranked:
    """One kept document: ``index`` into the texts given, ``score`` in [0, 1] and the winning ``window``
    (``document[start:end]``) with ``truncated`` true when part of the document was not scored."""

    index: int
    score: float
    window: WindowSpan
    truncated: bool = False

    def window_dict(self) -> dict[str, int | bool]:
        w = self.window
        return {
            "index": w.index,
            "start": w.start,
            "end": w.end,
            "count": w.count,
            "truncated": self.truncated,
        }


def check_cutoffs(top_n: int | None, threshold: float | str | None) -> None:
    """Refuse bad ``top_n`` / ``threshold`` when a component is built, not at its first query."""
    check_top_n(top_n)
    check_threshold(threshold)


def component_scorer(component: Any) -> Scorer:
    """Check a component's cut-offs and build its :class:`Scorer` from its ``reranker``, ``url``,
    ``api_key`` (a pydantic ``SecretStr``), ``timeout`` and ``reranker_options`` fields (the LangChain and
    LlamaIndex components)."""
    check_cutoffs(component.top_n, component.threshold)
    key = component.api_key
    return Scorer(
        component.reranker,
        url=component.url,
        api_key=key.get_secret_value() if key is not None else None,
        timeout=component.timeout,
        reranker_options=component.reranker_options,
    )


def dumped_model_field(scorer: Scorer, name: str) -> Any:
    """A LangChain / LlamaIndex component's ``reranker`` or ``reranker_options`` field as dumped: the
    model name and options of :meth:`Scorer.model_config` (what Haystack's ``to_dict`` writes), so a given
    ``Reranker`` dumps as JSON that builds the same reranker again."""
    model, options = scorer.model_config()
    return model if name == "reranker" else options or None


def document_text(value: Any, where: str) -> str:
    """The text of one framework document, or an error that says which one has none."""
    if not isinstance(value, str) or not value.strip():
        got = "blank text" if isinstance(value, str) else type(value).__name__
        raise InvalidInputError(f"{where} has no text (got {got}); give every document text or drop it")
    return value


class Scorer:
    """Score texts for a query with a :class:`~crossrank.Reranker` or a ``crossrank serve`` endpoint.

    Args:
        reranker: a loaded ``Reranker``, or a model name/folder to load one (``"embedded"`` by default).
            Ignored when ``url`` is given.
        url: base URL of a ``crossrank serve`` (e.g. ``http://127.0.0.1:8080``): score there instead.
        api_key: the server's API key (sent as ``Authorization: Bearer``).
        timeout: seconds per HTTP request.
        reranker_options: keyword arguments for ``Reranker(...)`` when a model name is given.
    """

    def __init__(
        self,
        reranker: Any = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        reranker_options: dict[str, Any] | None = None,
    ):
        self.url = url.rstrip("/") if url else None
        self.api_key = api_key
        self.timeout = timeout
        self.model = None if url else (reranker if isinstance(reranker, str) else None)
        self._reranker = None if url or isinstance(reranker, str | None) else reranker
        self._options = dict(reranker_options or {})
        if url is None and reranker is None:
            self.model = "embedded"
        if self._reranker is not None and reranker_options:
            raise InvalidInputError(
                "reranker_options apply when a model name is given; set them on the Reranker you pass instead"
            )
        if url is not None and not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"url must start with http:// or https://, got {url!r}")

    @property
    def reranker(self):
        """The in-process ``Reranker`` (loaded on first use when a model name was given)."""
        if self.url is not None:
            return None
        if self._reranker is None:
            from ..reranker import Reranker

            self._reranker = Reranker(self.model, **self._options)
        return self._reranker

    # ------------------------------------------------------------------ ranking

    def rank(
        self, query: str, texts: Sequence[str], top_n: int | None = None, threshold: float | str | None = None
    ) -> list[Ranked]:
        """Kept documents best first (ties by index), after ``threshold`` then ``top_n``."""
        if not texts:
            return []
        if self.url is not None:
            return self._parse(self._post_sync(self._body(query, texts, top_n, threshold)))
        return self._rank_local(query, texts, top_n, threshold)

    async def arank(
        self, query: str, texts: Sequence[str], top_n: int | None = None, threshold: float | str | None = None
    ) -> list[Ranked]:
        """:meth:`rank` without blocking the event loop (in-process scoring runs in a worker thread)."""
        if not texts:
            return []
        if self.url is not None:
            return self._parse(await self._post_async(self._body(query, texts, top_n, threshold)))
        return await asyncio.to_thread(self._rank_local, query, texts, top_n, threshold)

    def _rank_local(self, query, texts, top_n, threshold) -> list[Ranked]:
        from ..reranker import rank
        from ..scoring import check_text

        check_text(query, "query")
        scored = self.reranker.score_pairs([(query, t) for t in texts])
        results = rank(scored, texts, top_n=top_n, threshold=threshold, return_documents=False)
        return [Ranked(r.index, r.score, r.window, r.truncated) for r in results]

    # ------------------------------------------------------------------ remote

    def _body(self, query, texts, top_n, threshold) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "documents": list(texts), "return_windows": True}
        if top_n:
            body["top_n"] = top_n
        if threshold is not None:
            body["threshold"] = threshold
        return body

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _post_sync(self, body: dict[str, Any]):
        httpx = optional_import("httpx", "retrieval")
        try:
            return httpx.post(
                self.url + "/v2/rerank", json=body, headers=self._headers(), timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise BackendError(self._unreachable(exc)) from exc

    async def _post_async(self, body: dict[str, Any]):
        httpx = optional_import("httpx", "retrieval")
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                return await client.post(self.url + "/v2/rerank", json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise BackendError(self._unreachable(exc)) from exc

    def _unreachable(self, exc) -> str:
        return f"could not reach crossrank serve at {self.url}: {exc}; check the url and that it is running"

    def _parse(self, response) -> list[Ranked]:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code != 200:
            message = payload.get("message") if isinstance(payload, dict) else None
            message = message or response.text[:300]
            where = f"crossrank serve at {self.url} answered HTTP {response.status_code}: {message}"
            if response.status_code in (400, 413, 422):
                raise InvalidInputError(where)
            hint = "; check api_key" if response.status_code == 401 else ""
            raise BackendError(where + hint)
        try:
            ranked = []
            for r in payload["results"]:
                w = r["window"]
                span = WindowSpan(int(w["index"]), int(w["start"]), int(w["end"]), int(w["count"]))
                score = float(r["relevance_score"])
                ranked.append(Ranked(int(r["index"]), score, span, bool(w["truncated"])))
            return ranked
        except (TypeError, KeyError, ValueError) as exc:
            raise BackendError(
                f"{self.url}/v2/rerank sent results without index, relevance_score and window; "
                "is it a crossrank server?"
            ) from exc

    # ------------------------------------------------------------------ serialisation

    def model_config(self) -> tuple[str | None, dict[str, Any]]:
        """``(model name, Reranker options)`` that rebuild the in-process model, for serialisation: a
        given ``Reranker`` is described by its model name and :meth:`crossrank.Reranker.config` (every
        option it was built with; the backend and dtype as asked for, so ``auto`` chooses again)."""
        if self.url is not None:
            return None, {}
        if self.model is not None:
            return self.model, dict(self._options)
        return self._reranker.model.name, self._reranker.config()
