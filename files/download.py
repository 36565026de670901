"""A regular file as an HTTP response: conditional GET, one byte range, a safe attachment header.

``FileResponse`` ignores ``Range`` (FACTS.md) and reads 4 KiB at a time, so the response is built here:
RFC 9110's single range (``bytes=a-b``, ``a-``, ``-n``) → 206; one that starts past the end → 416 with
``Content-Range: bytes */size``; several ranges, another unit or a malformed or inverted one → the whole
file (200, as the RFC allows); ``If-Range`` with a stale validator → the whole file. Validators: a strong
``ETag`` from inode, size and modification time, and ``Last-Modified``; Django's own conditional-response
code answers ``If-None-Match`` / ``If-Modified-Since`` (304) and ``If-Match`` / ``If-Unmodified-Since``.
The body is read from the descriptor that passed the checks (``os.pread``), never reopened by name.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, parse_http_date_safe
from django.utils.translation import gettext_lazy

from files.audit import Access
from files.paths import Opened, Refusal

logger = logging.getLogger(__name__)

_RANGE_SPEC = re.compile(r"([0-9]{1,19})?-([0-9]{1,19})?")
# What a browser may show inline from our origin: raster images as they are; text only as text/plain.
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"})
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-yaml", "application/yaml")
TEXT_SUFFIXES = (".md", ".log", ".txt", ".csv", ".tsv", ".yaml", ".yml", ".toml", ".ini", ".cfg")
DOWNLOAD_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'self'"
)


class RangeNotSatisfiable(Refusal):
    status = 416
    code = "range_not_satisfiable"
    message = gettext_lazy("The requested range is outside the file.")
    outcome = "invalid"

    def __init__(self, size: int) -> None:
        super().__init__("range_not_satisfiable", detail={"size": size})
        self.size = size

    def response_headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class PreconditionFailed(Refusal):
    status = 412
    code = "precondition_failed"
    message = gettext_lazy("The file has changed.")
    outcome = "invalid"


class FileChanged(Exception):
    """The file ended before the bytes promised in ``Content-Length``: the response cannot be completed."""


UNSATISFIABLE = (-1, -1)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range ``header`` asks of a file of ``size`` bytes as (first, last) inclusive, ``None`` for
    the whole file, ``UNSATISFIABLE`` for 416."""
    if not header:
        return None
    unit, equals, spec = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs = [part.strip() for part in spec.split(",") if part.strip()]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None or (match.group(1) is None and match.group(2) is None):
        return None
    first, last = (None if group is None else int(group) for group in match.groups())
    if first is None:  # a suffix: the last n bytes
        assert last is not None
        if last == 0:
            return UNSATISFIABLE
        return None if size == 0 else (max(0, size - last), size - 1)
    if last is not None and last < first:
        return None
    if first >= size:
        return UNSATISFIABLE
    return first, size - 1 if last is None else min(last, size - 1)


def etag_of(info: os.stat_result) -> str:
    return f'"{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}"'


def if_range_holds(header: str | None, etag: str, mtime: int) -> bool:
    """``If-Range``: the range is served only if the validator still matches (strongly; a date exactly)."""
    if header is None:
        return True
    value = header.strip()
    if value.startswith('"'):
        return value == etag
    if value.startswith("W/"):
        return False
    return parse_http_date_safe(value) == mtime


def safe_filename(name: str) -> str:
    """``name`` without control, format (bidi overrides such as U+202E) or line/paragraph separators."""
    kept = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs"))
    return kept.strip().strip(".") or "download"


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """RFC 6266: an ASCII ``filename`` for old clients and the exact one in RFC 8187's ``filename*``."""
    clean = safe_filename(name)
    fallback = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%;' else "_" for ch in clean)
    exact = quote(clean, safe="!#$&+-.^_`|~")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


def content_type_of(name: str, *, inline: bool) -> tuple[str, bool]:
    """The type to send and whether it may be shown inline (else it is an attachment)."""
    guessed = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    if not inline:
        return guessed, False
    if guessed in INLINE_IMAGES:
        return guessed, True
    if guessed.startswith(TEXT_TYPES) or name.lower().endswith(TEXT_SUFFIXES):
        return "text/plain; charset=utf-8", True  # an HTML or SVG file is shown as its source
    return guessed, False


