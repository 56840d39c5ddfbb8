"""OpenAPI snapshot: the documented API changes only on purpose.

Regenerate with ``CROSSRANK_UPDATE_SNAPSHOTS=1 python -m pytest tests/server/test_openapi.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from crossrank.server import ServerSettings, create_app

SNAPSHOT = Path(__file__).with_name("openapi.snapshot.json")


def current_schema() -> dict:
    schema = create_app(ServerSettings()).openapi()
    schema["info"]["version"] = "<version>"  # a release must not break the snapshot
    return json.loads(json.dumps(schema))


def test_openapi_matches_snapshot():
    schema = current_schema()
    if os.environ.get("CROSSRANK_UPDATE_SNAPSHOTS") == "1" or not SNAPSHOT.exists():
        SNAPSHOT.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert schema == expected, (
        "the OpenAPI schema changed; if on purpose, rerun with CROSSRANK_UPDATE_SNAPSHOTS=1 and commit "
        f"{SNAPSHOT.name}"
    )


def test_openapi_documents_every_route_and_dialect():
    schema = current_schema()
    assert set(schema["paths"]) == {
        "/rerank",
        "/v1/rerank",
        "/v2/rerank",
        "/health",
        "/ready",
        "/info",
        "/metrics",
    }
    components = schema["components"]["schemas"]
    assert {"TEIRequest", "DocumentsRequest", "RerankResponse", "TEIRank", "TEIError", "ErrorBody"} <= set(
        components
    )
    assert "bearer" in json.dumps(schema["components"]["securitySchemes"]).lower()
