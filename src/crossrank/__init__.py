"""crossrank: cross-encoder reranking for retrieval-augmented generation.

Example:
    >>> from crossrank import Reranker
    >>> reranker = Reranker("embedded")
    >>> results = reranker.rerank("what is caffeine?", ["Caffeine is a stimulant.", "Tea is green."])
    >>> results[0].index
    0

Heavy modules (torch, transformers) are imported only when a model is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    BackendError,
    CrossrankError,
    InputTooLargeError,
    InvalidInputError,
    MissingDependencyError,
    ModelNotFoundError,
    UnsupportedModelError,
)
from .types import PairScore, RerankResult, WindowSpan

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "CrossrankError",
    "FlagReranker",
    "InputTooLargeError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "PairScore",
    "Reranker",
    "RerankResult",
    "UnsupportedModelError",
    "WindowSpan",
    "__version__",
]

if TYPE_CHECKING:
    from .compat.flag import FlagReranker
    from .reranker import Reranker


def __getattr__(name: str):
    if name == "Reranker":
        from .reranker import Reranker

        return Reranker
    if name == "FlagReranker":
        from .compat.flag import FlagReranker

        return FlagReranker
    raise AttributeError(f"module 'crossrank' has no attribute {name!r}")
