"""Request and response bodies of every dialect (field names exactly as their clients send and expect).

Requests accept the union of the dialects' fields and ignore unknown keys. crossrank's extensions
(``threshold``, window settings, ``return_windows``) are optional and absent from responses unless asked
for, so strict clients never see them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Side = Literal["right", "left", "Right", "Left", "RIGHT", "LEFT"]


class Extensions(BaseModel):
    """crossrank's additions, accepted in every dialect."""

    model_config = ConfigDict(extra="ignore")

    threshold: Probability | Literal["dynamic"] | None = Field(
        None, description="drop results whose sigmoid score is below this number, or 'dynamic' (σ rule)"
    )
    window: int | None = Field(None, ge=1, le=1_000_000, description="passage tokens per window")
    stride: int | None = Field(None, ge=1, le=1_000_000, description="tokens between window starts")
    max_windows: int | None = Field(None, ge=1, le=1024, description="windows scored per document at most")
    aggregate: Literal["max", "mean", "weighted", "first"] | None = Field(
        None, description="how window scores combine into a document score"
    )
    return_windows: bool = Field(False, description="add the winning window's character span to each result")


class TEIRequest(Extensions):
    """Text Embeddings Inference ``/rerank`` body (it has ``texts``)."""

    query: str
    texts: list[str]
    truncate: bool | None = Field(None, description="true: cut long texts; false/null: window them")
    truncation_direction: Side = "Right"
    raw_scores: bool = Field(False, description="raw logits instead of sigmoid scores")
    return_text: bool = False


class DocumentObject(BaseModel):
    """A document given as an object; ``text`` (or ``rank_fields``) says what is scored."""

    model_config = ConfigDict(extra="allow")

    text: str | None = None


class DocumentsRequest(Extensions):
    """Cohere v1/v2, Jina and vLLM bodies (they have ``documents``)."""

    model: str | None = None
    query: str
    documents: list[str | DocumentObject]
    top_n: int | None = Field(None, ge=0, description="keep the best N (0 or absent: all)")
    return_documents: bool | None = None
    rank_fields: list[str] | None = Field(None, description="object fields scored, in order (Cohere v1)")
    max_chunks_per_doc: int | None = Field(None, ge=1, le=1024, description="windows per document at most")
    max_tokens_per_doc: int | None = Field(None, ge=1, description="tokens per chunk (Cohere v2)")
    truncate_prompt_tokens: int | None = Field(None, ge=-1, description="cut each pair to N tokens (vLLM)")
    truncate: bool | Side | None = Field(None, description="cut long documents instead of windowing them")
    truncation_direction: Side = "Right"
    use_activation: bool | None = Field(None, description="false: raw logits (vLLM)")
    priority: int | None = None


def _body_kind(value: Any) -> str:
    return "tei" if isinstance(value, dict) and "texts" in value else "documents"


AnyRerankRequest = Annotated[
    Annotated[TEIRequest, Tag("tei")] | Annotated[DocumentsRequest, Tag("documents")],
    Discriminator(_body_kind),
]


# --------------------------------------------------------------------------- responses


class WindowOut(BaseModel):
    """The winning window: ``document[start:end]``, window ``index`` of ``count``."""

    index: int
    start: int
    end: int
    count: int
    truncated: bool


class TEIRank(BaseModel):
    index: int
    score: float
    text: str | None = None
    window: WindowOut | None = None


class DocumentOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str


class RerankResultOut(BaseModel):
    index: int
    relevance_score: float
    document: DocumentOut | None = None
    window: WindowOut | None = None


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class ApiVersion(BaseModel):
    version: str
    is_experimental: bool = False


class BilledUnits(BaseModel):
    search_units: int


class TokenCounts(BaseModel):
    input_tokens: int
    output_tokens: int = 0


class Meta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits
    tokens: TokenCounts


class RerankResponse(BaseModel):
    """Cohere (``id``, ``results``, ``meta``), Jina (``model``, ``usage``) and vLLM in one body."""

    id: str
    model: str
    usage: Usage
    results: list[RerankResultOut]
    meta: Meta
    threshold: float | None = Field(None, description="the threshold applied, when one was requested")


class TEIError(BaseModel):
    error: str
    error_type: str


class ErrorBody(BaseModel):
    """Errors on the Cohere/Jina/vLLM routes: ``message`` (Cohere, vLLM) and ``detail`` (Jina)."""

    message: str
    detail: str
    type: str


class Health(BaseModel):
    status: str
