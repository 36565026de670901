"""Apps and executors are read once per CONFIG_CACHE_S per process, and a change made here applies at once."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import App
from agents.selectors import app_by_id, app_for_use, executor_by_id
from core.errors import NotFound
from tests.factories import AppFactory

# Starts are what these tests measure, not access: every user may start runs of every app.
pytestmark = pytest.mark.usefixtures("every_user_may_use_every_app")


def queries(function):
    with CaptureQueriesContext(connection) as captured:
        result = function()
    return result, len(captured)


def test_an_app_is_read_once_and_then_served_from_the_cache(db, member):
    app = AppFactory(slug="demo")
    first, count = queries(lambda: app_for_use(user=member, slug="demo"))
    assert (first.pk, count) == (app.pk, 2)  # the app, and whether the member may use it
    again, count = queries(lambda: app_for_use(user=member, slug="demo"))
    assert (again, count) == (first, 1)  # the access check is never cached: a revoked grant applies at once
    assert queries(lambda: app_by_id(app.pk))[1] == 1
    assert queries(lambda: app_by_id(app.pk))[1] == 0
    assert queries(lambda: executor_by_id(app.executor_id).name)[1] == 1
    assert queries(lambda: executor_by_id(app.executor_id).name)[1] == 0


def test_disabling_an_app_here_applies_to_the_next_start_at_once(db, member):
    app = AppFactory(slug="demo")
    app_for_use(user=member, slug="demo")
    app.enabled = False
    app.save()
    with pytest.raises(NotFound):
        app_for_use(user=member, slug="demo")


def test_a_change_made_by_another_process_applies_when_the_copy_expires(db, member, settings):
    settings.CONFIG_CACHE_S = 0.2
    AppFactory(slug="demo", run_deadline_s=60)
    app_for_use(user=member, slug="demo")
    App.objects.filter(slug="demo").update(run_deadline_s=30)  # no signal: as another process's change looks
    assert app_for_use(user=member, slug="demo").run_deadline_s == 60  # still the copy
    time.sleep(0.25)
    assert app_for_use(user=member, slug="demo").run_deadline_s == 30


def test_disabling_an_app_elsewhere_stops_starts_at_once(db, member):
    AppFactory(slug="demo")
    app_for_use(user=member, slug="demo")
    App.objects.filter(slug="demo").update(enabled=False)  # the access check reads the row itself
    with pytest.raises(NotFound):
        app_for_use(user=member, slug="demo")


def test_an_unknown_app_is_not_remembered_so_creating_it_needs_no_wait(db, member):
    with pytest.raises(NotFound):
        app_for_use(user=member, slug="later")
    App.objects.bulk_create([App(slug="later", name="Later")])  # no signal either
    assert app_for_use(user=member, slug="later").slug == "later"


def test_with_no_cache_every_read_queries(db, member, settings):
    settings.CONFIG_CACHE_S = 0
    AppFactory(slug="demo")
    assert queries(lambda: app_for_use(user=member, slug="demo"))[1] == 2
    assert queries(lambda: app_for_use(user=member, slug="demo"))[1] == 2
