"""The rerank HTTP server (``pip install 'crossrank[server]'``).

``create_app(settings, reranker=None)`` builds a FastAPI app that speaks the TEI, Cohere v1/v2, Jina and
vLLM rerank dialects; ``crossrank serve`` runs it with uvicorn. Nothing heavy is imported until used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["ServerSettings", "create_app"]

if TYPE_CHECKING:
    from .app import create_app
    from .settings import ServerSettings


def __getattr__(name: str):
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServerSettings":
        from .settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'crossrank.server' has no attribute {name!r}")
