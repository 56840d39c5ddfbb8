"""Fuzzing the HTTP API over loopback: no request, valid or not, may produce a 5xx.

- schemathesis, from our own OpenAPI schema: positive cases (valid per the schema) and negative ones
  (invalid) for every operation, and a stateful run (sequences of calls across operations);
- our own Unicode-heavy bodies for each dialect (tests/fuzz_strategies.py): lone surrogates, combining
  marks, RTL, emoji, NUL, long runs, edge numbers, sent as ``\\u`` escapes or as raw (possibly invalid)
  UTF-8. A body holding a lone surrogate in a scored or echoed text must be a 422.

The model is a tokenizer-backed fake (tests/server/fakes.py): the HTTP layer is what is under test.
Counts are fixed per operation; the total is asserted to be at least ``MIN_CASES``.
"""

from __future__ import annotations

import json

import pytest
from fuzz_strategies import edge_numbers, junk, unicode_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

POST_EXAMPLES = {"positive": 250, "negative": 200}
GET_EXAMPLES = 20
UNICODE_EXAMPLES = 200  # per dialect
STATEFUL_EXAMPLES = 15  # sequences of calls
MIN_CASES = 2000

FUZZ_SETTINGS = settings(
    deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


class Tally:
    """Counts sent requests per label and collects 5xx answers (and other broken promises)."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.failures: list[str] = []

    def record(self, label: str, response, sent) -> None:
        self.counts[label] = self.counts.get(label, 0) + 1
        if response.status_code >= 500:
            self.failures.append(f"{label}: {response.status_code} {response.text[:200]} for {sent!r:.300}")

    def fail(self, message: str) -> None:
        self.failures.append(message)


@pytest.fixture(scope="module")
def fuzz_server(make_server):
    with make_server(max_documents=50, max_document_chars=5000, max_body_bytes=512 * 1024) as live:
        yield live


@pytest.fixture(scope="module")
def schema(fuzz_server):
    import httpx
    import schemathesis

    return schemathesis.openapi.from_dict(httpx.get(f"{fuzz_server.url}/openapi.json").json())


def with_links(spec: dict) -> dict:
    """Our schema plus OpenAPI links for the stateful run (the API has no resource ids to link by):
    ``/info``'s model name feeds each rerank route, and a ``/v2/rerank`` answer's id and model feed a
    TEI and a Jina body."""
    import copy

    spec = copy.deepcopy(spec)
    ops = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    info = ops["info_info_get"]["responses"]["200"]
    info["links"] = {
        f"model to {name}": {
            "operationId": name,
            "requestBody": {
                "model": "$response.body#/served_model_name",
                "query": "$response.body#/model",
                "documents": ["$response.body#/version", "$response.body#/backend"],
            },
        }
        for name in ("rerank_v1_v1_rerank_post", "rerank_v2_v2_rerank_post")
    }
    ops["rerank_v2_v2_rerank_post"]["responses"]["200"]["links"] = {
        "answer to TEI": {
            "operationId": "rerank_rerank_post",
            "requestBody": {"query": "$response.body#/id", "texts": ["$response.body#/model"]},
        },
        "answer to Jina": {
            "operationId": "rerank_rerank_post",
            "requestBody": {"query": "$response.body#/model", "documents": ["$response.body#/id"]},
        },
    }
    return spec


@pytest.fixture(scope="module")
def http():
    import requests

    with requests.Session() as session:
        yield session


@pytest.mark.timeout(600)
def test_schema_cases_and_unicode_bodies_never_get_a_5xx(fuzz_server, schema, http):
    tally = Tally()
    for result in schema.get_all_operations():
        operation = result.ok()
        post = operation.method.upper() == "POST"
        for mode in ("positive", "negative") if post else ("positive",):
            examples = POST_EXAMPLES[mode] if post else GET_EXAMPLES
            send_schema_cases(fuzz_server.url, http, operation, mode, examples, tally)
    for dialect, strategy in DIALECT_BODIES.items():
        send_unicode_bodies(fuzz_server.url, http, dialect, strategy, tally)
    total = sum(tally.counts.values())
    assert not tally.failures, "\n".join(tally.failures[:10])
    print(f"{total} cases: {tally.counts}")  # noqa: T201 - the count is the point of the test
    assert total >= MIN_CASES, tally.counts
    assert fuzz_server.server.config.app.state.server.batcher.waiting == 0


@pytest.mark.timeout(300)
def test_stateful_sequences_never_get_a_5xx(fuzz_server, http):
    """Sequences of calls across the operations, following the links of :func:`with_links`
    (schemathesis' state machine)."""
    import httpx
    import schemathesis

    tally = Tally()
    spec = with_links(httpx.get(f"{fuzz_server.url}/openapi.json").json())
    machine = schemathesis.openapi.from_dict(spec).as_state_machine()

    class Sequences(machine):
        def get_call_kwargs(self, case):
            return {"base_url": fuzz_server.url, "session": http, "timeout": 30}

        def validate_response(self, response, case, **kwargs):
            tally.record(f"stateful {case.operation.label}", response, case.body)

    Sequences.run(settings=settings(FUZZ_SETTINGS, max_examples=STATEFUL_EXAMPLES, stateful_step_count=10))
    print(f"stateful: {tally.counts}")  # noqa: T201
    assert not tally.failures, "\n".join(tally.failures[:10])
    assert sum(tally.counts.values()) >= STATEFUL_EXAMPLES, tally.counts


def send_schema_cases(url: str, http, operation, mode: str, examples: int, tally: Tally) -> None:
    from schemathesis import GenerationMode

    label = f"{operation.label} {mode}"

    @settings(FUZZ_SETTINGS, max_examples=examples)
    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    def check(case):
        response = case.call(base_url=url, session=http, timeout=30)
        tally.record(label, response, case.body)

    check()


# ------------------------------------------------------------------------- our own Unicode bodies

TEXT = unicode_text(60)
DOCUMENT_OBJECT = st.fixed_dictionaries(
    {"text": TEXT},
    optional={"title": TEXT, "extra": st.one_of(TEXT, junk(3, json_only=True)), "id": edge_numbers()},
)
COMMON = {
    "threshold": st.one_of(st.none(), st.just("dynamic"), edge_numbers(), TEXT),
    "window": st.one_of(st.none(), edge_numbers()),
    "aggregate": st.sampled_from(["max", "mean", "weighted", "first", "median", ""]),
    "return_windows": st.booleans(),
}
DIALECT_BODIES = {
    "tei": st.fixed_dictionaries(
        {"query": TEXT, "texts": st.lists(TEXT, min_size=1, max_size=6)},
        optional={
            **COMMON, "truncate": st.booleans(), "raw_scores": st.booleans(), "return_text": st.booleans()
        },
    ),
    "rerank": st.fixed_dictionaries(
        {"query": TEXT, "documents": st.lists(st.one_of(TEXT, DOCUMENT_OBJECT), min_size=1, max_size=6)},
        optional={**COMMON, "top_n": edge_numbers(), "return_documents": st.booleans()},
    ),
    "v1": st.fixed_dictionaries(
        {"query": TEXT, "documents": st.lists(st.one_of(TEXT, DOCUMENT_OBJECT), min_size=1, max_size=6)},
        optional={**COMMON, "top_n": edge_numbers(), "return_documents": st.booleans(), "model": TEXT},
    ),
    "v2": st.fixed_dictionaries(
        {
            "query": TEXT,
            "documents": st.lists(st.one_of(TEXT, DOCUMENT_OBJECT), min_size=1, max_size=6),
            "model": TEXT,
        },
        optional={
            **COMMON,
            "top_n": edge_numbers(),
            "max_tokens_per_doc": edge_numbers(),
            "rank_fields": st.lists(st.sampled_from(["text", "title", "extra", "id", "none"]), max_size=3),
        },
    ),
}
ROUTES = {"tei": "/rerank", "rerank": "/rerank", "v1": "/v1/rerank", "v2": "/v2/rerank"}


def has_surrogate(value) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def encode(body: dict, raw_utf8: bool) -> bytes:
    """``\\u`` escapes (valid JSON even for lone surrogates), or raw UTF-8 where surrogates become the
    invalid three-byte sequences a careless encoder writes (``surrogatepass``)."""
    if raw_utf8:
        return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(body).encode("ascii")


def post_once_more_on_reset(http, url: str, data: bytes, headers: dict):
    """POST; a pooled keep-alive connection that the server closed meanwhile (idle timeout, an early
    refusal) is retried once on a new one. A second failure is real and propagates."""
    import requests

    try:
        return http.post(url, data=data, headers=headers, timeout=30)
    except requests.ConnectionError:
        return requests.post(url, data=data, headers=headers, timeout=30)


def send_unicode_bodies(url: str, http, dialect: str, strategy, tally: Tally) -> None:
    label = f"unicode {dialect}"

    @settings(FUZZ_SETTINGS, max_examples=UNICODE_EXAMPLES)
    @given(body=strategy, raw_utf8=st.booleans())
    def check(body, raw_utf8):
        headers = {"content-type": "application/json"}
        data = encode(body, raw_utf8)
        response = post_once_more_on_reset(http, f"{url}{ROUTES[dialect]}", data, headers)
        tally.record(label, response, body)
        scored = [body["query"], *body.get("texts", body.get("documents", []))]
        if has_surrogate(scored) and response.status_code not in (400, 413, 422):
            tally.fail(f"{label}: a lone surrogate got {response.status_code}: {response.text[:200]}")
        if response.status_code == 200:
            response.json()  # a 200 is always a JSON body

    check()
