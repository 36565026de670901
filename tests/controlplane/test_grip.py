"""GRIP (Pushpin) wiring: GRIP_URL adds the middleware, a request that came through Pushpin is answered with
a GRIP hold over the run's channel, and every stored event is published to Pushpin's control port."""

import json
import os
import subprocess
import sys
from pathlib import Path

import django_grip
import pytest

from runs import streaming
from runs.events import NewEvent, append_events
from runs.services import run_start
from tests.executor_support import RecordingServer, wait_until
from tests.factories import AppFactory

ROOT = Path(__file__).resolve().parents[2]
GRIP = "django_grip.GripMiddleware"
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'middleware': s.MIDDLEWARE, 'grip_url': getattr(s, 'GRIP_URL', None)}))"
)


def load_settings(**env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k != "GRIP_URL"}
    environ.update(DJANGO_SETTINGS_MODULE="controlplane.settings", **env)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_grip_url_adds_the_grip_middleware_first():
    loaded = load_settings(GRIP_URL="http://pushpin:5561")
    assert loaded["grip_url"] == "http://pushpin:5561"
    assert loaded["middleware"][0] == GRIP


def test_without_grip_url_there_is_no_grip_middleware():
    loaded = load_settings()
    assert loaded["grip_url"] is None
    assert GRIP not in loaded["middleware"]


@pytest.fixture
def grip(settings):
    settings.MIDDLEWARE = [GRIP, *settings.MIDDLEWARE]

    def point_at(url: str) -> None:
        settings.GRIP_URL = url
        django_grip._pubcontrol = None  # django-grip reads GRIP_URL once, when it first publishes

    yield point_at
    if django_grip._pubcontrol is not None:
        django_grip._pubcontrol.finish()
    django_grip._pubcontrol = None


@pytest.fixture
def run(member):
    started, _ = run_start(user=member, app=AppFactory(slug="demo"), input={})
    return started


def test_a_stream_request_through_pushpin_is_answered_with_a_grip_hold(grip, api_as, member, run):
    grip("http://pushpin:5561")
    response = api_as(member).get(
        f"/api/runs/{run.pk}/events", headers={"Accept": "text/event-stream", "Grip-Sig": "from-pushpin"}
    )
    assert response.status_code == 200
    assert response["Grip-Hold"] == "stream"
    assert f"events-run-{run.pk}" in response["Grip-Channel"]
    body = response.content.decode()
    assert "event: run.queued" in body  # the history first, then Pushpin holds the connection


def test_stored_events_are_published_to_pushpin(grip, db, run, django_capture_on_commit_callbacks):
    with RecordingServer(lambda request: (200, {})) as pushpin:
        grip(pushpin.url)
        with django_capture_on_commit_callbacks(execute=True):
            append_events(run_id=run.pk, events=[NewEvent("message.delta", {"text": "hi"})])
        published = wait_until(lambda: pushpin.requests, timeout=10, what="a GRIP publish")
    (request,) = published
    assert request.method == "POST"
    assert request.path == "/publish/"
    (item,) = request.body["items"]
    assert item["channel"] == f"events-{streaming.run_channel(run.pk)}"
    assert (item["id"], item["prev-id"]) == ("2", "1")
    assert "event: message.delta" in item["http-stream"]["content"], item
