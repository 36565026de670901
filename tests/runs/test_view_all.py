"""``run.view_all`` lets a person read everyone's runs of an app — read, not act."""

import pytest

from agents.models import Action
from runs.models import Run
from runs.streaming import RunChannelManager, run_channel
from tests.factories import AppFactory, UserFactory, grant


@pytest.fixture
def runs(db, api_as, owner):
    notes, other = AppFactory(slug="notes"), AppFactory(slug="other")
    made = {}
    for app in (notes, other):
        response = api_as(owner).post("/api/runs/", {"app": app.slug}, format="json")
        assert response.status_code == 201
        made[app.slug] = response.json()["id"]
    return made, notes


def test_a_reviewer_reads_others_runs_of_the_app_and_no_other_app(runs, api_as):
    made, notes = runs
    reviewer = UserFactory(username="reviewer")
    grant(reviewer, Action.RUN_VIEW_ALL, notes)
    client = api_as(reviewer)
    assert client.get(f"/api/runs/{made['notes']}/").status_code == 200
    assert client.get(f"/api/runs/{made['notes']}/events?after=0").status_code == 200
    assert client.get(f"/api/runs/{made['notes']}/todos").status_code == 200
    assert client.get(f"/api/runs/{made['other']}/").status_code == 404
    assert set(Run.objects.visible_to(reviewer).values_list("app__slug", flat=True)) == {"notes"}
    channels = RunChannelManager()
    assert channels.can_read_channel(reviewer, run_channel(made["notes"]))
    assert not channels.can_read_channel(reviewer, run_channel(made["other"]))


def test_a_reviewer_may_not_cancel_or_answer_and_is_told_so(runs, api_as):
    made, notes = runs
    reviewer = UserFactory(username="reviewer")
    grant(reviewer, Action.RUN_VIEW_ALL, notes)
    refused = api_as(reviewer).post(f"/api/runs/{made['notes']}/cancel")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "not_run_owner")
    assert not Run.objects.get(pk=made["notes"]).cancel_requested
    hidden = api_as(reviewer).post(f"/api/runs/{made['other']}/cancel")
    assert hidden.status_code == 404
    assert api_as(reviewer).get("/api/human-loop/pending").json()["results"] == []


def test_the_grant_on_every_app_reads_every_run_and_losing_it_reads_none(runs, api_as):
    made, _ = runs
    reviewer = UserFactory(username="reviewer")
    given = grant(reviewer, Action.RUN_VIEW_ALL)
    assert set(Run.objects.visible_to(reviewer).values_list("pk", flat=True)) == {
        Run.objects.get(pk=made["notes"]).pk,
        Run.objects.get(pk=made["other"]).pk,
    }
    given.delete()
    assert not Run.objects.visible_to(reviewer).exists()
    assert api_as(reviewer).get(f"/api/runs/{made['notes']}/").status_code == 404


def test_the_run_list_shows_mine_by_default_and_what_i_may_read_on_asking(runs, api_as):
    made, notes = runs
    reviewer = UserFactory(username="reviewer")
    grant(reviewer, Action.RUN_VIEW_ALL, notes)
    client = api_as(reviewer)
    assert client.get("/api/runs/").json()["results"] == []
    visible = client.get("/api/runs/?scope=visible").json()["results"]
    assert [run["id"] for run in visible] == [made["notes"]]
    bad = client.get("/api/runs/?scope=everything")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid")
