"""crossrank inside RAG frameworks: one component per framework, each a thin adapter over :mod:`._core`.

* :mod:`crossrank.integrations.langchain` — ``CrossrankRerank``, a LangChain ``BaseDocumentCompressor``
  (``pip install 'crossrank[langchain]'``);
* :mod:`crossrank.integrations.llama_index` — ``CrossrankRerank``, a LlamaIndex ``BaseNodePostprocessor``
  (``pip install 'crossrank[llamaindex]'``);
* :mod:`crossrank.integrations.haystack` — ``CrossrankRanker``, a Haystack 2 ``@component``
  (``pip install 'crossrank[haystack]'``).

Each scores in process (a ``Reranker`` or a model name) or through ``crossrank serve`` (``url`` and
``api_key``); long documents keep crossrank's windowing either way. Importing this package imports no
framework; importing an adapter without its framework raises :class:`crossrank.MissingDependencyError`.
"""

from ._core import Ranked, Scorer

__all__ = ["Ranked", "Scorer"]
