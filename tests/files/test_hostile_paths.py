"""Hostile paths: each is a 400 or a 404 with an audit row of the right outcome, never a byte from outside
the root. The member may read the whole root here, so only the path handling stands in the way."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from files import paths
from files.models import FileAccessEvent
from tests.factories import FileRootFactory, file_acl
from tests.files.conftest import body_of

OUTSIDE = b"outside the root\n"


@pytest.fixture
def reader(member, root):
    file_acl(member, root, "", "read")
    return member


def raw_get(api_as, user, query: str, action: str = "download", root: str = "data"):
    """The query string exactly as written (percent-encodings and all), as a client would send it."""
    return api_as(user).get(f"/api/files/{root}/{action}?{query}")


@pytest.mark.parametrize(
    ("query", "status", "outcome"),
    [
        ("path=../outside.txt", 400, "invalid"),
        ("path=%2e%2e/outside.txt", 400, "invalid"),
        ("path=%2E%2E%2Foutside.txt", 400, "invalid"),
        ("path=reports/%2e%2e/%2e%2e/outside.txt", 400, "invalid"),
        ("path=%252e%252e%252foutside.txt", 404, "not_found"),  # decoded once: a name "%2e%2e%2foutside.txt"
        ("path=..%5coutside.txt", 400, "invalid"),
        ("path=..\\outside.txt", 400, "invalid"),
        ("path=C:%5cWindows%5cwin.ini", 400, "invalid"),
        ("path=C:/outside.txt", 400, "invalid"),
        ("path=/etc/passwd", 400, "invalid"),
        ("path=%2fetc%2fpasswd", 400, "invalid"),
        ("path=hello.txt%00.png", 400, "invalid"),
        ("path=hello.txt%0a", 400, "invalid"),
        ("path=hello.txt%0d%0aX-Injected:%201", 400, "invalid"),
        ("path=", 400, "invalid"),
        ("path=reports/", 400, "invalid"),
        ("path=%c0%ae%c0%ae/outside.txt", 404, "not_found"),  # overlong UTF-8: replacement characters, a name
        ("path=reports", 404, "not_found"),  # a directory asked for as a file
    ],
)
def test_hostile_download_paths(api_as, reader, query, status, outcome, last_event):
    response = raw_get(api_as, reader, query)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == ("invalid_path" if status == 400 else "not_found")
    event = last_event()
    assert (event.outcome, event.status, event.action) == (outcome, status, "download")
    assert event.bytes_sent == 0
    assert "\x00" not in event.requested_path


def test_the_audit_keeps_a_nul_path_escaped(api_as, reader, last_event):
    raw_get(api_as, reader, "path=a%00b")
    assert last_event().requested_path == "a\\x00b"


def test_a_symlink_to_a_file_outside_is_not_followed(api_as, files_api, reader, tree, last_event):
    os.symlink(tree.parent / "outside.txt", tree / "escape.txt")
    response = files_api(reader, "data", "download", "escape.txt")
    assert response.status_code == 404
    assert (last_event().outcome, last_event().reason) == ("not_found", "symlink")
    entries = {e["name"]: e for e in files_api(reader, "data", "list", "").json()["entries"]}
    assert entries["escape.txt"]["type"] == "symlink"
    assert entries["escape.txt"]["readable"] is False
    assert files_api(reader, "data", "stat", "escape.txt").json()["type"] == "symlink"


def test_a_symlink_to_a_directory_outside_is_not_followed(files_api, reader, tree, last_event):
    os.symlink(tree.parent, tree / "up")
    for action, path in [("download", "up/outside.txt"), ("list", "up"), ("stat", "up/outside.txt")]:
        response = files_api(reader, "data", action, path)
        assert response.status_code == 404, (action, response.content)
        assert (last_event().outcome, last_event().reason) == ("not_found", "symlink")


def test_a_symlink_inside_pointing_inside_is_not_followed_either(files_api, reader, tree):
    os.symlink("hello.txt", tree / "alias.txt")
    assert files_api(reader, "data", "download", "alias.txt").status_code == 404


def test_a_symlink_swapped_in_between_check_and_open(files_api, reader, tree):
    """A directory on the way is replaced by a symlink to the outside over and over while downloads run:
    every answer is the file inside or a 404, never the outside's bytes."""
    inside = tree / "swap"
    inside.mkdir()
    (inside / "outside.txt").write_bytes(b"inside\n")
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            os.rename(inside, tree / "swap.real")
            os.symlink(tree.parent, inside)
            os.unlink(inside)
            os.rename(tree / "swap.real", inside)

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        bodies = set()
        for _ in range(150):
            response = files_api(reader, "data", "download", "swap/outside.txt")
            assert response.status_code in (200, 404)
            if response.status_code == 200:
                bodies.add(body_of(response))
    finally:
        stop.set()
        swapper.join()
    assert OUTSIDE not in bodies
    assert bodies <= {b"inside\n"}


