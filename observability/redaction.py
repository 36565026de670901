"""Secrets out of log lines: a structlog processor and a text scrubber for rendered tracebacks.

Two rules, applied to every line whatever its source (our loggers, Django's, the libraries'):

* a value under a credential-like key (``password``, ``token``, ``*_token``, ``secret``, ``api_key``,
  ``Authorization``, ``Cookie``...) is replaced, at any depth of the event dict;
* inside any string (the message, an exception's text, a header dump), ``Token <key>`` / ``Bearer <key>`` /
  ``Basic <key>``, ``password=…`` / ``"token": "…"`` pairs and a URL's ``user:password@`` lose their value.

Frame locals are never rendered (``observability.logging``), so a secret held in a variable of a failing
function cannot reach this far; these rules catch the secrets that travel in messages and fields.
"""

from __future__ import annotations

import functools
import re
from typing import Any

REDACTED = "[REDACTED]"

_SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "http_authorization",
        "cookie",
        "set_cookie",
        "http_cookie",
        "password",
        "passwd",
        "token",
        "api_key",
        "apikey",
        "x_api_key",
        "sessionid",
        "csrftoken",
        "private_key",
    }
)
# Left for the renderer as they are: the console renderer formats ``exc_info`` itself (through
# ``observability.logging.redacted_plain_traceback``, which scrubs the text).
_RENDERER_INPUTS = frozenset({"exc_info"})
_SENSITIVE_SUFFIXES = ("_token", "_password", "_api_key", "_apikey")
_CREDENTIAL_WORDS = r"password|passwd|secret|api[_-]?key|access[_-]?token|refresh[_-]?token|token"
_SCHEME_VALUE = re.compile(r"\b(Token|Bearer|Basic)(\s+)(?!\[REDACTED\])[^\s\"',;)\]}]+", re.IGNORECASE)
_PAIR_VALUE = re.compile(
    rf"(\b(?:[\w-]*(?:{_CREDENTIAL_WORDS}))[\"']?\s*[:=]\s*[\"']?)"
    r"(?!\[REDACTED\])(?!(?:Token|Bearer|Basic)\s)[^\s\"'&,;)\]}]+",
    re.IGNORECASE,
)


_URL_PASSWORD = re.compile(r"(//[^/@:\s]*:)(?!\[REDACTED\]@)[^/@\s]+@")  # postgres://user:password@host
# Most lines hold no credential word at all: one cheap search spares them the substitutions.
_HINT = re.compile(r"token|bearer|basic|passw|secret|api.?key|@", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def _is_sensitive_name(key: str) -> bool:
    normalized = key.lower().replace("-", "_")
    return (
        normalized in _SENSITIVE_KEYS
        or "secret" in normalized
        or "password" in normalized
        or normalized.endswith(_SENSITIVE_SUFFIXES)
    )


def redact_text(text: str) -> str:
    if not _HINT.search(text):
        return text
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    return _PAIR_VALUE.sub(rf"\1{REDACTED}", _SCHEME_VALUE.sub(rf"\1\2{REDACTED}", text))


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _redact_item(key, item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item) for item in value]
    return value


def _redact_item(key: object, value: Any) -> Any:
    # Flags and counts under such a key (``token_set: true``) say nothing secret and stay readable.
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(key, str) and _is_sensitive_name(key):
        return REDACTED
    return redact_value(value)


def redact_event(logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: place it after the exception renderer, so rendered tracebacks are scrubbed too."""
    for key, value in event_dict.items():
        if key not in _RENDERER_INPUTS:
            event_dict[key] = _redact_item(key, value)  # replacing values while iterating is safe
    return event_dict
