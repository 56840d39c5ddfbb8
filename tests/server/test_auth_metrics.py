"""Bearer auth (constant-time, public health routes, refused placeholder keys) and Prometheus metrics."""

from __future__ import annotations

import hmac

import httpx
import pytest
from pydantic import ValidationError

from crossrank.server import ServerSettings
from crossrank.server.auth import Authenticator, UnauthorizedError

KEY = "s3cret-test-key-0123456789"


@pytest.fixture(scope="module")
def protected(make_server):
    with make_server(api_key=KEY) as live:
        yield live


def test_auth_required_on_rerank_and_info(protected):
    with httpx.Client(base_url=protected.url, timeout=30) as c:
        body = {"query": "q", "documents": ["a"]}
        missing = c.post("/v2/rerank", json=body)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in missing.json()["message"]
        wrong = c.post("/v1/rerank", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "invalid API key"
        basic = c.post("/v1/rerank", json=body, headers={"Authorization": f"Basic {KEY}"})
        assert basic.status_code == 401
        tei = c.post("/rerank", json={"query": "q", "texts": ["a"]})
        assert tei.status_code == 401 and tei.json()["error_type"] == "Unauthorized"
        jina = c.post("/rerank", json=body)  # /rerank with `documents`: the Jina/vLLM error shape
        assert jina.status_code == 401 and "Authorization: Bearer" in jina.json()["detail"]
        invalid = c.post("/v2/rerank", json={"query": "q", "documents": "not a list"})
        assert invalid.status_code == 401  # the key is checked before the body's fields
        assert c.get("/info").status_code == 401
        ok = c.post("/v2/rerank", json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        info = c.get("/info", headers={"authorization": f"bearer {KEY}"}).json()
        assert info["auth"] is True and KEY not in str(info)


def test_health_ready_metrics_are_public(protected):
    with httpx.Client(base_url=protected.url, timeout=30) as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/ready").json() == {"status": "ready"}
        assert c.get("/metrics").status_code == 200


def test_key_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("crossrank.server.auth.hmac.compare_digest", spy)
    auth = Authenticator(ServerSettings(api_key=KEY).api_key)
    auth.check(f"Bearer {KEY}")
    with pytest.raises(UnauthorizedError):
        auth.check("Bearer wrong")
    assert len(calls) == 2


@pytest.mark.parametrize(
    "key", ["", "   ", "changeme", "CHANGEME", "your-api-key", "short", "has space inside"]
)
def test_refuses_empty_or_placeholder_keys(key):
    with pytest.raises(ValidationError, match="api_key"):
        ServerSettings(api_key=key)


def test_info(client):
    info = client.get("/info").json()
    assert info["backend"] == "fake" and info["dtype"] == "fp32" and info["auth"] is False
    assert info["backend_reason"] == "a backend object was passed"  # /info says why this backend runs
    assert info["limits"]["max_documents"] >= 100 and info["max_length"] == 128


def test_metrics_count_requests_batches_scores_and_documents(client):
    long_doc = "filler text without the answer. " * 50 + "paris"
    client.post("/rerank", json={"query": "paris", "texts": [long_doc, "paris", "x"], "threshold": 0.9})
    client.post("/v2/rerank", json={"query": "paris", "documents": [long_doc], "max_chunks_per_doc": 1})
    client.post("/v2/rerank", json={"query": "paris", "documents": []})
    text = client.get("/metrics").text
    for needle in (
        'crossrank_requests_total{method="POST",route="/rerank",status="200"}',
        'crossrank_requests_total{method="POST",route="/v2/rerank",status="400"}',
        'crossrank_request_seconds_bucket{le="0.005",method="POST",route="/rerank"}',
        "crossrank_queue_depth ",
        "crossrank_batch_requests_count",
        "crossrank_batch_pairs_sum",
        "crossrank_batch_tokens_sum",
        "crossrank_score_count",
        "crossrank_windowed_documents_total",
        "crossrank_truncated_documents_total 1.0",
        "crossrank_threshold_drops_total",
        "crossrank_rejected_total 0.0",
    ):
        assert needle in text, needle
    assert "python_gc_objects_collected_total" not in text  # a per-app registry, not the global one
