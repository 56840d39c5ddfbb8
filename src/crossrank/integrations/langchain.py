"""LangChain: :class:`CrossrankRerank`, a document compressor for ``ContextualCompressionRetriever``.

Example:
    >>> from crossrank.integrations.langchain import CrossrankRerank
    >>> rerank = CrossrankRerank(top_n=5)                              # embedded model, in process
    >>> remote = CrossrankRerank(url="http://127.0.0.1:8080", top_n=5)  # through crossrank serve
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import optional_import
from ._core import DEFAULT_TIMEOUT, Scorer, component_scorer, document_text, dumped_model_field

_compressor = optional_import("langchain_core.documents.compressor", "langchain")
_documents = optional_import("langchain_core.documents", "langchain")
_pydantic = optional_import("pydantic", "langchain")

Document = _documents.Document

RELEVANCE_KEY, WINDOW_KEY = "relevance_score", "crossrank_window"


class CrossrankRerank(_compressor.BaseDocumentCompressor):
    """Rerank LangChain documents with crossrank; returns copies, best first.

    Each returned document keeps its ``page_content``, ``id`` and metadata and gets
    ``metadata["relevance_score"]`` (sigmoid score in [0, 1]) and ``metadata["crossrank_window"]`` (the
    winning window: ``page_content[start:end]``, its ``index`` of ``count``, ``truncated``).

    Args:
        reranker: a :class:`crossrank.Reranker` or a model name/folder (default ``"embedded"``). A given
            ``Reranker`` is dumped as its model name, with the options it was built with as
            ``reranker_options`` (as Haystack's ``to_dict`` does), so a dump loads the same reranker.
        url: base URL of a ``crossrank serve`` to score remotely instead (``reranker`` is then unused).
        api_key: that server's API key, held as a pydantic ``SecretStr`` and left out of dumps
            (``model_dump()``): give it again to a component loaded from a dump.
        top_n: documents kept at most (``None``: all); 3 by default, like LangChain's other rerankers.
        threshold: drop documents scoring below a number in [0, 1], or ``"dynamic"`` (σ rule).
        timeout: seconds per HTTP request (remote only).
        reranker_options: ``Reranker(...)`` keyword arguments when ``reranker`` is a model name.
    """

    model_config = _pydantic.ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    reranker: Any = None
    url: str | None = None
    api_key: _pydantic.SecretStr | None = _pydantic.Field(default=None, repr=False, exclude=True)
    top_n: int | None = 3
    threshold: float | str | None = None
    timeout: float = DEFAULT_TIMEOUT
    reranker_options: dict[str, Any] | None = None

    _scorer: Scorer = _pydantic.PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._scorer = component_scorer(self)

    @_pydantic.field_serializer("reranker", "reranker_options")
    def _dump_model(self, value: Any, info: Any) -> Any:
        return dumped_model_field(self._scorer, info.field_name)

    def _texts(self, documents: Sequence[Document]) -> list[str]:
        return [document_text(d.page_content, f"documents[{i}]") for i, d in enumerate(documents)]

    def _build(self, documents: Sequence[Document], ranked) -> list[Document]:
        out = []
        for r in ranked:
            doc = documents[r.index]
            metadata = {**doc.metadata, RELEVANCE_KEY: r.score, WINDOW_KEY: r.window_dict()}
            out.append(doc.model_copy(update={"metadata": metadata}))
        return out

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Any = None
    ) -> Sequence[Document]:
        """The documents reranked for ``query``, best first, after ``threshold`` and ``top_n``."""
        documents = list(documents)
        ranked = self._scorer.rank(query, self._texts(documents), self.top_n, self.threshold)
        return self._build(documents, ranked)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Any = None
    ) -> Sequence[Document]:
        """:meth:`compress_documents` without blocking the event loop."""
        documents = list(documents)
        ranked = await self._scorer.arank(query, self._texts(documents), self.top_n, self.threshold)
        return self._build(documents, ranked)
