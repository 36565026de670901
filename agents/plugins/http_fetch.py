"""http_fetch: an agent GETs (or HEADs) one http(s) URL on the allow-list — and reaches nothing inside.

What is refused, and why:

* **Schemes** other than http and https (file:, ftp:, gopher:, data:, javascript:…), and any URL with
  userinfo (``user:pass@host``): credentials have no place in an agent's URL, and the ``@`` is the classic
  way to make one host look like another.
* **Hosts** not on ``HTTP_FETCH_ALLOW_HOSTS`` (empty: nothing at all). Patterns and the canonical form
  compared (IDNA, case, trailing dot) are described in ``agents.plugins.net_policy``.
* **Addresses**: the host is resolved once (``socket.getaddrinfo``) and the fetch refused if *any* address
  is internal (loopback, private, link-local, metadata…; ``net_policy``) and not inside
  ``HTTP_FETCH_ALLOW_NETWORKS``. The resolved addresses are judged, never the spelling: ``2130706433``,
  ``0x7f.1``, ``127.1``, ``[::ffff:7f00:1]`` and a public-looking name that resolves to 10.0.0.5 are all
  caught because the resolver has already turned them into the address they mean.
* **DNS rebinding**: the connection is opened to the very address that was checked — a urllib3 pool on the
  IP, with the name sent as the Host header, as SNI and as the name the certificate must match — so a
  resolver answering something else a moment later is never asked again.
* **Redirects** are followed here, not by urllib3, at most ``HTTP_FETCH_MAX_REDIRECTS`` of them, and every
  new URL is checked from scratch (scheme, allow-list, resolution, addresses): an allowed page that
  redirects to 169.254.169.254 or to a host off the list is refused.
* **Size and time**: at most ``HTTP_FETCH_MAX_BYTES`` of body (an argument may lower it), counted while
  reading — Content-Length is only a reason to refuse early, never to trust; a body over the cap is an
  error, never a truncated result. Every wait is bounded by the connect or read timeout and by the time the
  gateway still waits (``call.remaining()``); a watchdog shuts the socket at the deadline, so a server
  trickling header lines or body bytes, each within the read timeout, cannot outlast the call either.
  (Name resolution itself is bounded by the system resolver's own timeouts, not by the call's.)
* **Proxies** are never used: ``HTTP(S)_PROXY`` in the environment is ignored, because a proxy resolves
  the name again itself and would undo the pin.
* **Request headers**: the agent may send Accept, Accept-Language, If-None-Match and If-Modified-Since;
  anything else is refused by name (User-Agent is ours; cookies and authorization are never sent).

A response of any status (404, 500, a redirect not followed) is a result, not an error. Errors
(``PluginError.code``, HTTP status): 422 ``invalid_url``, ``scheme_not_allowed``, ``userinfo_not_allowed``,
``method_not_allowed``, ``header_not_allowed``, ``invalid_header``; 403 ``host_not_allowed``,
``address_not_allowed``; 502 ``dns_failed``, ``connect_failed``, ``tls_failed``, ``too_many_redirects``,
``too_large``, ``response_failed``; 504 ``timeout``. Each error's detail names the host or address refused.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import SplitResult, quote, urljoin, urlsplit, urlunsplit

from django.conf import settings
from urllib3 import HTTPConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.response import BaseHTTPResponse
from urllib3.util import Timeout

from agents.plugins import net_policy
from agents.plugins.base import Call, Limits, Plugin, PluginError
from agents.plugins.pinned import Watchdog, pinned_pool

USER_AGENT = "agent-controlplane-http-fetch/1"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
AGENT_HEADERS = {
    "accept": "Accept",
    "accept-language": "Accept-Language",
    "if-none-match": "If-None-Match",
    "if-modified-since": "If-Modified-Since",
}
RESULT_HEADERS = ("content-type", "content-length", "last-modified", "etag", "content-language", "location")
MAX_URL_CHARS = 8192
MAX_HEADER_CHARS = 1024
CHUNK_BYTES = 64 * 1024
# Room in the result for everything but the body: the URL, the headers (each cut to MAX_HEADER_CHARS).
RESULT_OVERHEAD_BYTES = 64 * 1024
_TEXT_TYPES = frozenset(
    {"application/json", "application/xml", "application/javascript", "application/ecmascript"}
)
_UNSAFE_URL = re.compile(r"[\x00-\x1f\x7f\\]")
_SAFE_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


@dataclass(frozen=True)
class Options:
    method: str
    headers: dict[str, str]
    max_bytes: int
    follow_redirects: bool


@dataclass(frozen=True)
class Target:
    """One URL, checked: where the request goes (``addresses``) and what it says (host header, path)."""

    url: str  # normalised, without its fragment: what the result reports
    scheme: str
    host: str  # canonical (net_policy.canonical_host)
    port: int
    request_path: str  # path and query, percent-encoded
    addresses: tuple[net_policy.IPAddress, ...]  # every one checked, in the resolver's order

    @property
    def host_header(self) -> str:
        return _authority(self.scheme, self.host, self.port)


class _Unreachable(Exception):
    """This address could not be connected to; the name's next address may be."""

    def __init__(self, error: PluginError) -> None:
        super().__init__(error.message)
        self.error = error


