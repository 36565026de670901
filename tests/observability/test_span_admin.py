"""Spans in the admin: a trace's spans by its id, read-only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from observability.models import Span


def span(trace_id, span_id, name, offset_s):
    start = timezone.now() - timedelta(seconds=offset_s)
    return Span.objects.create(
        trace_id=trace_id, span_id=span_id, name=name, start=start, end=start, duration_us=1500, process="p"
    )


@pytest.mark.django_db
def test_an_admin_finds_a_trace_by_its_id_in_start_order_and_cannot_change_it(client, superuser):
    span("a" * 32, "1" * 16, "run.start", 30)
    span("a" * 32, "2" * 16, "run.drive", 20)
    span("b" * 32, "3" * 16, "other.trace", 10)
    client.force_login(superuser)
    page = client.get("/admin/observability/span/", {"q": "a" * 32}).content.decode()
    assert "run.start" in page
    assert "other.trace" not in page
    assert page.index("run.start") < page.index("run.drive")
    assert "1.5 ms" in page
    linked = client.get("/admin/observability/span/", {"trace_id": "b" * 32}).content.decode()
    assert "other.trace" in linked
    assert "run.start" not in linked
    assert client.get("/admin/observability/span/add/").status_code == 403
    one = Span.objects.get(span_id="1" * 16)
    response = client.post(f"/admin/observability/span/{one.pk}/change/", {"name": "renamed"})
    assert response.status_code == 403
    assert Span.objects.get(pk=one.pk).name == "run.start"