def test_a_fifo_is_not_a_file_and_does_not_block(files_api, reader, tree, last_event):
    os.mkfifo(tree / "pipe")
    response = files_api(reader, "data", "download", "pipe")
    assert response.status_code == 404
    assert last_event().reason == "not_a_file"
    assert files_api(reader, "data", "stat", "pipe").json()["type"] == "other"


def test_a_socket_is_not_a_file(files_api, reader, tree):
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tree / "sock"))
    try:
        assert files_api(reader, "data", "download", "sock").status_code == 404
    finally:
        server.close()


def test_a_device_is_not_a_file(files_api, superuser, tmp_path):
    FileRootFactory(name="dev", path="/dev")
    assert files_api(superuser, "dev", "download", "null").status_code == 404
    assert files_api(superuser, "dev", "download", "zero").status_code == 404


def test_a_root_does_not_reach_its_sibling(api_as, files_api, member, tree, tmp_path):
    """/srv/data against /srv/data2: the sibling's files are not under the root."""
    root = FileRootFactory(name="data", path=str(tree))
    file_acl(member, root, "", "read")
    assert files_api(member, "data", "download", "../data2/sibling.txt").status_code == 400
    assert raw_get(api_as, member, "path=..%2fdata2/sibling.txt").status_code == 400
    assert files_api(member, "data", "download", "data2/sibling.txt").status_code == 404


def test_an_unknown_or_malformed_root_is_not_found(files_api, reader, last_event):
    for name in ["nope", "..", "da ta"]:
        assert files_api(reader, name, "list", "").status_code == 404
    assert last_event().reason == "no_such_root"


def test_a_disabled_root_is_not_found(files_api, reader, root):
    root.enabled = False
    root.save()
    assert files_api(reader, "data", "download", "hello.txt").status_code == 404


# Components a hostile client might send: traversal, separators, encodings, controls, lookalikes.
_COMPONENTS = st.sampled_from(
    [
        "..",
        ".",
        "",
        "reports",
        "secret",
        "hello.txt",
        "%2e%2e",
        "\\",
        "..\\..",
        "\x00",
        "\n",
        "C:",
        "~",
        "outside.txt",
        "data2",
        "..%2f",
        "\u202e",
        "q1.csv",
        "2026",
    ]
) | st.text(alphabet=st.characters(codec="utf-8"), max_size=8)


@hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(parts=st.lists(_COMPONENTS, min_size=0, max_size=6), lead=st.sampled_from(["", "/", "//"]))
def test_generated_paths_never_leave_the_root(files_api, reader, tree, parts, lead):
    raw = lead + "/".join(parts)
    before = FileAccessEvent.objects.count()
    response = files_api(reader, "data", "download", raw)
    assert response.status_code in (200, 400, 404)
    if response.status_code == 200:
        body = body_of(response)
        assert body != OUTSIDE
        resolved = os.path.realpath(tree / raw)
        assert paths.is_inside(resolved, str(tree.resolve()))
        assert Path(resolved).read_bytes() == body
    event = FileAccessEvent.objects.order_by("-id").first()
    assert FileAccessEvent.objects.count() == before + 1
    expected = {200: "allowed", 400: "invalid", 404: "not_found"}[response.status_code]
    assert event.outcome == expected
