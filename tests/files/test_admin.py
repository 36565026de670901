"""The files admin: roots (a missing path refused), ACLs with role autocomplete, the read-only audit and its
CSV export of the filtered list."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from files.models import FileAccessEvent, FileRoot
from tests.factories import RoleFactory, staff_with


@pytest.fixture
def admin_client_(superuser):
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def audit_rows(files_api, member, member_reads_reports):
    files_api(member, "data", "download", "reports/q1.csv")
    files_api(member, "data", "download", "secret/keys.txt")
    files_api(member, "data", "download", '=HYPERLINK("x")')


def test_the_lists_render(admin_client_, audit_rows, django_assert_max_num_queries):
    for url in ["/admin/files/fileroot/", "/admin/files/fileacl/", "/admin/files/fileaccessevent/"]:
        with django_assert_max_num_queries(12):
            assert admin_client_.get(url).status_code == 200, url
    assert b"Export CSV" in admin_client_.get("/admin/files/fileaccessevent/").content


def test_a_root_with_a_missing_path_is_refused(admin_client_, tmp_path):
    response = admin_client_.post(
        "/admin/files/fileroot/add/",
        {"name": "gone", "path": str(tmp_path / "gone"), "enabled": "on", **_empty_inline()},
    )
    assert response.status_code == 200
    assert "No such directory on this machine." in response.content.decode()
    assert not FileRoot.objects.filter(name="gone").exists()
    ok = admin_client_.post(
        "/admin/files/fileroot/add/",
        {"name": "ok", "path": str(tmp_path), "enabled": "on", **_empty_inline()},
    )
    assert ok.status_code == 302
    assert FileRoot.objects.filter(name="ok").exists()


def _empty_inline() -> dict:
    return {
        "acls-TOTAL_FORMS": "0",
        "acls-INITIAL_FORMS": "0",
        "acls-MIN_NUM_FORMS": "0",
        "acls-MAX_NUM_FORMS": "1000",
    }


def test_audit_rows_cannot_be_added_changed_or_deleted(admin_client_, audit_rows):
    event = FileAccessEvent.objects.first()
    assert admin_client_.get("/admin/files/fileaccessevent/add/").status_code == 403
    assert admin_client_.post(f"/admin/files/fileaccessevent/{event.pk}/change/", {}).status_code == 403
    assert (
        admin_client_.post(f"/admin/files/fileaccessevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert FileAccessEvent.objects.filter(pk=event.pk).exists()


def test_the_csv_export_honours_the_filter_and_defuses_formulas(admin_client_, audit_rows):
    response = admin_client_.get("/admin/files/fileaccessevent/export.csv?outcome__exact=denied")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["outcome"] for row in rows} == {"denied"}
    assert sorted(row["requested_path"] for row in rows) == ['\'=HYPERLINK("x")', "secret/keys.txt"]
    everything = admin_client_.get("/admin/files/fileaccessevent/export.csv")
    assert len(list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode("utf-8-sig"))))) == 4


def test_the_export_needs_the_view_permission(audit_rows):
    client = Client()
    client.force_login(staff_with("files.view_fileroot", username="clerk"))
    assert client.get("/admin/files/fileaccessevent/export.csv").status_code == 403


def test_roles_autocomplete_for_the_acl_form(admin_client_):
    RoleFactory(name="Analysts", slug="analysts")
    response = admin_client_.get(
        "/admin/autocomplete/",
        {"term": "analy", "app_label": "files", "model_name": "fileacl", "field_name": "role"},
    )
    assert response.status_code == 200
    assert [item["text"] for item in response.json()["results"]] == ["Analysts"]
