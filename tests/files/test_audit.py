"""The audit is append-only: PostgreSQL refuses to change or delete a row, whoever asks."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from files.models import FileAccessEvent


@pytest.fixture
def event(files_api, member, member_reads_reports, last_event):
    files_api(member, "data", "download", "secret/keys.txt")
    return last_event()


def test_every_field_of_a_denied_read(event, member, root):
    assert event.user_id == member.pk
    assert (event.username, event.action, event.root_id, event.root_name) == (
        "member",
        "download",
        root.pk,
        "data",
    )
    assert (event.requested_path, event.resolved_path) == ("secret/keys.txt", "")
    assert (event.outcome, event.reason, event.status, event.bytes_sent) == ("denied", "outside_acl", 404, 0)
    assert event.client_ip == "127.0.0.1"
    assert len(event.request_id) == 32


def test_an_allowed_read_names_the_file_on_disk(files_api, member, member_reads_reports, last_event, tree):
    files_api(
        member, "data", "download", "reports/q1.csv", HTTP_USER_AGENT="curl/8", HTTP_X_FORWARDED_FOR="6.6.6.6"
    )
    event = last_event()
    assert event.resolved_path == str((tree / "reports" / "q1.csv").resolve())
    assert event.user_agent == "curl/8"
    assert event.client_ip == "127.0.0.1"  # X-Forwarded-For from an untrusted peer is ignored


def test_x_forwarded_for_from_a_trusted_proxy(files_api, member, member_reads_reports, last_event, settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    files_api(member, "data", "list", "reports", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert last_event().client_ip == "203.0.113.9"


def test_rows_cannot_be_updated(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        FileAccessEvent.objects.filter(pk=event.pk).update(outcome="allowed")
    event.refresh_from_db()
    assert event.outcome == "denied"


def test_rows_cannot_be_deleted(event):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        FileAccessEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.delete()
    assert FileAccessEvent.objects.filter(pk=event.pk).exists()


def test_deleting_the_user_or_the_root_keeps_the_rows(event, member, root):
    member.delete()
    root.delete()
    event.refresh_from_db()
    assert (event.username, event.root_name) == ("member", "data")
