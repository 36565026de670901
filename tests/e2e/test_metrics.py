"""``/metrics`` of a real web process (uvicorn): the streams it holds open are its own figures, and they
follow the streams as clients open and close them."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from tests.executor_support import wait_until
from tests.factories import AppFactory, UserFactory
from tests.stack import start_web

TOKEN = "e2e-metrics-token-0123456789"


@pytest.fixture
def web(transactional_db, tmp_path):
    process, base = start_web(tmp_path, METRICS_TOKEN=TOKEN, METRICS_ALLOW_IPS="127.0.0.1")
    yield base
    process.stop()


def figure(base: str, name: str, **labels: str) -> float:
    response = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{name} not in the metrics")


def test_a_web_process_counts_the_streams_it_holds_open(web):
    AppFactory(slug="waits")  # no worker runs here: the run stays queued and its stream stays open
    user = UserFactory(username="watcher")
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    run_id = requests.post(web + "/api/runs/", json={"app": "waits"}, headers=headers, timeout=10).json()[
        "id"
    ]
    assert figure(web, "controlplane_web_streams_open") == 0
    assert figure(web, "controlplane_runs_active", status="queued") == 1  # read from the database
    streams = [
        requests.get(
            f"{web}/api/runs/{run_id}/events",
            headers={**headers, "Accept": "text/event-stream"},
            stream=True,
            timeout=(5, 30),
        )
        for _ in range(2)
    ]
    try:
        assert all(stream.status_code == 200 for stream in streams)
        wait_until(lambda: figure(web, "controlplane_web_streams_open") == 2, timeout=10, what="2 streams")
        assert figure(web, "controlplane_web_live_listeners") >= 1
    finally:
        for stream in streams:
            stream.close()
    wait_until(lambda: figure(web, "controlplane_web_streams_open") == 0, timeout=30, what="streams closed")
    assert (
        requests.get(web + "/metrics", headers={"Authorization": "Bearer nope"}, timeout=10).status_code
        == 404
    )
