"""The operators' screenshots in the README (docs/screenshots/dashboard.png and waterfall.png), taken from a
running control plane with the demo data, in Debian's Chromium (headless, Playwright):

    make demo                                    # one shell: the control plane, executor and worker
    DEBUG=true .venv/bin/python manage.py reconcile   # another: the agent-status monitor (and heartbeat)
    .venv/bin/python scripts/screenshots.py      # a third: starts a few runs, then takes the pictures

It signs in as an operator (``admin`` by default), starts one run of each scripted playbook it may use
(``long`` keeps an agent busy, ``demo`` waits for an answer, ``fail`` fails, ``instant`` finishes), waits
until the monitor has seen the agents, and photographs the dashboard and the waterfall of the finished
trace with the most spans. The ``long`` run is cancelled at the end.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = {
    "long": {"seconds": 600},
    "demo": {"message": "Summarise the quarter"},
    "fail": {},
    "instant": {},
}
VIEWPORT = {"width": 1200, "height": 760}  # as the other screenshots


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
    try:
        wait_for(lambda: len(api.get("/api/agents/status")["results"]) >= 2, "the monitor to see the agents")
        wait_for(lambda: best_trace(api), "a finished run's trace")
        take(args, trace_id=best_trace(api))
    finally:
        if "long" in started:
            api.post(f"/api/runs/{started['long']}/cancel")


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


def best_trace(api: Api) -> str | None:
    traces = [
        t for t in api.get("/api/traces/?limit=50")["results"] if t["status"] in {"succeeded", "failed"}
    ]
    return max(traces, key=lambda t: (t["error_count"] > 0, t["span_count"]))["trace_id"] if traces else None


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} (is `manage.py reconcile` running?)")
        time.sleep(1)


def take(args: argparse.Namespace, *, trace_id: str | None) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, args=["--headless", "--no-sandbox"]
        )
        page = browser.new_context(base_url=args.base, viewport=VIEWPORT, locale="en-US").new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(args.user)
        page.get_by_label("Password").fill(args.password)
        page.get_by_role("button", name="Sign in").click()
        page.goto("/dashboard/")
        page.wait_for_selector("#agents[data-live]")
        page.wait_for_selector("#recent-rows tr")
        page.screenshot(path=str(args.out / "dashboard.png"))
        page.goto(f"/dashboard/traces/{trace_id}")
        page.wait_for_selector("#waterfall[data-ready]")
        chosen = page.locator(".span-row.error").first
        if not chosen.count():
            chosen = page.locator(".span-row").last
        chosen.get_by_role("button").click()
        page.screenshot(path=str(args.out / "waterfall.png"))
        browser.close()
    print(f"wrote {args.out / 'dashboard.png'} and {args.out / 'waterfall.png'}")


if __name__ == "__main__":
    main()