def fetch(arguments: dict[str, Any], call: Call) -> dict[str, Any]:
    options = _options(arguments)
    watchdog = Watchdog(call.remaining())
    try:
        result = _follow(arguments["url"], options, call, watchdog)
    except PluginError as exc:
        if watchdog.expired:  # whatever broke, it broke because the socket was shut at the deadline
            raise PluginError("timeout", "the call ran out of time", exc.detail, status=504) from None
        raise
    finally:
        watchdog.cancel()
    if watchdog.expired:  # a close-delimited body shut at the deadline looks complete: it is not
        raise PluginError("timeout", "the call ran out of time", {"url": result["url"]}, status=504)
    return result


def _follow(url: str, options: Options, call: Call, watchdog: Watchdog) -> dict[str, Any]:
    max_redirects, redirects = settings.HTTP_FETCH_MAX_REDIRECTS, 0
    while True:
        target = _target(url, redirects)
        with _open(target, options, call, watchdog) as response:
            location = _redirect(response, options)
            if location is None:
                body = None if options.method == "HEAD" else _read_body(response, target, options, call)
                return _result(target, response, body, redirects)
        if redirects >= max_redirects:
            detail = {"limit": max_redirects, "url": target.url, "host": target.host}
            raise PluginError(
                "too_many_redirects", f"more than {max_redirects} redirects", detail, status=502
            )
        url, redirects = urljoin(target.url, location), redirects + 1


def _redirect(response: BaseHTTPResponse, options: Options) -> str | None:
    """The location to follow from ``response``, or None when it is the answer."""
    if not options.follow_redirects or response.status not in REDIRECT_STATUSES:
        return None
    return response.headers.get("location") or None


def _options(arguments: dict[str, Any]) -> Options:
    method = arguments.get("method", "GET")
    if method not in ("GET", "HEAD"):
        raise PluginError("method_not_allowed", "only GET and HEAD are allowed", {"method": method})
    headers = {}
    for name, value in arguments.get("headers", {}).items():
        canonical = AGENT_HEADERS.get(name.lower())
        if canonical is None:
            allowed = ", ".join(AGENT_HEADERS.values())
            message = f"the header {name!r} may not be sent (allowed: {allowed})"
            raise PluginError("header_not_allowed", message, {"header": name})
        if (
            not isinstance(value, str)
            or len(value) > MAX_HEADER_CHARS
            or not _SAFE_HEADER_VALUE.fullmatch(value)
        ):
            message = f"the value of {name!r} must be printable ASCII, at most {MAX_HEADER_CHARS} characters"
            raise PluginError("invalid_header", message, {"header": name})
        headers[canonical] = value
    limit = settings.HTTP_FETCH_MAX_BYTES
    requested = arguments.get("max_bytes")
    max_bytes = limit if requested is None else min(limit, requested)
    return Options(method, headers, max_bytes, arguments.get("follow_redirects", True))


