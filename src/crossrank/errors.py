"""Error types. Every error crossrank raises on purpose is a :class:`CrossrankError`.

Messages say what was wrong and how to fix it. The classes also subclass the built-in
exception a caller would naturally catch (``ValueError``, ``LookupError`` ...).
"""

from __future__ import annotations


class CrossrankError(Exception):
    """Base class of all crossrank errors."""


class InvalidInputError(CrossrankError, ValueError):
    """A query, document, pair or option is malformed (empty, wrong type, out of range)."""


class InputTooLargeError(InvalidInputError):
    """An input exceeds a configured limit (characters per document, documents per request, ...)."""


class ModelNotFoundError(CrossrankError, LookupError):
    """A model reference could not be resolved to local files."""


class UnsupportedModelError(CrossrankError, ValueError):
    """The model exists but is not a one-label sequence-classification cross-encoder."""


class BackendError(CrossrankError, RuntimeError):
    """A backend could not be loaded or its forward pass failed (including NaN outputs)."""


class MissingDependencyError(CrossrankError, ImportError):
    """An optional dependency is not installed; the message names the pip extra to install."""


def optional_import(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingDependencyError` naming the pip extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only where the extra is missing
        raise MissingDependencyError(
            f"{module!r} is required for this feature; install it with: pip install 'crossrank[{extra}]'"
        ) from exc
