"""A cancel is recorded by the web process and passed on by the worker: with the executor hung, cancels
answer at once and the web process stays responsive."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.utils import timezone

from runs.models import Run, RunStatus

pytestmark = pytest.mark.slow


def test_cancels_with_the_executor_hung_never_hold_up_the_web_process(stack, app_on_executor, client_for):
    app = app_on_executor("long", slug="long-hung")
    # Four users, ten runs each: within the per-user limit of active runs.
    clients = [client_for(f"carl{i}") for i in range(4)]
    run_ids = [
        client.post("/api/runs/", json={"app": "long-hung", "input": {"seconds": 60}}).json()["id"]
        for client in clients
        for _ in range(10)
    ]
    # As if workers had started them on an executor that now answers nothing for 30 s.
    Run.objects.filter(pk__in=run_ids, app=app).update(status=RunStatus.RUNNING, started_at=timezone.now())
    owner = {run_id: clients[index // 10] for index, run_id in enumerate(run_ids)}
    stack.executor.faults(latency={"seconds": 30, "path_prefix": "/v1/runs"})
    try:
        with ThreadPoolExecutor(max_workers=40) as pool:
            started = time.monotonic()
            cancels = [pool.submit(owner[run_id].post, f"/api/runs/{run_id}/cancel") for run_id in run_ids]
            time.sleep(0.2)  # the cancels are in flight
            health = requests.get(stack.base + "/healthz", timeout=10)
            health_s = time.monotonic() - started
            answers = [future.result(timeout=30) for future in cancels]
            all_s = time.monotonic() - started
    finally:
        stack.executor.clear_faults()
    assert health.status_code == 200
    assert health_s < 3, f"/healthz took {health_s:.1f} s behind 40 cancels"
    assert all(answer.status_code == 200 for answer in answers)
    assert all_s < 10, f"40 cancels took {all_s:.1f} s with the executor hung"
    assert Run.objects.filter(pk__in=run_ids, cancel_requested=True).count() == 40
