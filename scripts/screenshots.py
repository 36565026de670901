"""The operators' screenshots in the README (docs/screenshots/dashboard.png and waterfall.png), taken from a
running control plane with the demo data and the agent-status monitor, in Debian's Chromium (headless,
Playwright). ``make demo`` runs everything in one process; for a waterfall across processes, run the web
process, ``runworker``, ``reconcile`` and the reference executor apart (as below, with ``EXECUTOR_URL`` and
``EXECUTOR_TOKEN`` set for the first three), then:

    DEBUG=true .venv/bin/python manage.py reconcile   # beside `make demo`: the monitor (and heartbeat)
    .venv/bin/python scripts/screenshots.py [--base http://127.0.0.1:8000]

It signs in as an operator (``admin`` by default) and starts one run of each scripted playbook it may use
(``long`` keeps an agent busy, ``demo`` waits for an answer, ``fail`` fails, ``instant`` finishes) and a
second ``demo`` run that it answers at once. Once the monitor shows each agent in its run's state and that
second run has finished, it photographs the dashboard and that run's waterfall. The runs still active
(``long``, the first ``demo``) are cancelled at the end.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import requests
from playwright.sync_api import Page, ViewportSize, sync_playwright

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = {
    "long": {"seconds": 600},
    "demo": {"message": "Summarise the quarter"},
    "fail": {},
    "instant": {},
}
EXPECTED = {"long": "busy", "demo": "waiting_input", "fail": "error", "instant": "idle"}
VIEWPORT: ViewportSize = {"width": 1200, "height": 760}  # as the other screenshots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    api = Api(args.base, args.user, args.password)
    started = start_runs(api)
    # The waterfall's run: a demo run answered at once (the dashboard's demo run waits for its answer).
    traced = api.post("/api/runs/", {"app": "demo", "input": PLAYBOOKS["demo"]})["id"]
    answer(api, traced)
    try:
        wait_for(lambda: agents_settled(api, started), "the monitor to see the agents", timeout=120)
        wait_for(lambda: trace_complete(api, traced), "the demo run's trace")
        with browser(args) as page:
            page.goto("/dashboard/")
            page.wait_for_selector("#agents[data-live]")
            page.wait_for_selector("#recent-rows tr")
            page.screenshot(path=str(args.out / "dashboard.png"))
            trace_id = api.get(f"/api/runs/{traced}/trace")["trace_id"]
            page.goto(f"/dashboard/traces/{trace_id}")
            page.wait_for_selector("#waterfall[data-ready]")
            page.locator(".span-row", has_text="executor.send_input").get_by_role("button").click()
            page.screenshot(path=str(args.out / "waterfall.png"))
        print(f"wrote {args.out / 'dashboard.png'} and {args.out / 'waterfall.png'}")
    finally:
        for slug in ("long", "demo"):
            if slug in started:
                api.post(f"/api/runs/{started[slug]}/cancel")


class Api:
    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base
        reply = requests.post(
            f"{base}/api/auth/token/", json={"username": user, "password": password}, timeout=10
        )
        reply.raise_for_status()
        self.headers = {"Authorization": f"Token {reply.json()['token']}"}

    def get(self, path: str) -> dict:
        reply = requests.get(self.base + path, headers=self.headers, timeout=10)
        reply.raise_for_status()
        return reply.json()

    def post(self, path: str, body: dict | None = None) -> dict:
        reply = requests.post(self.base + path, json=body or {}, headers=self.headers, timeout=10)
        reply.raise_for_status()
        return reply.json()


def start_runs(api: Api) -> dict[str, str]:
    usable = {app["slug"] for app in api.get("/api/apps/?page_size=500")["results"] if app["usable"]}
    return {
        slug: api.post("/api/runs/", {"app": slug, "input": body})["id"]
        for slug, body in PLAYBOOKS.items()
        if slug in usable
    }


def agents_settled(api: Api, started: dict[str, str]) -> bool:
    """The monitor shows each playbook's agent in the state its run puts it in (after its debounce)."""
    states = {agent["app"]: agent["state"] for agent in api.get("/api/agents/status")["results"]}
    return all(states.get(slug) == EXPECTED[slug] for slug in started)


def answer(api: Api, run_id: str) -> None:
    def question() -> dict | None:
        pending = api.get("/api/human-loop/pending")["results"]
        return next((item for item in pending if item["run_id"] == run_id), None)

    asked = wait_for(question, "the demo run's question")
    api.post("/api/human-loop/reply", {"request_id": asked["request_id"], "answer": "approve"})


def trace_complete(api: Api, run_id: str) -> bool:
    if api.get(f"/api/runs/{run_id}/")["status"] != "succeeded":
        return False
    names = [span["name"] for span in api.get(f"/api/runs/{run_id}/trace")["spans"]]
    return "human.reply" in names and names.count("run.follow") == 2


def wait_for(condition: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    """What ``condition`` returns once it is truthy."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} (is `manage.py reconcile` running?)")
        time.sleep(1)
    return value


@contextmanager
def browser(args: argparse.Namespace) -> Iterator[Page]:
    """A page signed in through the sign-in form."""
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=args.chromium, args=["--headless", "--no-sandbox"]
        )
        page = chromium.new_context(base_url=args.base, viewport=VIEWPORT, locale="en-US").new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(args.user)
        page.get_by_label("Password").fill(args.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/portal/**")
        yield page
        chromium.close()


if __name__ == "__main__":
    main()
