"""Property-based API testing with schemathesis against our own OpenAPI schema: no input, valid or
not, may produce a 5xx. Positive cases (valid per the schema) and negative ones (invalid) are sent to a
live server over loopback."""

from __future__ import annotations

import pytest

POST_EXAMPLES = {"positive": 120, "negative": 60}
GET_EXAMPLES = 5
MIN_CASES = 500


@pytest.mark.timeout(300)
def test_no_server_errors_for_generated_requests(server):
    import requests
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    session = requests.Session()
    counts: dict[str, int] = {}
    failures: list[str] = []

    def send(case, label):
        response = case.call(base_url=server.url, session=session, timeout=30)
        counts[label] = counts.get(label, 0) + 1
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:200]} for {case.body!r:.300}")

    for result in schema.get_all_operations():
        operation = result.ok()
        post = operation.method.upper() == "POST"
        for mode in ("positive", "negative") if post else ("positive",):
            label = f"{operation.label} {mode}"
            run_cases(operation, mode, POST_EXAMPLES[mode] if post else GET_EXAMPLES, label, send)
    total = sum(counts.values())
    assert not failures, "\n".join(failures[:10])
    assert total >= MIN_CASES, counts


def run_cases(operation, mode: str, examples: int, label: str, send) -> None:
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        send(case, label)

    check()