@dataclass
class Body:
    """The bytes ``[offset, offset + length)`` of the open file, read in chunks as they are sent. When it
    is closed before its last byte (the client left, the file shrank), a second audit row says so."""

    opened: Opened
    offset: int
    length: int
    access: Access
    sent: int = 0
    failure: str = ""

    def __iter__(self) -> Body:
        return self

    def __next__(self) -> bytes:
        if self.sent >= self.length:
            raise StopIteration
        size = min(settings.FILES_CHUNK_BYTES, self.length - self.sent)
        chunk = os.pread(self.opened.fd, size, self.offset + self.sent)
        if not chunk:
            self.failure = "file_changed"
            logger.warning("file_shrank_mid_download", extra={"path": self.opened.resolved})
            raise FileChanged(f"{self.opened.resolved} ended {self.length - self.sent} bytes early")
        self.sent += len(chunk)
        return chunk

    def close(self) -> None:
        if self.opened.fd < 0:
            return
        self.opened.close()
        if self.sent < self.length:
            self.access.record(
                outcome="error", status=0, reason=self.failure or "stopped_early", bytes_sent=self.sent
            )


def response_for(request: HttpRequest, access: Access, opened: Opened, *, inline: bool) -> HttpResponse:
    """The response for ``opened`` (a regular file), which it closes when sent. Records the access."""
    info = opened.stat
    name = access.requested_path.rsplit("/", 1)[-1]
    etag, mtime = etag_of(info), int(info.st_mtime)
    validators = {"ETag": etag, "Last-Modified": http_date(mtime)}
    conditional = get_conditional_response(request, etag=etag, last_modified=mtime)
    if conditional is not None:
        opened.close()
        if conditional.status_code == 412:
            raise PreconditionFailed("precondition_failed")
        for name, value in validators.items():
            conditional[name] = value
        access.record(outcome="allowed", status=304, reason="not_modified")
        return conditional
    header = request.META.get("HTTP_RANGE")
    access.range = header or ""
    content_type, shown_inline = content_type_of(name, inline=inline)
    disposition = content_disposition(name, "inline" if shown_inline else "attachment")
    if settings.FILES_X_ACCEL_REDIRECT and request.method != "HEAD":
        return _offloaded(access, opened, content_type, disposition)
    selection = byte_range(header, info.st_size)
    if selection is not None and not if_range_holds(request.META.get("HTTP_IF_RANGE"), etag, mtime):
        selection = None
    if selection == UNSATISFIABLE:
        opened.close()
        raise RangeNotSatisfiable(info.st_size)
    first, last = selection or (0, info.st_size - 1)
    length = last - first + 1
    status = 206 if selection else 200
    if request.method == "HEAD":
        opened.close()
        response: HttpResponse = HttpResponse(content_type=content_type, status=status)
    else:
        os.posix_fadvise(opened.fd, first, length, os.POSIX_FADV_SEQUENTIAL)
        body = Body(opened, first, length, access)
        response = StreamingHttpResponse(body, content_type=content_type, status=status)  # type: ignore[assignment]
    for name, value in validators.items():
        response[name] = value
    response["Content-Length"] = str(length)
    if selection:
        response["Content-Range"] = f"bytes {first}-{last}/{info.st_size}"
    response["Accept-Ranges"] = "bytes"
    _protect(response, disposition)
    access.record(outcome="allowed", status=status, bytes_sent=0 if request.method == "HEAD" else length)
    return response


def _protect(response: HttpResponse, disposition: str) -> None:
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_POLICY
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private, no-cache"  # revalidated each time: each use is audited


def _offloaded(access: Access, opened: Opened, content_type: str, disposition: str) -> HttpResponse:
    """nginx sends the file (``FILES_X_ACCEL_REDIRECT``) and answers ``Range`` itself; the checks and the
    audit stay here. nginx's internal location must not follow symlinks (docs/operations.md)."""
    size = opened.stat.st_size
    opened.close()
    assert access.root is not None
    response = HttpResponse(content_type=content_type)
    location = settings.FILES_X_ACCEL_REDIRECT.rstrip("/") + "/"
    response["X-Accel-Redirect"] = location + quote(f"{access.root.name}/{access.requested_path}")
    _protect(response, disposition)
    access.record(outcome="allowed", status=200, reason="x_accel_redirect", bytes_sent=size)
    return response
