"""Who may list, stat and download what: ACLs by role, prefixes by whole path component."""

from __future__ import annotations

import pytest

from files.models import FileAccessEvent
from tests.factories import FileRootFactory, file_acl
from tests.files.conftest import body_of


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [entry["name"] for entry in response.json()["entries"]]


def test_a_member_reads_under_reports_but_not_its_lookalike_or_secret(
    files_api, member, member_reads_reports
):
    assert body_of(files_api(member, "data", "download", "reports/q1.csv")) == b"quarter,revenue\nq1,100\n"
    assert files_api(member, "data", "download", "reports/2026/summary.txt").status_code == 200
    for path in ["reports-x/leak.txt", "secret/keys.txt", "hello.txt"]:
        response = files_api(member, "data", "download", path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert (
        list(FileAccessEvent.objects.order_by("id").values_list("outcome", "reason"))[-3:]
        == [("denied", "outside_acl")] * 3
    )


def test_a_denied_path_is_answered_like_a_missing_one(files_api, member, member_reads_reports):
    denied = files_api(member, "data", "download", "secret/keys.txt")
    missing = files_api(member, "data", "download", "reports/nope.csv")
    assert denied.status_code == missing.status_code == 404
    assert denied.json() == missing.json()


def test_listing_hides_what_the_member_cannot_reach(files_api, member, member_reads_reports):
    assert names(files_api(member, "data", "list", "")) == ["reports"]
    assert names(files_api(member, "data", "list", "reports")) == ["2026", "q1.csv"]
    assert files_api(member, "data", "list", "secret").status_code == 404


def test_the_way_to_a_deep_grant_shows_only_the_way(files_api, member, root):
    file_acl(member, root, "reports/2026", "read")
    assert names(files_api(member, "data", "list", "")) == ["reports"]
    assert names(files_api(member, "data", "list", "reports")) == ["2026"]
    assert files_api(member, "data", "download", "reports/q1.csv").status_code == 404
    assert files_api(member, "data", "download", "reports/2026/summary.txt").status_code == 200


def test_list_permission_shows_but_does_not_download(files_api, member, root):
    file_acl(member, root, "reports", "list")
    entries = files_api(member, "data", "list", "reports").json()["entries"]
    assert {entry["name"]: entry["readable"] for entry in entries} == {"2026": False, "q1.csv": False}
    assert files_api(member, "data", "stat", "reports/q1.csv").json()["size"] == 23
    assert files_api(member, "data", "download", "reports/q1.csv").status_code == 404


def test_a_department_grant_reaches_its_members(files_api, member, department, root):
    file_acl(department, root, "", "read")
    assert names(files_api(member, "data", "list", "")) == [
        "hello.txt",
        "reports",
        "reports-x",
        "secret",
        "workspace",
    ]


def test_an_outsider_sees_no_root(files_api, api_as, outsider, member_reads_reports, last_event):
    assert api_as(outsider).get("/api/files/roots").json() == {"roots": []}
    for action, path in [("list", ""), ("stat", "reports"), ("download", "reports/q1.csv")]:
        response = files_api(outsider, "data", action, path)
        assert response.status_code == 404
        event = last_event()
        assert (event.outcome, event.reason, event.username, event.action) == (
            "denied",
            "no_acl_on_root",
            "outsider",
            action,
        )
    assert files_api(outsider, "data", "list", "").json() == files_api(outsider, "nothing", "list", "").json()


def test_roots_lists_those_with_a_grant_and_hides_disabled_ones(
    api_as, member, root, member_reads_reports, tmp_path
):
    other = FileRootFactory(name="other", path=str(tmp_path))
    file_acl(member, other, "", "list")
    FileRootFactory(name="ungranted", path=str(tmp_path))
    assert [r["name"] for r in api_as(member).get("/api/files/roots").json()["roots"]] == ["data", "other"]
    other.enabled = False
    other.save()
    assert [r["name"] for r in api_as(member).get("/api/files/roots").json()["roots"]] == ["data"]


def test_a_superuser_sees_every_enabled_root(api_as, superuser, root, files_api):
    assert [r["name"] for r in api_as(superuser).get("/api/files/roots").json()["roots"]] == ["data"]
    assert files_api(superuser, "data", "download", "secret/keys.txt").status_code == 200


def test_an_anonymous_request_is_refused(api):
    for url in ["/api/files/roots", "/api/files/data/list", "/api/files/data/download?path=hello.txt"]:
        assert api.get(url).status_code in (401, 403)


def test_an_expired_binding_grants_nothing(files_api, member, root):
    from datetime import timedelta

    from django.utils import timezone

    acl = file_acl(member, root, "reports", "read")
    acl.role.bindings.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert files_api(member, "data", "download", "reports/q1.csv").status_code == 404


@pytest.mark.parametrize("action", ["list", "stat", "download"])
def test_queries_per_access_are_bounded(
    files_api, member, member_reads_reports, action, django_assert_max_num_queries
):
    path = {"list": "reports", "stat": "reports/q1.csv", "download": "reports/q1.csv"}[action]
    with django_assert_max_num_queries(4):  # the user (session), the root, the grants, the audit row
        response = files_api(member, "data", action, path)
    assert response.status_code == 200
