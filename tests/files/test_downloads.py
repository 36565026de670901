"""Downloads: RFC 9110 ranges, conditional requests, safe headers, and the audit of a download that stops."""

from __future__ import annotations

import os

import pytest
from django.utils.http import http_date

from files.download import UNSATISFIABLE, byte_range, content_disposition
from files.models import FileAccessEvent
from tests.factories import file_acl
from tests.files.conftest import body_of

CONTENT = bytes(range(256)) * 4  # 1,024 bytes, each position recognisable


@pytest.fixture
def blob(tree, member, root):
    file_acl(member, root, "", "read")
    (tree / "blob.bin").write_bytes(CONTENT)
    return tree / "blob.bin"


@pytest.fixture
def fetch(api_as, member):
    def get(headers: dict | None = None, path: str = "blob.bin", **query):
        extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()}
        return api_as(member).get("/api/files/data/download", {"path": path, **query}, **extra)

    return get


@pytest.mark.parametrize(
    ("header", "status", "first", "last"),
    [
        ("bytes=0-0", 206, 0, 0),  # the first byte only
        ("bytes=0-99", 206, 0, 99),
        ("bytes=1000-", 206, 1000, 1023),  # an open range
        ("bytes=-24", 206, 1000, 1023),  # a suffix
        ("bytes=-5000", 206, 0, 1023),  # a suffix longer than the file: all of it
        ("bytes=1023-5000", 206, 1023, 1023),  # the end clamped
        ("BYTES=0-1", 206, 0, 1),  # the unit is case-insensitive
        ("bytes= 5-9", 206, 5, 9),
    ],
)
def test_single_ranges(fetch, blob, header, status, first, last, last_event):
    response = fetch({"Range": header})
    assert response.status_code == status
    assert body_of(response) == CONTENT[first : last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/1024"
    assert response["Content-Length"] == str(last - first + 1)
    event = last_event()
    assert (event.status, event.range, event.bytes_sent) == (206, header, last - first + 1)


@pytest.mark.parametrize(
    "header",
    [
        "bytes=5-1",  # inverted: invalid, ignored
        "bytes=0-1,5-9",  # several ranges: the whole file
        "bytes=0-1, 3-4, 9-",
        "items=0-1",  # another unit
        "bytes=abc",
        "bytes=",
        "bytes=-",
        "bytes",
        "bytes=1-2-3",
        "bytes=٠-٩",  # digits of another script
        "bytes=99999999999999999999-",  # 20 digits
    ],
)
def test_headers_that_are_ignored_answer_the_whole_file(fetch, blob, header):
    response = fetch({"Range": header})
    assert response.status_code == 200
    assert body_of(response) == CONTENT
    assert "Content-Range" not in response


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(fetch, blob, header, last_event):
    response = fetch({"Range": header})
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */1024"
    assert response.json()["error"]["code"] == "range_not_satisfiable"
    assert (last_event().outcome, last_event().status, last_event().bytes_sent) == ("invalid", 416, 0)


def test_if_range_with_the_current_etag_serves_the_range(fetch, blob):
    etag = fetch()["ETag"]
    response = fetch({"Range": "bytes=0-9", "If-Range": etag})
    assert response.status_code == 206
    assert body_of(response) == CONTENT[:10]


def test_a_stale_if_range_serves_the_whole_file(fetch, blob):
    etag = fetch()["ETag"]
    os.utime(blob, ns=(0, 10**18))
    for validator in [etag, http_date(0), 'W/"weak"']:
        response = fetch({"Range": "bytes=0-9", "If-Range": validator})
        assert response.status_code == 200
        assert body_of(response) == CONTENT


def test_if_range_with_the_exact_date_serves_the_range(fetch, blob):
    last_modified = fetch()["Last-Modified"]
    assert fetch({"Range": "bytes=0-9", "If-Range": last_modified}).status_code == 206


def test_conditional_get(fetch, blob, last_event):
    first = fetch()
    etag, last_modified = first["ETag"], first["Last-Modified"]
    assert fetch({"If-None-Match": etag}).status_code == 304
    assert (last_event().status, last_event().reason) == (304, "not_modified")
    assert fetch({"If-Modified-Since": last_modified}).status_code == 304
    assert fetch({"If-None-Match": '"other"'}).status_code == 200
    refused = fetch({"If-Match": '"other"'})
    assert refused.status_code == 412
    assert refused.json()["error"]["code"] == "precondition_failed"


def test_the_etag_changes_with_the_file(fetch, blob):
    before = fetch()["ETag"]
    blob.write_bytes(CONTENT + b"more")
    assert fetch()["ETag"] != before


def test_download_headers(fetch, blob):
    response = fetch()
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"] == "attachment; filename=\"blob.bin\"; filename*=UTF-8''blob.bin"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "private, no-cache"


def test_an_empty_file(fetch, tree, blob):
    (tree / "empty.txt").write_bytes(b"")
    assert body_of(fetch(path="empty.txt")) == b""
    assert fetch({"Range": "bytes=0-"}, path="empty.txt").status_code == 416
    assert fetch({"Range": "bytes=-5"}, path="empty.txt").status_code == 200


def test_head_sends_headers_and_no_body(api_as, member, blob, last_event):
    response = api_as(member).head("/api/files/data/download", {"path": "blob.bin"})
    assert response.status_code == 200
    assert response["Content-Length"] == "1024"
    assert response.content == b""
    assert last_event().bytes_sent == 0


def test_inline_preview_is_only_for_safe_types(fetch, tree, blob):
    (tree / "page.html").write_bytes(b"<script>alert(1)</script>")
    (tree / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tree / "logo.svg").write_bytes(b"<svg onload='alert(1)'/>")
    html = fetch(path="page.html", disposition="inline")
    assert html["Content-Type"] == "text/plain; charset=utf-8"
    assert html["Content-Disposition"].startswith("inline;")
    png = fetch(path="pic.png", disposition="inline")
    assert (png["Content-Type"], png["Content-Disposition"].split(";")[0]) == ("image/png", "inline")
    svg = fetch(path="logo.svg", disposition="inline")
    assert svg["Content-Disposition"].startswith("attachment;")
    assert fetch(path="blob.bin", disposition="inline")["Content-Disposition"].startswith("attachment;")
    assert fetch(path="blob.bin", disposition="evil").status_code == 400


@pytest.mark.parametrize(
    ("name", "fallback", "exact"),
    [
        ('say "hi".txt', "say _hi_.txt", "say%20%22hi%22.txt"),
        ("a;b=c.txt", "a_b=c.txt", "a%3Bb%3Dc.txt"),
        ("evil\r\nSet-Cookie: x=1.txt", "evilSet-Cookie: x=1.txt", "evilSet-Cookie%3A%20x%3D1.txt"),
        ("invoice\u202etxt.exe", "invoicetxt.exe", "invoicetxt.exe"),
        ("报告 2026.csv", "__ 2026.csv", "%E6%8A%A5%E5%91%8A%202026.csv"),
        ("back\\slash%41.txt", "back_slash_41.txt", "back%5Cslash%2541.txt"),
        ("\u200f\u2066.", "download", "download"),
    ],
)
def test_content_disposition_is_safe(name, fallback, exact):
    header = content_disposition(name)
    assert header == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"
    assert not {"\r", "\n", "\u202e"} & set(header)


def test_awkward_filenames_download_with_a_safe_header(fetch, member, tree, blob):
    for name in ['q"uote.txt', "semi;colon.txt", "line\u2028sep.txt", "rtl\u202egnp.txt", "中文.txt"]:
        (tree / name).write_bytes(b"x")
        response = fetch(path=name)
        assert response.status_code == 200, name
        header = response["Content-Disposition"]
        assert header.isascii()
        assert not {"\u202e", "\u2028"} & set(header)


def test_the_range_parser_directly():
    assert byte_range(None, 10) is None
    assert byte_range("bytes=0-", 10) == (0, 9)
    assert byte_range("bytes=10-", 10) == UNSATISFIABLE
    assert byte_range("bytes=-0", 10) == UNSATISFIABLE
    assert byte_range("bytes=0-1,", 10) == (0, 1)  # an empty list element is allowed


def test_a_file_that_shrinks_mid_stream_still_leaves_its_audit_rows(fetch, blob, settings):
    """The access row is written before the first byte; the stop adds an error row with what was sent."""
    settings.FILES_CHUNK_BYTES = 4096
    blob.write_bytes(b"x" * 20_000)
    response = fetch()
    chunks = iter(response.streaming_content)
    assert next(chunks) == b"x" * 4096
    os.truncate(blob, 5000)
    assert next(chunks) == b"x" * 904
    with pytest.raises(Exception, match="ended 15000 bytes early"):
        next(chunks)  # the test client closes the response when its iterator ends
    rows = list(FileAccessEvent.objects.order_by("id").values_list("outcome", "reason", "bytes_sent"))[-2:]
    assert rows == [("allowed", "", 20_000), ("error", "file_changed", 5000)]


def test_a_client_that_leaves_early_is_recorded(fetch, blob, settings):
    settings.FILES_CHUNK_BYTES = 4096
    blob.write_bytes(b"y" * 20_000)
    response = fetch()
    next(iter(response.streaming_content))
    close_keeping_the_connection(response)  # the client went away: the server closes the response
    last = FileAccessEvent.objects.order_by("-id").first()
    assert (last.outcome, last.reason, last.bytes_sent) == ("error", "stopped_early", 4096)


def close_keeping_the_connection(response) -> None:
    """Close the response as the test client does when its client stops reading: through the wrapper
    around its iterator, which keeps the test's database connection open (``response.close()`` alone
    would close it, as at the end of a real request)."""
    response._iterator.close()


def test_a_file_removed_after_the_check_is_still_sent_whole(fetch, blob):
    """The descriptor that passed the checks is the one read: unlinking the name changes nothing."""
    response = fetch()
    os.unlink(blob)
    assert body_of(response) == CONTENT


@pytest.mark.django_db(transaction=True)
def test_audit_rows_are_committed_even_when_the_request_fails(api_as, member, tree, settings):
    from tests.factories import FileRootFactory

    root = FileRootFactory(name="data", path=str(tree))
    file_acl(member, root, "", "read")
    settings.FILES_CHUNK_BYTES = 4096
    (tree / "big.bin").write_bytes(b"z" * 10_000)
    response = api_as(member).get("/api/files/data/download", {"path": "big.bin"})
    chunks = iter(response.streaming_content)
    next(chunks)
    os.truncate(tree / "big.bin", 0)
    with pytest.raises(Exception, match="early"):
        list(chunks)
    from django.db import connections

    other = connections.create_connection("default")  # another session sees them: they are committed
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT outcome, bytes_sent FROM files_fileaccessevent ORDER BY id")
            assert cursor.fetchall() == [("allowed", 10_000), ("error", 4096)]
    finally:
        other.close()


def test_x_accel_redirect_offload(fetch, blob, settings, last_event):
    settings.FILES_X_ACCEL_REDIRECT = "/protected-files/"
    response = fetch({"Range": "bytes=0-9"}, path="blob.bin")
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == "/protected-files/data/blob.bin"
    assert response.content == b""
    assert response["Content-Disposition"].startswith("attachment;")
    assert (last_event().reason, last_event().range) == ("x_accel_redirect", "bytes=0-9")
