"""crossrank on a real local Ray Serve: the dialects through Serve's proxy equal the library, two
replicas share the traffic, a killed replica is replaced, overload is 429 (never 500), the key stays
out of Ray's logs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from loopback import free_port, wait_ready

from crossrank.server.settings import ServerSettings

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(600)]

QUERY = "what is the capital of france"
DOCS = ["Berlin is in Germany.", "Paris is the capital of France.", "Bananas are yellow.", "France is big."]
KEY = "ray-test-key-5f0c2a9e7d"  # the ray_api_key fixture's value (checked below)
AUTH = {"Authorization": f"Bearer {KEY}"}


def deploy(ray_cluster, **settings) -> str:
    from ray import serve

    from crossrank.server.ray import build_deployment

    port = serve_port(ray_cluster)  # before serve.run, which would start Serve on its default port
    app = build_deployment(ServerSettings(**settings)).bind()
    serve.run(app, name="crossrank", route_prefix="/", blocking=False)
    return f"http://127.0.0.1:{port}"


_PORT: dict[str, int] = {}


def serve_port(ray_cluster) -> int:
    from ray import serve

    if "port" not in _PORT:
        _PORT["port"] = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": _PORT["port"]})
    return _PORT["port"]


@pytest.fixture(scope="module")
def model_settings(tiny_xlmr_dir):
    return {"model": str(tiny_xlmr_dir), "backend": "torch", "max_length": 128}


@pytest.fixture(scope="module")
def library(model_settings):
    from crossrank import Reranker

    return Reranker(model_settings["model"], backend="torch", max_length=128)


@pytest.fixture(scope="module")
def two_replicas(ray_cluster, ray_api_key, model_settings):
    assert ray_api_key == KEY
    url = deploy(ray_cluster, **model_settings, num_replicas=2, api_key=KEY, max_queue=32)
    wait_ready(url)
    yield url


def expected(library, query=QUERY, docs=DOCS, top_n=None):
    return [(r.index, r.score) for r in library.rerank(query, docs, top_n=top_n)]


def test_tei_cohere_and_jina_through_serve_equal_the_library(two_replicas, library):
    import cohere

    tei = httpx.post(f"{two_replicas}/rerank", json={"query": QUERY, "texts": DOCS}, headers=AUTH, timeout=60)
    assert tei.status_code == 200
    assert [(r["index"], pytest.approx(r["score"], abs=1e-6)) for r in tei.json()] == expected(library)

    client = cohere.ClientV2(api_key=KEY, base_url=two_replicas)
    response = client.rerank(model="m", query=QUERY, documents=DOCS, top_n=2)
    got = [(r.index, pytest.approx(r.relevance_score, abs=1e-6)) for r in response.results]
    assert got == expected(library, top_n=2)

    body = {"model": "m", "query": QUERY, "documents": DOCS, "top_n": 3, "return_documents": True}
    jina = httpx.post(f"{two_replicas}/v1/rerank", json=body, headers=AUTH, timeout=60)
    assert jina.status_code == 200
    results = jina.json()["results"]
    assert [(r["index"], pytest.approx(r["relevance_score"], abs=1e-6)) for r in results] == expected(
        library, top_n=3
    )
    assert [r["document"]["text"] for r in results] == [DOCS[r["index"]] for r in results]


def test_auth_applies_behind_serve(two_replicas):
    body = {"model": "m", "query": QUERY, "documents": DOCS}
    assert httpx.post(f"{two_replicas}/v2/rerank", json=body, timeout=60).status_code == 401
    assert httpx.get(f"{two_replicas}/health", timeout=60).status_code == 200


def replica_logs(ray_cluster, app: str) -> dict[str, str]:
    folder = Path(ray_cluster._private.worker.global_worker.node.get_logs_dir_path()) / "serve"
    return {p.name: p.read_text(errors="replace") for p in folder.glob(f"replica_{app}_crossrank_*.log")}


def test_two_replicas_both_serve_traffic(two_replicas, ray_cluster):
    body = {"model": "m", "query": QUERY, "documents": DOCS}

    def send(_):
        with httpx.Client(base_url=two_replicas, headers=AUTH, timeout=60) as client:
            return [client.post("/v2/rerank", json=body).status_code for _ in range(6)]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(1)  # replica logs are written asynchronously
    logs = replica_logs(ray_cluster, "crossrank")
    served = {name: log.count("POST /v2/rerank 200") for name, log in logs.items()}
    assert len([n for n in served.values() if n > 0]) >= 2, served


def test_api_key_never_reaches_ray_logs(two_replicas, ray_cluster):
    session = Path(ray_cluster._private.worker.global_worker.node.get_session_dir_path())
    files = [p for p in (session / "logs").rglob("*") if p.is_file()]
    leaked = [str(p) for p in files if KEY in p.read_text(errors="replace")]
    assert leaked == []


def replicas(ray_cluster) -> list[str]:
    return sorted(
        a["name"] for a in ray_cluster.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith("SERVE_REPLICA::crossrank#")
    )


def test_a_killed_replica_is_replaced_and_the_service_answers(two_replicas, ray_cluster):
    from ray import serve

    before = replicas(ray_cluster)
    assert len(before) == 2
    statuses: list[int] = []
    stop = threading.Event()

    def traffic():
        body = {"model": "m", "query": QUERY, "documents": DOCS}
        with httpx.Client(base_url=two_replicas, headers=AUTH, timeout=60) as client:
            while not stop.is_set():
                try:
                    statuses.append(client.post("/v2/rerank", json=body).status_code)
                except httpx.TransportError:
                    statuses.append(-1)

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        time.sleep(1)
        ray_cluster.kill(ray_cluster.get_actor(before[0], namespace="serve"), no_restart=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            now = replicas(ray_cluster)
            state = serve.status().applications["crossrank"].deployments["crossrank"].replica_states
            if before[0] not in now and len(now) == 2 and state.get("RUNNING") == 2:
                break
            time.sleep(1)
        else:
            raise AssertionError(f"the killed replica was not replaced: {replicas(ray_cluster)}")
    finally:
        stop.set()
        thread.join()
    assert statuses and statuses[-1] == 200
    body = {"model": "m", "query": QUERY, "documents": DOCS}
    assert httpx.post(f"{two_replicas}/v2/rerank", json=body, headers=AUTH, timeout=60).status_code == 200


def test_overload_is_429_with_retry_after_never_500(ray_cluster, model_settings):
    """One replica that takes 1 request at a time and queues 1 at the proxy; 16 clients at once."""
    url = deploy(ray_cluster, **model_settings, api_key=KEY, max_queue=1, max_queued_requests=1)
    wait_ready(url)
    docs = [f"passage {i} about the capital cities of europe and their history " * 8 for i in range(120)]
    body = {"model": "m", "query": QUERY, "documents": docs}
    results: list[httpx.Response] = []
    barrier = threading.Barrier(16)

    def client():
        barrier.wait()
        results.append(httpx.post(f"{url}/v2/rerank", json=body, headers=AUTH, timeout=120))

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = [r.status_code for r in results]
    assert set(codes) <= {200, 429, 503} and 500 not in codes, codes
    assert 200 in codes and 429 in codes, codes
    assert all(r.headers.get("retry-after") == "1" for r in results if r.status_code == 429)