def _target(url: str, redirects: int) -> Target:
    """``url`` checked completely: its form, scheme, userinfo, allow-list, resolution, every address."""
    context: dict[str, Any] = {"url": url[:MAX_URL_CHARS]} | ({"redirect": redirects} if redirects else {})
    scheme, host, port, parts = _parse(url, context)
    context["host"] = host
    if not net_policy.host_allowed(host, settings.HTTP_FETCH_ALLOW_HOSTS):
        raise PluginError("host_not_allowed", f"{host} is not on the allow-list", context, status=403)
    addresses = _resolve(host, port, context)
    _check_addresses(host, addresses, context)
    path = quote(parts.path, safe=_PATH_SAFE) or "/"
    query = quote(parts.query, safe=_PATH_SAFE + "?")
    normalised = urlunsplit((scheme, _authority(scheme, host, port), path, query, ""))
    return Target(normalised, scheme, host, port, path + (f"?{query}" if query else ""), addresses)


def _parse(url: str, context: dict[str, Any]) -> tuple[str, str, int, SplitResult]:
    """The scheme, canonical host and port of ``url``, and its parts; refused unless http(s) without
    userinfo. The one parse both the checks and the request use, so they cannot disagree."""
    if len(url) > MAX_URL_CHARS or url != url.strip() or _UNSAFE_URL.search(url):
        message = (
            f"not a URL this plugin fetches (control characters, backslashes, over {MAX_URL_CHARS} chars)"
        )
        raise PluginError("invalid_url", message, context)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise PluginError("invalid_url", f"not a valid URL: {exc}", context) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        shown = f"{scheme}:" if scheme else "a relative URL"
        message = f"only http and https URLs may be fetched, not {shown}"
        raise PluginError("scheme_not_allowed", message, context | {"scheme": scheme})
    if "@" in parts.netloc:
        raise PluginError("userinfo_not_allowed", "a URL with user:password@ is refused", context)
    try:
        host, port = net_policy.canonical_host(parts.hostname or ""), parts.port
    except ValueError as exc:
        raise PluginError("invalid_url", f"not a valid host or port: {exc}", context) from None
    if port == 0:
        raise PluginError("invalid_url", "port 0 is not a port", context)
    return scheme, host, port or DEFAULT_PORTS[scheme], parts


def _authority(scheme: str, host: str, port: int) -> str:
    bracketed = f"[{host}]" if ":" in host else host
    return bracketed if port == DEFAULT_PORTS[scheme] else f"{bracketed}:{port}"


def _resolve(host: str, port: int, context: dict[str, Any]) -> tuple[net_policy.IPAddress, ...]:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        error = getattr(exc, "strerror", None) or str(exc)
        raise PluginError(
            "dns_failed", f"{host} did not resolve", context | {"error": error}, status=502
        ) from None
    families = (socket.AF_INET, socket.AF_INET6)
    addresses = tuple(dict.fromkeys(ip_address(answer[4][0]) for answer in answers if answer[0] in families))
    if not addresses:
        raise PluginError("dns_failed", f"{host} has no IP address", context, status=502)
    return addresses


def _check_addresses(host: str, addresses: tuple[net_policy.IPAddress, ...], context: dict[str, Any]) -> None:
    networks = net_policy.parse_networks(settings.HTTP_FETCH_ALLOW_NETWORKS)
    for address in addresses:
        if (found := net_policy.refusal(address, networks)) is not None:
            message = f"{host} resolves to {found.address}, a {found.reason.replace('_', '-')} address"
            raise PluginError("address_not_allowed", message, context | found.detail(), status=403)


@contextlib.contextmanager
def _open(target: Target, options: Options, call: Call, watchdog: Watchdog) -> Iterator[BaseHTTPResponse]:
    pool, response = _connect(target, options, call, watchdog)
    try:
        yield response
    finally:
        response.close()
        pool.close()


