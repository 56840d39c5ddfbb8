"""The crossrank server on Ray Serve: one crossrank server per replica, Serve's proxy in front.

``build_app(args)`` is the Serve application builder (``serve run crossrank.server.ray:build_app
model=embedded num_replicas=2``, or ``import_path`` in a Serve config file); ``crossrank serve --ray`` calls
:func:`serve_on_ray`. Each replica runs the unchanged :func:`crossrank.server.app.create_app` app, built
on the replica by a zero-argument function given to ``serve.ingress`` (an app object would be pickled,
and ours holds prometheus registries with locks), which loads the model there (a model that cannot load
fails the replica's constructor, so Serve reports why); the app's lifespan starts the cross-request
batcher. Serve's own ``@serve.batch`` is not used: its queue is unbounded and it knows
nothing of token budgets.

Settings reach replicas as plain values captured by that function, without the API key: the key reaches
them through the process environment only (``CROSSRANK_API_KEY``, inherited from the process that starts
a local Ray, or set in the cluster's environment, e.g. from a Kubernetes Secret). Not through
``runtime_env`` ``env_vars``: Ray's runtime-env agent writes those to its log in plain text. A replica
that was told auth is on but finds no key refuses to start rather than serve unprotected.

Overload: Serve sends a replica at most ``max_ongoing_requests`` requests (at most ``max_queue``, so our
own queue never overflows behind Serve's back) and queues at most ``max_queued_requests`` more per proxy;
beyond that the proxy answers 429 with ``Retry-After`` (Serve's ``backpressure_config``). Serve itself
still answers 503 where it has no replica to send to, and 408 past its proxy timeout, which is set a
little above ``request_timeout_s`` so that our own 503 comes first.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import sys
import threading
from typing import Any

from ..errors import BackendError, InvalidInputError, optional_import
from .settings import ServerSettings

logger = logging.getLogger(__name__)

USAGE_STATS_ENV = "RAY_USAGE_STATS_ENABLED"
APP_NAME = "crossrank"
DEPLOYMENT_NAME = "crossrank"
KEY_ENV = "CROSSRANK_API_KEY"
# Fields the driver uses (where to deploy, how to scale) or that must not travel (the secret, a local path).
DRIVER_ONLY = frozenset({"api_key", "config_file"})
RETRY_AFTER_S = 1
PROXY_TIMEOUT_MARGIN_S = 5.0
HEALTH_CHECK_PERIOD_S = 5.0
CONNECT_TIMEOUT_S = 10.0
CONSTRUCTOR_RETRIES = 3  # a model that fails to load fails the deploy soon (Serve's default retries 20 times)


def disable_usage_stats() -> None:
    """Ray reports usage statistics to a public host unless told not to: crossrank always tells it not to.
    Call before Ray is imported or started (the setting is read when Ray starts)."""
    os.environ[USAGE_STATS_ENV] = "0"


def replica_values(settings: ServerSettings) -> dict[str, Any]:
    """The settings a replica is built from: JSON-able values, never the API key; a local model folder
    as an absolute path (replicas run in Ray's own working folder)."""
    from ..models.resolve import absolute_model

    values = settings.model_dump(mode="json", exclude=set(DRIVER_ONLY))
    return values | {"model": absolute_model(values["model"])}


def threads_for(cpus: float) -> int:
    """Model threads for a replica or actor with ``cpus`` CPUs (as Ray sets ``OMP_NUM_THREADS``)."""
    return max(1, math.floor(cpus))


def thread_env(cpus: float) -> dict[str, str]:
    """Environment that keeps the model and the tokenizer to the CPUs Ray gave the process: replicas on a
    shared machine must not each start one thread per core. ``RAYON_NUM_THREADS`` sizes the thread pool
    of the Rust tokenizer's ``encode_batch`` (one thread per core by default)."""
    threads = str(threads_for(cpus))
    return {
        "OMP_NUM_THREADS": threads,
        "CROSSRANK_THREADS": threads,
        "RAYON_NUM_THREADS": threads,
        USAGE_STATS_ENV: "0",
    }


def max_ongoing(settings: ServerSettings) -> int:
    """Requests Serve sends one replica at once: enough to keep our batcher's batches full (Serve's
    default of 5 would starve it), never more than our queue holds."""
    return settings.max_ongoing_requests or settings.max_queue  # the settings check it is <= max_queue


def check_scaling(settings: ServerSettings) -> None:
    """A fixed number of replicas and autoscaling bounds exclude each other (Serve refuses both too)."""
    if settings.max_replicas is not None and "num_replicas" in settings.model_fields_set:
        raise InvalidInputError(
            f"num_replicas ({settings.num_replicas}) fixes the number of replicas and max_replicas "
            f"({settings.max_replicas}) turns on autoscaling; give one of them (min_replicas sets the "
            "fewest replicas when autoscaling)"
        )


def deployment_options(settings: ServerSettings) -> dict:
    """Keyword arguments for ``serve.deployment`` (pure: also used to check the deploy/ files)."""
    check_scaling(settings)
    env = thread_env(settings.replica_cpus)
    ongoing = max_ongoing(settings)
    options: dict[str, Any] = {
        "ray_actor_options": {
            "num_cpus": settings.replica_cpus,
            "num_gpus": settings.replica_gpus,
            "runtime_env": {"env_vars": env},
        },
        "max_ongoing_requests": ongoing,
        "max_queued_requests": settings.max_queued_requests or settings.max_queue,
        "backpressure_config": {"status_code": 429, "retry_after_s": RETRY_AFTER_S},
        "health_check_period_s": HEALTH_CHECK_PERIOD_S,
        "max_constructor_retry_count": CONSTRUCTOR_RETRIES,
    }
    if settings.max_replicas is not None:
        options["autoscaling_config"] = {
            "min_replicas": 1 if settings.min_replicas is None else settings.min_replicas,
            "initial_replicas": max(1, settings.min_replicas or 1),
            "max_replicas": settings.max_replicas,
            "target_ongoing_requests": max(1, ongoing // 2),
        }
    else:
        options["num_replicas"] = settings.num_replicas
    return options


def http_options(settings: ServerSettings) -> dict[str, Any]:
    """Options of Serve's HTTP proxy (``serve.start``)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "request_timeout_s": settings.request_timeout_s + PROXY_TIMEOUT_MARGIN_S,
    }


class CrossrankReplica:
    """The deployment class that ``serve.ingress`` wraps; Serve calls :meth:`check_health` periodically."""

    def check_health(self) -> None:
        """Raise (Serve then restarts this replica) when the batcher is not running."""
        server = getattr(self.app.state, "server", None)
        if server is None:
            raise RuntimeError("the crossrank app is not running (the lifespan did not start or has ended)")
        if not server.batcher.running:
            raise RuntimeError(server.batcher.failure or "the crossrank batcher is not running")


def replica_app(values: dict[str, Any], expect_key: bool):
    """Build the FastAPI app on a replica (called there by the builder function)."""
    from .app import create_app, load_reranker

    if expect_key and not os.environ.get(KEY_ENV):
        raise RuntimeError(
            f"auth is on but {KEY_ENV} is not set on this replica; set it in the cluster's environment "
            "(e.g. from a Kubernetes Secret), or start the local Ray with crossrank serve --ray"
        )
    limit_threads()
    settings = ServerSettings(**values)
    # Loaded here, in the replica's constructor, not in the app's lifespan: Serve then reports why a model
    # cannot load (its lifespan failure says only "ASGI lifespan startup failed").
    return create_app(settings, load_reranker(settings))


def limit_threads(threads: int | None = None) -> None:
    """Keep torch to ``threads`` (default ``OMP_NUM_THREADS``, which Ray sets from a worker's CPUs).

    torch reads ``OMP_NUM_THREADS`` when it is imported, so it is set here and torch is told directly
    only if something imported it already: importing torch just to size its thread pool cost each
    replica and actor ~1.5 s and ~230 MB, and the OpenVINO and ONNX backends never load it."""
    value = str(threads) if threads else os.environ.get("OMP_NUM_THREADS", "")
    if not value.isdigit():
        return
    os.environ["OMP_NUM_THREADS"] = value
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(value))


def build_deployment(settings: ServerSettings):
    """The Serve deployment for ``settings`` (not yet bound)."""
    from ray import serve

    values, expect_key = replica_values(settings), settings.api_key is not None

    def make_app():  # a plain zero-argument function: Serve calls it on each replica
        return replica_app(values, expect_key)

    ingress = serve.ingress(make_app)(CrossrankReplica)
    return serve.deployment(ingress, name=DEPLOYMENT_NAME, **deployment_options(settings))


def build_app(args: dict[str, Any] | None = None):
    """Serve application builder: ``args`` are :class:`ServerSettings` fields (from ``serve run ...
    key=value`` or a config file's ``args``); environment variables and ``config_file`` apply as usual.
    The API key is read here only to know that auth is on: replicas read it from their environment."""
    disable_usage_stats()
    if args and "api_key" in args:  # Serve keeps args in its config: `serve config` would print the key
        raise InvalidInputError(
            "api_key must not be in the application's args (Serve stores them and `serve config` shows "
            f"them); set {KEY_ENV} in the environment of the cluster's nodes, e.g. from a Kubernetes Secret"
        )
    settings = ServerSettings(**(args or {}))
    return build_deployment(settings).bind()


def connect(address: str) -> None:
    """``ray.init(address=address)`` for a cluster that must already run. An address nothing answers on
    is refused in seconds (Ray itself retries for many minutes), and every failure names the option."""
    import ray

    hint = (
        "check --ray-address (the head of a running cluster: host:port of `ray start --head`, "
        "ray://host:10001, or auto for one on this machine), or leave it unset to start a local Ray"
    )
    endpoint = _endpoint(address)
    if endpoint is not None:
        try:
            socket.create_connection(endpoint, timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise InvalidInputError(
                f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}); {hint}"
            ) from None
    try:
        ray.init(address=address)
    except ConnectionError as exc:
        reason = str(exc).split(". Please")[0].rstrip(".")  # Ray's advice names its own --address flag
        raise InvalidInputError(f"cannot connect to the Ray cluster at {address}: {reason}; {hint}") from None


def _endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port`` or ``ray://host:port``; None for auto and other forms Ray resolves."""
    rest = address.removeprefix("ray://")
    host, colon, port = rest.rpartition(":")
    if not colon or not host or not port.isdigit() or "/" in rest:
        return None
    return host.strip("[]"), int(port)


class _Stop(BaseException):
    """Raised by the SIGTERM/SIGINT handler to unwind to the clean-up, wherever the main thread is."""


def serve_on_ray(settings: ServerSettings) -> int:
    """``crossrank serve --ray``: deploy to ``settings.ray_address``, or to a local Ray started here, and
    serve until SIGTERM or Ctrl-C; then remove the app, and stop the local Ray with every process it
    started."""
    disable_usage_stats()
    check_scaling(settings)  # before a local Ray is started for nothing
    optional_import("ray.serve", "ray")
    import ray
    from ray import serve

    local = settings.ray_address in (None, "local")  # "local": what Ray calls a new local Ray
    if local:  # a wrong model name fails here, in seconds, not after Serve's constructor retries
        from ..models.resolve import resolve_model

        resolve_model(settings.model)
    if local and settings.api_key is not None:  # inherited by the local Ray's processes, never logged
        os.environ[KEY_ENV] = settings.api_key.get_secret_value()
    previous = _catch_stop_signals()
    try:
        if local:
            ray.init(address="local", include_dashboard=False)
            _check_local_resources(settings, ray.cluster_resources())
        else:
            connect(settings.ray_address)
        _catch_stop_signals()  # ray.init installs a SIGTERM handler that aborts the driver: replace it
        try:
            serve.start(http_options=http_options(settings))
        except RuntimeError as exc:  # its proxy could not bind
            raise BackendError(
                f"Ray Serve could not listen on {settings.host}:{settings.port} ({_last_line(str(exc))}); "
                "is another server on that port? choose another --port"
            ) from None
        try:
            serve.run(build_deployment(settings).bind(), name=APP_NAME, route_prefix="/", blocking=False)
        except RuntimeError as exc:  # the replicas failed to start: say why, not where Serve noticed
            why = _replica_error(serve, exc)
            raise BackendError(f"the crossrank replicas did not start: {why}") from None
        logger.warning("crossrank serving on http://%s:%s (Ray Serve)", settings.host, settings.port)
        threading.Event().wait()  # until a signal raises _Stop
    except _Stop:
        logger.warning("stopping")
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        _shut_down(local)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _replica_error(serve, exc: Exception) -> str:
    """The last line of the replicas' own error (Serve's deployment status holds their traceback)."""
    try:
        message = serve.status().applications[APP_NAME].deployments[DEPLOYMENT_NAME].message
    except Exception:  # no status: Serve's own message will do
        message = ""
    return _last_line(message) or _last_line(str(exc))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _raise_stop(signum, frame) -> None:
    raise _Stop()


def _catch_stop_signals() -> dict:
    """Route SIGTERM and SIGINT to the clean-up; returns the handlers they had."""
    return {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGINT)}


def _check_local_resources(settings: ServerSettings, resources: dict[str, float]) -> None:
    """Replicas that do not fit this machine would wait for resources forever."""
    replicas = settings.max_replicas or settings.num_replicas
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    if replicas * settings.replica_cpus > cpus:
        raise InvalidInputError(
            f"{replicas} replicas x {settings.replica_cpus:g} CPUs do not fit this machine's {cpus:g} CPUs; "
            "lower num_replicas/max_replicas or replica_cpus (fractions such as 0.5 are allowed)"
        )
    if replicas * settings.replica_gpus > gpus:
        raise InvalidInputError(
            f"{replicas} replicas x {settings.replica_gpus:g} GPUs do not fit this machine's {gpus:g} GPUs; "
            "lower num_replicas/max_replicas or replica_gpus (0: run on CPU)"
        )


def _shut_down(local: bool) -> None:
    import ray
    from ray import serve

    if not ray.is_initialized():
        return
    try:
        serve.shutdown() if local else serve.delete(APP_NAME)
    finally:
        ray.shutdown()  # a local Ray started by ray.init stops all of its processes here
