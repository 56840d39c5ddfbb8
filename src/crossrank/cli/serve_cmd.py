"""``crossrank serve``: the rerank HTTP server. Its flags are generated from the server's settings."""

from __future__ import annotations

import argparse
import logging
import types
import typing
from typing import Any

from ..errors import InvalidInputError, MissingDependencyError

logger = logging.getLogger(__name__)

HELP = """Serve rerank APIs over HTTP: TEI and Jina/vLLM on /rerank, Cohere v1 and Jina on /v1/rerank, Cohere
v2 on /v2/rerank, plus /health, /ready, /info and /metrics. Every flag is also an environment variable
(CROSSRANK_<NAME>) and a key of --config-file (JSON or TOML); flags win over the environment, which wins
over the file. Prefer CROSSRANK_API_KEY to --api-key: flags are visible to other users of the machine."""

DEST_PREFIX = "setting_"  # keeps the generated flags apart from the top-level options (--log-level)
# Settings only Ray Serve reads: given as flags without --ray they would be silently ignored. (In the
# environment or a config file they are fine: one file may serve both modes.)
RAY_ONLY = (
    "ray_address", "num_replicas", "min_replicas", "max_replicas", "replica_cpus", "replica_gpus",
    "max_ongoing_requests", "max_queued_requests",
)
NONE_WORDS = frozenset({"none", "null"})


def register(sub) -> None:
    parser = sub.add_parser("serve", help="run the rerank HTTP server", description=HELP)
    try:
        from ..server.settings import ServerSettings
    except ImportError:  # the server extra is not installed: the command explains how to get it
        parser.set_defaults(func=_missing_extra)
        return
    add_settings_args(parser, ServerSettings)
    parser.set_defaults(func=run)


def _missing_extra(args: argparse.Namespace) -> int:
    raise MissingDependencyError("crossrank serve needs the server extra: pip install 'crossrank[server]'")


def _choices(annotation) -> list[str] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            return [str(x) for x in typing.get_args(arg)]
    return None


def _optional(annotation) -> bool:
    union = isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
    return union and type(None) in typing.get_args(annotation)


def add_settings_args(parser: argparse.ArgumentParser, settings_cls) -> None:
    """One ``--flag`` per settings field, help from the field's description. Only flags that are given
    become overrides, so environment variables and the config file still apply to the others."""
    for name, field in settings_cls.model_fields.items():
        default = "unset" if field.default is None else field.default
        kwargs: dict[str, Any] = {
            "dest": DEST_PREFIX + name,
            "default": argparse.SUPPRESS,
            "help": f"{field.description} [env CROSSRANK_{name.upper()}; default: {default}]",
        }
        if field.annotation is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = name.upper()
            choices = _choices(field.annotation)
            if choices:
                kwargs["choices"] = choices
                kwargs.pop("metavar")
            if _optional(field.annotation):
                kwargs["type"] = lambda value: None if value.strip().lower() in NONE_WORDS else value
        parser.add_argument("--" + name.replace("_", "-"), **kwargs)


def settings_from(args: argparse.Namespace):
    from pydantic import ValidationError

    from ..server.settings import ServerSettings

    overrides = {
        key[len(DEST_PREFIX) :]: value for key, value in vars(args).items() if key.startswith(DEST_PREFIX)
    }
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInputError(f"invalid server settings: {problems}") from None
    except ValueError as exc:  # an unreadable config file
        raise InvalidInputError(str(exc)) from None
    ray_only = [name for name in RAY_ONLY if name in overrides]
    if ray_only and not settings.ray:
        flags = ", ".join("--" + name.replace("_", "-") for name in ray_only)
        raise InvalidInputError(f"{flags} applies to crossrank serve --ray only; add --ray, or leave it out")
    return settings


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if settings.ray:  # one crossrank server per Ray Serve replica
        from ..server.ray import serve_on_ray

        return serve_on_ray(settings)
    try:
        import uvicorn

        from ..server.app import create_app, load_reranker
    except ImportError as exc:
        raise MissingDependencyError(
            f"crossrank serve needs the server extra ({exc.name} is missing): pip install 'crossrank[server]'"
        ) from None
    logger.info("loading %s", settings.model)
    app = create_app(settings, load_reranker(settings))  # load first: a bad model fails before binding
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        h11_max_incomplete_event_size=settings.max_header_bytes,  # when uvicorn runs h11, not httptools
    )
    return 0