def _connect(
    target: Target, options: Options, call: Call, watchdog: Watchdog
) -> tuple[HTTPConnectionPool, BaseHTTPResponse]:
    failure = PluginError("connect_failed", f"could not connect to {target.host}", {"host": target.host})
    for address in target.addresses:
        pool = pinned_pool(target.scheme, address, target.port, target.host, watchdog)
        try:
            return pool, _request(pool, target, address, options, call)
        except _Unreachable as exc:
            failure = exc.error  # the next address the name resolved to may answer
        except Exception:
            pool.close()
            raise
        pool.close()
    raise failure


def _request(
    pool: HTTPConnectionPool, target: Target, address: net_policy.IPAddress, options: Options, call: Call
) -> BaseHTTPResponse:
    detail = {"host": target.host, "address": str(address), "url": target.url}
    connect = _wait(settings.HTTP_FETCH_CONNECT_TIMEOUT_S, call, detail)
    read = _wait(settings.HTTP_FETCH_READ_TIMEOUT_S, call, detail)
    headers = {"Host": target.host_header, "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    try:
        return pool.urlopen(
            options.method,
            target.request_path,
            headers=headers | options.headers,
            retries=False,
            redirect=False,
            assert_same_host=False,
            preload_content=False,
            timeout=Timeout(connect=connect, read=read),
        )
    except NewConnectionError as exc:  # before its base class ConnectTimeoutError
        message = f"could not connect to {target.host} at {address}"
        raise _Unreachable(PluginError("connect_failed", message, detail | _cause(exc), status=502)) from None
    except ConnectTimeoutError:
        message = f"connecting to {target.host} at {address} timed out"
        raise _Unreachable(
            PluginError("timeout", message, detail | {"phase": "connect"}, status=504)
        ) from None
    except ReadTimeoutError:
        message = f"{target.host} did not answer in time"
        raise PluginError("timeout", message, detail | {"phase": "read"}, status=504) from None
    except SSLError as exc:
        raise PluginError(
            "tls_failed", f"TLS with {target.host} failed", detail | _cause(exc), status=502
        ) from None
    except HTTPError as exc:
        message = f"{target.host} broke off the exchange"
        raise PluginError("response_failed", message, detail | _cause(exc), status=502) from None


def _wait(limit: float, call: Call, detail: dict[str, Any]) -> float:
    """How long the next wait may last: the configured limit, or less if the call has less time left."""
    remaining = call.remaining()
    if remaining <= 0:
        raise PluginError("timeout", "the call ran out of time", detail, status=504)
    return min(limit, remaining)


def _read_body(response: BaseHTTPResponse, target: Target, options: Options, call: Call) -> bytes:
    cap, detail = options.max_bytes, {"host": target.host, "url": target.url, "limit": options.max_bytes}
    too_large = PluginError("too_large", f"the body is larger than {cap} bytes", detail, status=502)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap and not response.headers.get("content-encoding"):
        raise too_large
    body = bytearray()
    while chunk := _read_chunk(response, min(CHUNK_BYTES, cap + 1 - len(body)), call, detail):
        body += chunk
        if len(body) > cap:
            raise too_large
    return bytes(body)


def _read_chunk(response: BaseHTTPResponse, amount: int, call: Call, detail: dict[str, Any]) -> bytes:
    # read1 waits on the socket once (within the read timeout); the watchdog ends a wait at the deadline.
    _wait(settings.HTTP_FETCH_READ_TIMEOUT_S, call, detail)
    try:
        return response.read1(amount)
    except ReadTimeoutError:
        raise PluginError("timeout", "the body did not arrive in time", detail, status=504) from None
    except HTTPError as exc:
        message = "the body was cut short or malformed"
        raise PluginError("response_failed", message, detail | _cause(exc), status=502) from None


def _result(target: Target, response: BaseHTTPResponse, body: bytes | None, redirects: int) -> dict[str, Any]:
    content_type, charset = _content_type(response.headers.get("content-type"))
    result: dict[str, Any] = {
        "status": response.status,
        "url": target.url,
        "content_type": content_type,
        "charset": charset,
        "size": 0 if body is None else len(body),
        "redirects": redirects,
        "headers": {
            name: value[:MAX_HEADER_CHARS]
            for name in RESULT_HEADERS
            if (value := response.headers.get(name)) is not None
        },
    }
    if body is None:
        return result
    if content_type is not None and _is_text(content_type):
        text, charset = _decode(body, charset)
        return result | {"charset": charset, "text": text}
    return result | {"base64": base64.b64encode(body).decode("ascii")}


def _content_type(value: str | None) -> tuple[str | None, str | None]:
    """The media type and charset parameter of a Content-Type header, both lower case."""
    if not value:
        return None, None
    media, *parameters = value.split(";")
    charset = None
    for parameter in parameters:
        name, _, raw = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = raw.strip().strip('"').lower() or None
    return media.strip().lower() or None, charset


def _is_text(media: str) -> bool:
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def _decode(body: bytes, declared: str | None) -> tuple[str, str]:
    if declared:
        try:
            return body.decode(declared, errors="replace"), codecs.lookup(declared).name
        except (LookupError, UnicodeError):
            pass  # an unknown charset, or a codec that is not a text encoding: read it as UTF-8
    return body.decode("utf-8", errors="replace"), "utf-8"


def _cause(exc: BaseException) -> dict[str, str]:
    reason = getattr(exc, "reason", None) or exc
    return {"error": str(reason)[:300]}


ARGUMENTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "url": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_URL_CHARS,
            "description": "An http or https URL on a host the deployment allows.",
        },
        "method": {"enum": ["GET", "HEAD"], "default": "GET"},
        "headers": {
            "type": "object",
            "maxProperties": len(AGENT_HEADERS),
            "additionalProperties": {
                "type": "string",
                "maxLength": MAX_HEADER_CHARS,
                "pattern": r"^[\t\x20-\x7e]*$",
            },
            "description": "Only " + ", ".join(AGENT_HEADERS.values()) + ".",
        },
        "max_bytes": {
            "type": "integer",
            "minimum": 0,
            "description": "Refuse a body larger than this (the deployment's limit applies if it is lower).",
        },
        "follow_redirects": {"type": "boolean", "default": True},
    },
    "required": ["url"],
    "additionalProperties": False,
}

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "status": {"type": "integer", "minimum": 100, "maximum": 999},
        "url": {"type": "string"},
        "content_type": {"type": ["string", "null"]},
        "charset": {"type": ["string", "null"]},
        "size": {"type": "integer", "minimum": 0},
        "redirects": {"type": "integer", "minimum": 0},
        "headers": {
            "type": "object",
            "propertyNames": {"enum": list(RESULT_HEADERS)},
            "additionalProperties": {"type": "string"},
        },
        "text": {"type": "string"},
        "base64": {"type": "string", "contentEncoding": "base64"},
    },
    "required": ["status", "url", "content_type", "charset", "size", "redirects", "headers"],
    "additionalProperties": False,
    "not": {"required": ["text", "base64"]},
}


def _limits() -> Limits:
    # A result is JSON: base64 makes a body 4/3 its size, and text escapes up to six bytes per body byte
    # (json.dumps writes a control character or U+FFFD as \\uXXXX), so the budget is six times the cap.
    return Limits(
        timeout_s=settings.HTTP_FETCH_CONNECT_TIMEOUT_S + settings.HTTP_FETCH_READ_TIMEOUT_S,
        max_result_bytes=6 * settings.HTTP_FETCH_MAX_BYTES + RESULT_OVERHEAD_BYTES,
    )


PLUGIN = Plugin(
    name="http_fetch",
    description=(
        "Fetch one http(s) URL (GET or HEAD) from an allowed public host. Returns the status (any status is "
        "a result), the final URL after redirects, content type, charset, size, a few headers, and the body "
        "as `text` for text-like types or `base64` otherwise."
    ),
    schema=ARGUMENTS_SCHEMA,
    result_schema=RESULT_SCHEMA,
    function=fetch,
    limits=_limits(),
)
