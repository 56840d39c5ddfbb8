"""Errors in each dialect's shape, request limits, and no leaked exception text."""

from __future__ import annotations

import httpx
import pytest

from .fakes import FakeBackend

QUERY = "capital of france"


def assert_tei_error(response, status, kind, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error_type"] == kind
    for word in words:
        assert word in body["error"]


def assert_docs_error(response, status, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert {"message", "detail"} <= set(body) and body["message"] == body["detail"]
    for word in words:
        assert word in body["message"]


def test_tei_errors(client):
    assert_tei_error(client.post("/rerank", json={"query": QUERY, "texts": []}), 400, "Empty", "texts")
    assert_tei_error(
        client.post("/rerank", json={"query": QUERY, "texts": [1, 2]}), 422, "Validation", "texts"
    )
    assert_tei_error(client.post("/rerank", json={"texts": ["a"]}), 422, "Validation", "query")
    assert_tei_error(client.post("/rerank", json={"query": " ", "texts": ["a"]}), 422, "Validation", "query")
    assert_tei_error(
        client.post("/rerank", json={"query": QUERY, "texts": ["a", ""]}), 422, "Validation", "document 1"
    )
    invisible = client.post("/rerank", json={"query": QUERY, "texts": ["a", "\u200b\ufeff"]})
    assert_tei_error(invisible, 422, "Validation", "document 1 has no text the model can read")
    bad_json = client.post("/rerank", content=b"{not json", headers={"content-type": "application/json"})
    assert_tei_error(bad_json, 422, "Validation")


def test_documents_errors(client):
    for route in ("/v1/rerank", "/v2/rerank"):
        assert_docs_error(client.post(route, json={"query": QUERY, "documents": []}), 400, "documents")
        assert_docs_error(client.post(route, json={"query": QUERY}), 422, "documents")
        assert_docs_error(
            client.post(route, json={"query": QUERY, "documents": ["a"], "top_n": -1}), 422, "top_n"
        )
        assert_docs_error(
            client.post(route, json={"query": QUERY, "documents": [{"title": "x"}]}), 422, "text"
        )
        assert_docs_error(
            client.post(route, content=b"[1,", headers={"content-type": "application/json"}), 422
        )
    documents_on_rerank = client.post("/rerank", json={"query": QUERY, "documents": [{"foo": 1}]})
    assert_docs_error(documents_on_rerank, 422, "documents[0]")


def test_framework_errors_keep_the_dialect_shape(client):
    """Unknown routes, wrong methods, unparsable and non-JSON bodies: the framework's own refusals
    still come in the error shape of the route's dialect, with a message that says what to send."""
    assert_docs_error(client.get("/v2/rerank"), 405, "Method Not Allowed")
    assert client.get("/v2/rerank").headers["allow"] == "POST"
    assert_docs_error(client.post("/v3/rerank", json={}), 404, "Not Found")
    deep = '{"query": "q", "texts": ["a"], "x": ' + "[" * 1100 + "]" * 1100 + "}"
    parse = client.post("/rerank", content=deep, headers={"content-type": "application/json"})
    assert_tei_error(parse, 400, "Validation", "parsing the body")
    form = client.post("/rerank", content=b'{"query": "q", "texts": ["a"]}')  # no Content-Type
    assert_tei_error(form, 415, "Validation", "Content-Type: application/json", "no Content-Type")
    form = client.post(
        "/v2/rerank", content=b'{"query": "q", "documents": ["a"]}',
        headers={"content-type": "application/x-www-form-urlencoded"},  # curl -d without -H
    )
    assert_docs_error(form, 415, "Content-Type: application/json", "x-www-form-urlencoded")
    neither = client.post("/rerank", json={"query": "q", "text": ["a"]})
    assert_tei_error(neither, 422, "Validation", "'texts' (TEI) or 'documents'")


def test_invalid_window_settings_name_the_option(client):
    response = client.post(
        "/v2/rerank", json={"query": QUERY, "documents": ["a b"], "truncate_prompt_tokens": 2}
    )
    assert_docs_error(response, 422, "max_length")
    gap = client.post("/v2/rerank", json={"query": QUERY, "documents": ["a b"], "window": 4, "stride": 8})
    assert_docs_error(gap, 422, "stride (8) is larger than window (4)")


def test_limits(make_server):
    with make_server(max_documents=3, max_document_chars=50, max_body_bytes=2048) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            many = client.post("/v2/rerank", json={"query": QUERY, "documents": ["a"] * 4})
            assert_docs_error(many, 413, "max_documents=3")
            long_doc = client.post("/rerank", json={"query": QUERY, "texts": ["x" * 51]})
            assert_tei_error(long_doc, 413, "Validation", "max_document_chars=50")
            body = client.post("/rerank", json={"query": QUERY, "texts": ["word " * 10] * 100})
            assert body.status_code == 413 and "max_body_bytes=2,048" in body.json()["error"]
            chunked = client.post(
                "/v1/rerank",
                content=iter([b'{"query": "q", "documents": ["', b"y" * 4096, b'"]}']),
                headers={"content-type": "application/json"},
            )
            assert chunked.status_code == 413 and "max_body_bytes" in chunked.json()["message"]
            assert client.post("/v2/rerank", json={"query": QUERY, "documents": ["a"] * 3}).status_code == 200


def test_default_limits_accept_a_top_100_rerank(client):
    docs = [f"passage {i} about the capital cities of europe and their history. " * 8 for i in range(100)]
    response = client.post("/v2/rerank", json={"query": QUERY, "documents": docs, "top_n": 100})
    assert response.status_code == 200 and len(response.json()["results"]) == 100
    tei = client.post("/rerank", json={"query": QUERY, "texts": docs})
    assert tei.status_code == 200 and len(tei.json()) == 100


@pytest.mark.timeout(60)
def test_failed_batch_fails_every_request_without_leaking(make_server):
    import concurrent.futures

    with make_server(FakeBackend(delay=0.05, fail=True), max_wait_ms=50) as live:

        def call(i):
            with httpx.Client(base_url=live.url, timeout=30) as c:
                route = "/rerank" if i % 2 else "/v2/rerank"
                body = (
                    {"query": QUERY, "texts": ["a b c"]} if i % 2 else {"query": QUERY, "documents": ["a b"]}
                )
                return i, c.post(route, json=body)

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(call, range(6)))
        for i, response in responses:
            assert response.status_code == 424, response.text
            text = response.text
            assert "secret" not in text and "RuntimeError" not in text
            if i % 2:
                assert response.json()["error_type"] == "Backend"
        with httpx.Client(base_url=live.url) as c:
            assert c.get("/ready").status_code == 200  # a failed batch does not take the server down


SURROGATE_BODIES = [
    ("/rerank", '{"query": "\\ud800", "texts": ["a"]}', "query holds a lone surrogate U+D800 at character 0"),
    ("/rerank", '{"query": "q", "texts": ["a", "b\\udfff"]}', "document 1 holds a lone surrogate"),
    ("/rerank", '{"query": "q", "documents": ["\\udc80"]}', "document 0 holds a lone surrogate"),
    ("/v1/rerank", '{"query": "q\\ud83d", "documents": ["a"]}', "query holds a lone surrogate U+D83D"),
    ("/v2/rerank", '{"query": "q", "documents": ["ok", "x\\ud800y"]}', "document 1 holds"),
    ("/v2/rerank", '{"query": "q", "documents": [{"text": "ok", "x": "\\ud800"}]}', "documents[0].x"),
    ("/v2/rerank", '{"query": "q", "documents": [{"t": "\\ud800"}], "rank_fields": ["t"]}', "documents[0].t"),
]


@pytest.mark.parametrize("route,raw,words", SURROGATE_BODIES)
def test_lone_surrogates_are_422_in_each_dialect(client, route, raw, words):
    """Valid JSON (``\\ud800`` escapes) that no tokenizer can take: 422 naming the field and position."""
    response = client.post(route, content=raw.encode(), headers={"content-type": "application/json"})
    if route == "/rerank" and '"texts"' in raw:
        assert_tei_error(response, 422, "Validation", words)
    else:
        assert_docs_error(response, 422, words)


@pytest.mark.parametrize("route", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_a_body_that_is_not_utf8_is_422(client, route):
    for raw in (
        b'{"query": "caf\xe9", "texts": ["a"], "documents": ["a"]}',  # Latin-1
        b'{"query": "\xed\xa0\x80", "texts": ["a"], "documents": ["a"]}',  # an encoded surrogate
        '{"query": "q", "texts": ["a"]}'.encode("utf-16"),
    ):
        response = client.post(route, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        body = response.json()
        assert "not valid UTF-8 at byte" in body["message"] and body["error_type"] == "Validation"
    assert client.post(route, content=b"caf\xe9", headers={"content-type": "text/plain"}).status_code < 500
    ok = client.post(route, json={"query": "café ☕", "texts": ["crème"], "documents": ["crème"]})
    assert ok.status_code == 200, ok.text


def test_a_surrogate_in_a_field_name_gives_a_clean_422(client):
    raw = b'{"query": "q", "documents": ["a"], "top_n": "x", "\\ud800": 1}'
    response = client.post("/v2/rerank", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "top_n" in response.json()["message"]


def test_echoed_nan_and_infinity_are_422(client):
    """Python's JSON parser accepts NaN/Infinity; an echoed document object holding one would make the
    response unencodable (was a 500)."""
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = f'{{"query": "q", "documents": [{{"text": "a", "id": {literal}}}], "return_documents": true}}'
        response = client.post("/rerank", content=raw.encode(), headers={"content-type": "application/json"})
        assert_docs_error(response, 422, "documents[0].id holds NaN or Infinity")
