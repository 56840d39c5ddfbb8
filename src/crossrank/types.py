"""Plain result types shared by the library, the CLI and the server."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class WindowSpan:
    """The part of a document that a score came from.

    ``start``/``end`` are character offsets into the document as given (``document[start:end]``);
    ``index`` is the window's position among the document's windows (0 for a short document);
    ``count`` is how many windows were scored (with ``truncated``, fewer than the document needs).
    """

    index: int
    start: int
    end: int
    count: int


@dataclass(frozen=True, slots=True)
class PairScore:
    """The outcome of scoring one (query, document) pair.

    ``logit`` is the aggregated raw model output (fp32); ``window`` the window that scored highest;
    ``truncated`` is true when part of the document was not scored (truncation or ``max_windows``).
    """

    logit: float
    window: WindowSpan
    truncated: bool
    n_tokens: int


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One ranked document: ``index`` into the caller's list, ``score`` (always ``sigmoid(logit)``; the
    raw logit is ``logit``), the ``document`` text (``None`` when not requested) and the ``window`` that
    won."""

    index: int
    score: float
    document: str | None
    window: WindowSpan
    logit: float
    truncated: bool = False

    def to_dict(self) -> dict:
        return asdict(self)
