"""The server's settings: one pydantic-settings object for env vars, CLI flags and a config file.

Precedence, highest first: CLI flags (passed as keyword arguments), ``CROSSRANK_*`` environment
variables, the config file (``--config-file`` / ``CROSSRANK_CONFIG_FILE``, JSON or TOML), defaults.
``crossrank serve --help`` is generated from the fields below; their descriptions are the help text.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "CROSSRANK_"
# Keys that people leave in templates; starting a protected server with one of them is refused.
PLACEHOLDER_KEYS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "secret",
        "password",
        "placeholder",
        "apikey",
        "api-key",
        "api_key",
        "your-api-key",
        "your_api_key",
        "yourapikey",
        "key",
        "token",
        "xxx",
        "xxxx",
        "todo",
        "none",
        "null",
        "default",
        "example",
        "test",
        "sk-...",
        "...",
    }
)
MIN_KEY_LENGTH = 8


class ServerSettings(BaseSettings):
    """Everything ``crossrank serve`` can be told. Every field is also ``CROSSRANK_<NAME>``."""

    # hide_input_in_errors: a refused value (an api_key with a trailing newline, say) stays out of the error,
    # which Serve's builder and replicas write to Ray's logs and status.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", validate_default=True, hide_input_in_errors=True
    )

    # --- model
    model: str = Field("embedded", description="'embedded', a local model folder or a hub id")
    served_model_name: str | None = Field(
        None, description="model name reported in responses (default: the model's own name)"
    )
    backend: Literal["auto", "torch", "onnx", "openvino"] = Field(
        "auto",
        description="inference backend (auto: on CPU the fastest whose accuracy gate passed on this machine)",
    )
    device: str | None = Field(None, description="cpu, cuda, cuda:N (default: cuda when available)")
    dtype: Literal["auto", "fp32", "bf16", "fp16", "int8"] = Field(
        "auto", description="weights dtype (int8: ONNX / OpenVINO backends)"
    )
    max_length: int = Field(512, ge=8, description="tokens per (query, window) pair")
    batch_size: int = Field(32, ge=1, description="rows per forward pass at most")
    max_batch_tokens: int = Field(16384, ge=64, description="padded tokens per forward pass at most")
    window: int | None = Field(None, ge=1, description="passage tokens per window (default: all that fit)")
    stride: int | None = Field(None, ge=1, description="tokens between window starts (default: 3/4 window)")
    max_windows: int = Field(32, ge=1, description="windows scored per document at most")
    aggregate: Literal["max", "mean", "weighted", "first"] = Field("max", description="window aggregation")
    # --- network
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, ge=0, le=65535, description="port to listen on")
    api_key: SecretStr | None = Field(
        None, description="require 'Authorization: Bearer <key>' on rerank and info routes"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="server log level")
    config_file: Path | None = Field(None, description="JSON or TOML file with any of these settings")
    # --- batching and backpressure
    batch_token_budget: int = Field(
        32768, ge=1, description="tokens gathered from concurrent requests into one engine call at most"
    )
    max_wait_ms: float = Field(
        5.0, ge=0, le=10_000, description="how long a request waits for others to batch with, in ms"
    )
    max_queue: int = Field(64, ge=1, description="requests waiting for the model at most; more get 429")
    request_timeout_s: float = Field(
        300.0, gt=0, description="a request still waiting for the model after this long gets 503"
    )
    # --- request limits
    max_documents: int = Field(1000, ge=1, description="documents per request at most (413 over it)")
    max_document_chars: int = Field(
        100_000, ge=1, description="characters per document (or query) at most (413 over it)"
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="request body size at most, in bytes (413 over it)"
    )
    max_header_bytes: int = Field(
        32 * 1024, ge=1024, description="request headers' total size at most, in bytes (431 over it)"
    )
    # --- dialect defaults
    v1_return_documents: bool = Field(
        True,
        description="return_documents default on /v1/rerank (true: Jina's default; a document object "
        "is valid in Cohere v1 responses too)",
    )
    v2_return_documents: bool = Field(False, description="return_documents default on /v2/rerank")
    rerank_return_documents: bool = Field(
        True, description="return_documents default on /rerank with 'documents' (Jina, vLLM)"
    )
    # --- Ray Serve (crossrank serve --ray, crossrank.server.ray:build_app)
    ray: bool = Field(False, description="serve on Ray Serve: one crossrank server per replica")
    ray_address: str | None = Field(
        None, description="Ray cluster to deploy to, e.g. auto or ray://head:10001 (default: a local Ray)"
    )
    num_replicas: int = Field(1, ge=1, description="Ray Serve replicas (fixed; max_replicas autoscales)")
    min_replicas: int | None = Field(None, ge=0, description="autoscaling: fewest replicas (default 1)")
    max_replicas: int | None = Field(None, ge=1, description="autoscaling: most replicas (turns it on)")
    replica_cpus: float = Field(1.0, gt=0, description="CPUs per Ray Serve replica (also its model threads)")
    replica_gpus: float = Field(0.0, ge=0, description="GPUs per Ray Serve replica")
    max_ongoing_requests: int | None = Field(
        None, ge=1, description="requests Ray Serve sends a replica at once (default, and at most: max_queue)"
    )
    max_queued_requests: int | None = Field(
        None, ge=1, description="requests queued at Ray Serve's proxy at most; 429 beyond (default max_queue)"
    )

    @field_validator("api_key")
    @classmethod
    def _check_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        key = value.get_secret_value()
        if not key.strip():
            raise ValueError("api_key is empty; set a real secret or leave api_key unset to disable auth")
        if key.strip().lower() in PLACEHOLDER_KEYS:
            raise ValueError("api_key is a placeholder value; generate one, e.g. `openssl rand -hex 32`")
        if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
            raise ValueError(f"api_key must be at least {MIN_KEY_LENGTH} characters without spaces")
        return value

    @model_validator(mode="after")
    def _check_window(self) -> ServerSettings:
        if self.window is not None and self.stride is not None and self.stride > self.window:
            raise ValueError(f"stride ({self.stride}) must be <= window ({self.window})")
        return self

    @model_validator(mode="after")
    def _check_ray(self) -> ServerSettings:
        if self.max_ongoing_requests is not None and self.max_ongoing_requests > self.max_queue:
            raise ValueError(
                f"max_ongoing_requests ({self.max_ongoing_requests}) must be <= max_queue "
                f"({self.max_queue}): a replica cannot queue more; raise max_queue or lower it"
            )
        if self.min_replicas is not None and self.max_replicas is None:
            raise ValueError("min_replicas needs max_replicas (autoscaling bounds); or use num_replicas")
        if self.max_replicas is not None and (self.min_replicas or 0) > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = init_settings.init_kwargs.get("config_file") or os.environ.get(f"{ENV_PREFIX}CONFIG_FILE")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path:
            sources.append(ConfigFileSource(settings_cls, Path(path)))
        return tuple(sources)

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`crossrank.Reranker`."""
        return {
            "backend": self.backend,
            "device": self.device,
            "dtype": self.dtype,
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "max_batch_tokens": self.max_batch_tokens,
            "window": self.window,
            "stride": self.stride,
            "max_windows": self.max_windows,
            "aggregate": self.aggregate,
            "max_document_chars": self.max_document_chars,
        }


class ConfigFileSource(PydanticBaseSettingsSource):
    """Settings read from a JSON (``.json``) or TOML (anything else) file."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path):
        super().__init__(settings_cls)
        self.values = read_config_file(path)

    def get_field_value(self, field, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a flat settings table; keys may use dashes or underscores."""
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(
            f"config file {path} is not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a table of settings")
    data = data.get("crossrank", data) if isinstance(data.get("crossrank"), dict) else data
    return {str(k).replace("-", "_"): v for k, v in data.items()}
