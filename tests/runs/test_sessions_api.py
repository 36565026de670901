"""Sessions (conversations) over the API: mine in a list; one with its runs, for whoever may read its runs."""

from __future__ import annotations

from agents.models import Action
from tests.factories import AppFactory, RunFactory, SessionFactory, grant


def test_a_session_shows_its_runs_oldest_first_to_its_owner(api_as, owner):
    app = AppFactory(slug="notes")
    session = SessionFactory(user=owner, app=app)
    first = RunFactory(app=app, user=owner, session=session)
    second = RunFactory(app=app, user=owner, session=session)
    body = api_as(owner).get(f"/api/sessions/{session.pk}/").json()
    assert body["app"] == "notes"
    assert body["mine"] is True
    assert [run["id"] for run in body["runs"]] == [str(first.pk), str(second.pk)]


def test_another_persons_session_is_a_404_unless_they_hold_view_all(api_as, owner, outsider):
    app = AppFactory(slug="notes")
    session = RunFactory(app=app, user=owner).session
    missing = api_as(outsider).get(f"/api/sessions/{session.pk}/")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    grant(outsider, Action.RUN_VIEW_ALL, app)
    body = api_as(outsider).get(f"/api/sessions/{session.pk}/").json()
    assert body["mine"] is False
    assert body["user"] == "owner"


def test_the_list_holds_only_my_sessions(api_as, owner, outsider):
    mine = RunFactory(user=owner).session
    RunFactory(user=outsider)
    body = api_as(owner).get("/api/sessions/").json()
    assert [item["id"] for item in body["results"]] == [str(mine.pk)]


def test_an_anonymous_call_is_a_401(api):
    assert api.get("/api/sessions/").status_code == 401
