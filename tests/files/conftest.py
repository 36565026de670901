"""A root over a small tree on disk, with the ACLs of the issue's story: the member reads ``reports/``
(not ``reports-x/`` nor ``secret/``); the outsider holds nothing."""

from __future__ import annotations

import os

import pytest

from files.models import FileAccessEvent
from tests.factories import FileRootFactory, file_acl

TREE = {
    "reports/q1.csv": b"quarter,revenue\nq1,100\n",
    "reports/2026/summary.txt": b"All good.\n",
    "reports-x/leak.txt": b"not for members\n",
    "secret/keys.txt": b"top secret\n",
    "workspace/out.md": b"# Output\n",
    "hello.txt": b"hello world\n",
}


@pytest.fixture
def tree(tmp_path):
    base = tmp_path / "data"
    for name, content in TREE.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (tmp_path / "data2").mkdir()
    (tmp_path / "data2" / "sibling.txt").write_bytes(b"a sibling root's file\n")
    (tmp_path / "outside.txt").write_bytes(b"outside the root\n")
    return base


@pytest.fixture
def root(db, tree):
    return FileRootFactory(name="data", path=str(tree))


@pytest.fixture
def member_reads_reports(root, member):
    return file_acl(member, root, "reports", "read")


@pytest.fixture
def files_api(api_as):
    """GET /api/files/<root>/<action>?path=... as a user; returns the response."""

    def get(user, root_name: str, action: str, path: str | None = None, **extra):
        client = api_as(user)
        query = {} if path is None else {"path": path}
        query.update(extra.pop("query", {}))
        return client.get(f"/api/files/{root_name}/{action}", query, **extra)

    return get


@pytest.fixture
def last_event():
    def latest() -> FileAccessEvent:
        return FileAccessEvent.objects.order_by("-id").first()

    return latest


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def symlink(target, link) -> None:
    os.symlink(target, link)
