"""The executor's configuration: command-line flags over environment variables over defaults.

Like the control plane's settings, a malformed value stops start-up with a message naming the variable, and
secrets can be read from a file named by ``NAME_FILE``. This module imports nothing from the control plane.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Every variable the executor reads: the compose-file test checks the executor service passes no others.
ENVIRONMENT_VARIABLES = frozenset(
    {
        "EXECUTOR_TOKEN",
        "EXECUTOR_TOKEN_FILE",
        "EXECUTOR_ADMIN_TOKEN",
        "EXECUTOR_ADMIN_TOKEN_FILE",
        "EXECUTOR_KEEPALIVE_S",
        "EXECUTOR_RETENTION_S",
        "EXECUTOR_FAULTS",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_API_KEY_FILE",
        "OPENAI_MODEL",
        "LOG_FORMAT",
        "LOG_LEVEL",
    }
)


class ConfigError(Exception):
    """A missing or malformed setting; the message names the variable or flag."""


@dataclass(frozen=True)
class OpenAIConfig:
    base_url: str = "https://api.openai.com/v1"
    api_key: str = field(default="", repr=False)
    model: str = "gpt-4o-mini"


@dataclass(frozen=True)
class Config:
    token: str = field(repr=False)
    admin_token: str = field(repr=False)  # empty: the /v1/admin/ API is off
    # Shorter than any client's read timeout (the control plane's default is 30 s), so a quiet stream
    # never looks dead to the client.
    keepalive_s: float = 10.0
    retention_s: float = 3600.0
    faults: dict[str, Any] | None = None
    openai: OpenAIConfig = OpenAIConfig()
    log_format: str = "console"
    log_level: str = "info"


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is not None:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path is None:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE: cannot read {path!r}: {exc}") from exc


def _number(name: str, value: str | None, default: float, minimum: float) -> float:
    if value is None:
        return default
    try:
        result = float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if result < minimum:
        raise ConfigError(f"{name}: must be >= {minimum}, got {result}")
    return result


def _choice(name: str, default: str, choices: set[str]) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value


def _faults(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        faults = json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"EXECUTOR_FAULTS: not JSON: {exc}") from None
    if not isinstance(faults, dict):
        raise ConfigError("EXECUTOR_FAULTS: expected a JSON object")
    return faults


def _openai() -> OpenAIConfig:
    base_url = os.environ.get("OPENAI_BASE_URL") or OpenAIConfig.base_url
    if urlsplit(base_url).scheme not in {"http", "https"}:
        raise ConfigError(f"OPENAI_BASE_URL: expected an http(s) URL, got {base_url!r}")
    return OpenAIConfig(
        base_url=base_url.rstrip("/"),
        api_key=_env("OPENAI_API_KEY") or "",
        model=os.environ.get("OPENAI_MODEL") or OpenAIConfig.model,
    )


def _admin_token(args: argparse.Namespace, token: str) -> str:
    """The fault API's own token; empty turns that API off. Never the protocol token: whoever may call
    the protocol (the control plane, anyone holding an executor's token) must not be able to break it."""
    admin_token = (args.admin_token or _env("EXECUTOR_ADMIN_TOKEN") or "").strip()
    if admin_token and hmac.compare_digest(admin_token.encode(), token.encode()):
        raise ConfigError(
            "EXECUTOR_ADMIN_TOKEN: must differ from EXECUTOR_TOKEN (leave it unset to turn off /v1/admin/)"
        )
    return admin_token


def load(args: argparse.Namespace) -> Config:
    token = args.token or _env("EXECUTOR_TOKEN")
    if not token:
        raise ConfigError("EXECUTOR_TOKEN: required (or --token); every call must carry it as a Bearer token")
    keepalive = args.keepalive_s if args.keepalive_s is not None else _env("EXECUTOR_KEEPALIVE_S")
    return Config(
        token=token,
        admin_token=_admin_token(args, token),
        keepalive_s=_number("EXECUTOR_KEEPALIVE_S", keepalive, 10.0, 0.05),
        retention_s=_number("EXECUTOR_RETENTION_S", _env("EXECUTOR_RETENTION_S"), 3600.0, 1.0),
        faults=_faults(_env("EXECUTOR_FAULTS")),
        openai=_openai(),
        log_format=_choice("LOG_FORMAT", "console", {"console", "json"}),
        log_level=_choice("LOG_LEVEL", "info", {"debug", "info", "warning", "error"}),
    )
