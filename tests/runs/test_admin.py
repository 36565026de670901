import pytest

from runs.models import Run, RunStatus
from tests.factories import AppFactory


@pytest.fixture
def run(api_as, member, db):
    AppFactory(slug="demo")
    return Run.objects.get(pk=api_as(member).post("/api/runs/", {"app": "demo"}, format="json").json()["id"])


@pytest.mark.parametrize(
    "path",
    [
        "/admin/runs/run/",
        "/admin/runs/run/?status__exact=queued",
        "/admin/runs/session/",
        "/admin/runs/humanlooprequest/",
        "/admin/agents/app/",
        "/admin/agents/app/add/",
    ],
)
def test_admin_pages_render(client, superuser, run, path):
    client.force_login(superuser)
    assert client.get(path).status_code == 200


def test_run_page_shows_its_events(client, superuser, run):
    client.force_login(superuser)
    page = client.get(f"/admin/runs/run/{run.pk}/change/").content.decode()
    assert "run.queued" in page


def test_cancel_action_cancels_a_queued_run(client, superuser, run):
    client.force_login(superuser)
    response = client.post("/admin/runs/run/", {"action": "cancel_runs", "_selected_action": [str(run.pk)]})
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_runs_admin_is_for_staff_only(client, member, run):
    client.force_login(member)
    assert client.get("/admin/runs/run/").status_code == 302
