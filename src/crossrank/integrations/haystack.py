"""Haystack 2: :class:`CrossrankRanker`, a ranker component for pipelines (serialisable).

Example:
    >>> from crossrank.integrations.haystack import CrossrankRanker
    >>> pipeline.add_component("ranker", CrossrankRanker(top_k=5))  # doctest: +SKIP
    >>> pipeline.connect("retriever.documents", "ranker.documents")  # doctest: +SKIP
"""

# No ``from __future__ import annotations``: Haystack reads the run() annotations at class creation.

import dataclasses
from typing import Any

from ..errors import optional_import
from ._core import DEFAULT_TIMEOUT, Scorer, check_cutoffs, document_text

_haystack = optional_import("haystack", "haystack")
_utils = optional_import("haystack.utils", "haystack")

Document, Secret, component = _haystack.Document, _utils.Secret, _haystack.component
API_KEY_ENV = "CROSSRANK_API_KEY"
WINDOW_KEY = "crossrank_window"


@component
class CrossrankRanker:
    """Rank documents for a query with crossrank; outputs copies, best first, with ``score`` set.

    ``score`` is crossrank's sigmoid score in [0, 1]; ``meta["crossrank_window"]`` is the winning window
    (``content[start:end]``, its ``index`` of ``count``, ``truncated``). Input documents are not changed.

    Args:
        model: a :class:`crossrank.Reranker` or a model name/folder (default ``"embedded"``); loaded by
            :meth:`warm_up` (or the first run). A given ``Reranker`` serialises as its model name and
            every option it was built with (:meth:`crossrank.Reranker.config`: the backend and dtype as
            asked for, so ``auto`` chooses again where the pipeline is loaded).
        url: base URL of a ``crossrank serve`` to score remotely instead.
        api_key: that server's key as a Haystack ``Secret`` (default: the ``CROSSRANK_API_KEY`` variable,
            if set); serialised as the variable's name, never its value.
        top_k: documents kept at most (``None``: all).
        threshold: drop documents scoring below a number in [0, 1], or ``"dynamic"`` (σ rule).
        timeout: seconds per HTTP request (remote only).
        reranker_options: ``Reranker(...)`` keyword arguments when ``model`` is a name.
    """

    def __init__(
        self,
        model: Any = "embedded",
        url: str | None = None,
        api_key: Any = Secret.from_env_var(API_KEY_ENV, strict=False),  # noqa: B008 - Haystack's idiom
        top_k: int | None = 10,
        threshold: float | str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        reranker_options: dict[str, Any] | None = None,
    ):
        check_cutoffs(top_k, threshold)
        self.model, self.url, self.api_key = model, url, api_key
        self.top_k, self.threshold, self.timeout = top_k, threshold, timeout
        self.reranker_options = reranker_options
        key = api_key.resolve_value() if api_key is not None else None
        self._scorer = Scorer(model, url=url, api_key=key, timeout=timeout, reranker_options=reranker_options)

    def warm_up(self) -> None:
        """Load the in-process model (nothing to do for a remote server)."""
        _ = self._scorer.reranker

    def to_dict(self) -> dict[str, Any]:
        model, options = self._scorer.model_config()
        return _haystack.default_to_dict(
            self,
            model=model or "embedded",
            url=self.url,
            api_key=self.api_key.to_dict() if self.api_key is not None else None,
            top_k=self.top_k,
            threshold=self.threshold,
            timeout=self.timeout,
            reranker_options=options or None,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CrossrankRanker":
        _utils.deserialize_secrets_inplace(data["init_parameters"], keys=["api_key"])
        return _haystack.default_from_dict(cls, data)

    def _args(self, documents, top_k, threshold):
        top_k = self.top_k if top_k is None else top_k
        threshold = self.threshold if threshold is None else threshold
        check_cutoffs(top_k, threshold)
        texts = [document_text(d.content, f"documents[{i}]") for i, d in enumerate(documents)]
        return texts, top_k, threshold

    @staticmethod
    def _build(documents, ranked) -> list:
        return [
            dataclasses.replace(
                documents[r.index],
                score=r.score,
                meta={**documents[r.index].meta, WINDOW_KEY: r.window_dict()},
            )
            for r in ranked
        ]

    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        threshold: float | str | None = None,
    ) -> dict[str, Any]:
        """``{"documents": [...]}``: the best ``top_k`` documents for ``query`` (run-time ``top_k`` and
        ``threshold`` override the component's)."""
        texts, top_k, threshold = self._args(documents, top_k, threshold)
        return {"documents": self._build(documents, self._scorer.rank(query, texts, top_k, threshold))}

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        threshold: float | str | None = None,
    ) -> dict[str, Any]:
        """:meth:`run` for ``AsyncPipeline``: does not block the event loop."""
        texts, top_k, threshold = self._args(documents, top_k, threshold)
        ranked = await self._scorer.arank(query, texts, top_k, threshold)
        return {"documents": self._build(documents, ranked)}
