"""LlamaIndex: :class:`CrossrankRerank`, a node postprocessor for query engines and retrievers.

Example:
    >>> from crossrank.integrations.llama_index import CrossrankRerank
    >>> engine = index.as_query_engine(node_postprocessors=[CrossrankRerank(top_n=5)])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError, optional_import
from ._core import DEFAULT_TIMEOUT, Scorer, component_scorer, document_text, dumped_model_field

_postprocessor = optional_import("llama_index.core.postprocessor.types", "llamaindex")
_schema = optional_import("llama_index.core.schema", "llamaindex")
_pydantic = optional_import("llama_index.core.bridge.pydantic", "llamaindex")

NodeWithScore, QueryBundle, MetadataMode = _schema.NodeWithScore, _schema.QueryBundle, _schema.MetadataMode
WINDOW_KEY = "crossrank_window"


class CrossrankRerank(_postprocessor.BaseNodePostprocessor):
    """Rerank retrieved nodes with crossrank; returns new ``NodeWithScore`` objects, best first.

    ``score`` is crossrank's sigmoid score in [0, 1]; each node is a copy whose metadata also holds
    ``crossrank_window`` (the winning window of the scored text), a key kept out of LLM prompts and
    embeddings.

    Args:
        reranker: a :class:`crossrank.Reranker` or a model name/folder (default ``"embedded"``). A given
            ``Reranker`` is dumped as its model name, with the options it was built with as
            ``reranker_options`` (as Haystack's ``to_dict`` does), so a dump loads the same reranker.
        url: base URL of a ``crossrank serve`` to score remotely instead.
        api_key: that server's API key, held as a pydantic ``SecretStr`` and left out of dumps
            (``model_dump()``, ``to_dict()``, ``to_json()``): give it again to a component loaded from a dump.
        top_n: nodes kept at most (``None``: all); 2 by default, like LlamaIndex's other rerankers.
        threshold: drop nodes scoring below a number in [0, 1], or ``"dynamic"`` (σ rule).
        metadata_mode: what is scored: the node text alone (``NONE``, default: window offsets index
            ``node.text``) or with metadata (``EMBED``/``LLM``/``ALL``).
        timeout: seconds per HTTP request (remote only).
        reranker_options: ``Reranker(...)`` keyword arguments when ``reranker`` is a model name.
    """

    model_config = _pydantic.ConfigDict(arbitrary_types_allowed=True)

    reranker: Any = None
    url: str | None = None
    api_key: _pydantic.SecretStr | None = _pydantic.Field(default=None, repr=False, exclude=True)
    top_n: int | None = 2
    threshold: float | str | None = None
    metadata_mode: Any = MetadataMode.NONE
    timeout: float = DEFAULT_TIMEOUT
    reranker_options: dict[str, Any] | None = None

    _scorer: Scorer = _pydantic.PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._scorer = component_scorer(self)

    @_pydantic.field_serializer("reranker", "reranker_options")
    def _dump_model(self, value: Any, info: Any) -> Any:
        return dumped_model_field(self._scorer, info.field_name)

    @classmethod
    def class_name(cls) -> str:
        return "CrossrankRerank"

    def _inputs(self, nodes: list, query_bundle) -> tuple[str, list[str]]:
        if query_bundle is None:
            raise InvalidInputError("CrossrankRerank needs the query: pass query_bundle (or query_str)")
        texts = [
            document_text(n.node.get_content(metadata_mode=self.metadata_mode), f"nodes[{i}]")
            for i, n in enumerate(nodes)
        ]
        return query_bundle.query_str, texts

    def _build(self, nodes: list, ranked) -> list:
        out = []
        for r in ranked:
            node = nodes[r.index].node
            update = {
                "metadata": {**node.metadata, WINDOW_KEY: r.window_dict()},
                "excluded_llm_metadata_keys": [*node.excluded_llm_metadata_keys, WINDOW_KEY],
                "excluded_embed_metadata_keys": [*node.excluded_embed_metadata_keys, WINDOW_KEY],
            }
            out.append(NodeWithScore(node=node.model_copy(update=update), score=r.score))
        return out

    def _postprocess_nodes(self, nodes: list, query_bundle=None) -> list:
        if not nodes:
            return []
        query, texts = self._inputs(nodes, query_bundle)
        return self._build(nodes, self._scorer.rank(query, texts, self.top_n, self.threshold))

    async def _apostprocess_nodes(self, nodes: list, query_bundle=None) -> list:
        if not nodes:
            return []
        query, texts = self._inputs(nodes, query_bundle)
        return self._build(nodes, await self._scorer.arank(query, texts, self.top_n, self.threshold))
