"""Typed, loud readers of environment variables for ``settings.py``.

Every reader records the variable's name in ``READ``, so tooling (the compose-file test, the configuration
reference) can tell which variables the settings actually understand. Every malformed value raises
``ImproperlyConfigured`` naming the variable, so a bad deployment stops at start-up instead of running wrong.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

READ: set[str] = set()

_URL_PASSWORD = re.compile(r"(//[^/@:\s]*:)[^/@\s]*@")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    """The value of ``name``, or of the file named by ``name_FILE`` (for secrets mounted as files)."""
    READ.add(name)
    READ.add(f"{name}_FILE")
    value = os.environ.get(name)
    if value is not None:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path is None:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}_FILE: cannot read {path!r}: {exc}") from exc


def without_password(url: str) -> str:
    """``url`` fit for an error message: a database or Redis URL's password is replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", url)


def string(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def boolean(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}: expected a boolean (true/false/1/0), got {value!r}")


def integer(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}: must be >= {minimum}, got {number}")
    return number


def number(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        result = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: expected a number, got {value!r}") from None
    if minimum is not None and result < minimum:
        raise ImproperlyConfigured(f"{name}: must be >= {minimum}, got {result}")
    return result


def string_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


_NAME = re.compile(r"[-a-zA-Z0-9_]{1,100}")


def named_paths(name: str) -> dict[str, str]:
    """``name=/absolute/path`` pairs, comma-separated (``reports=/srv/reports,ws=/srv/workspaces``)."""
    result: dict[str, str] = {}
    for item in string_list(name, []):
        key, equals, path = item.partition("=")
        key, path = key.strip(), path.strip()
        if not equals or not _NAME.fullmatch(key) or not path.startswith("/"):
            raise ImproperlyConfigured(f"{name}: expected name=/absolute/path pairs, got {item!r}")
        if key in result:
            raise ImproperlyConfigured(f"{name}: {key!r} is named twice")
        result[key] = path
    return result


def choice(name: str, default: str, choices: set[str]) -> str:
    value = string(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}: expected one of {sorted(choices)}, got {value!r}")
    return value


_DATABASE_SCHEMES = {"postgres", "postgresql", "pgsql", "sqlite"}


def database(name: str, default: str) -> dict:
    value = string(name, default)
    scheme = urlsplit(value).scheme
    if scheme not in _DATABASE_SCHEMES:
        raise ImproperlyConfigured(f"{name}: expected a postgres:// or sqlite:/// URL, got scheme {scheme!r}")
    try:
        config = environ.Env.db_url_config(value)
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(f"{name}: cannot parse {without_password(value)!r}: {exc}") from exc
    if config["ENGINE"] != "django.db.backends.sqlite3" and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}: the URL names no database")
    return config


def url(name: str, default: str, schemes: set[str]) -> str:
    value = string(name, default)
    if value and urlsplit(value).scheme not in schemes:
        shown = without_password(value)
        raise ImproperlyConfigured(f"{name}: expected a URL with scheme in {sorted(schemes)}, got {shown!r}")
    return value


def redis_kwargs(name: str, value: str) -> dict:
    """``redis.Redis(**kwargs)`` for a ``redis://[:password@]host:port/db`` URL (django-eventstream wants
    keyword arguments, not a URL)."""
    parts = urlsplit(value)
    try:
        db = int(parts.path.lstrip("/") or 0)
        port = parts.port or 6379
    except ValueError:
        raise ImproperlyConfigured(f"{name}: cannot parse {without_password(value)!r}") from None
    kwargs: dict = {"host": parts.hostname or "127.0.0.1", "port": port, "db": db}
    if parts.password:
        kwargs["password"] = parts.password
    if parts.username:
        kwargs["username"] = parts.username
    if parts.scheme == "rediss":
        kwargs["ssl"] = True
    return kwargs


def networks(name: str, default: list[str]) -> list[str]:
    """A comma-separated list of IP networks or addresses (``10.0.0.0/8, 192.168.1.7, ::1``), each checked
    and returned in its normal form."""
    import ipaddress

    result = []
    for item in string_list(name, default):
        try:
            result.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            message = f"{name}: expected IP networks (CIDR) or addresses, got {item!r}"
            raise ImproperlyConfigured(message) from None
    return result
