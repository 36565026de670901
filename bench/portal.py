"""The portal as a person sees it, in Debian's Chromium (headless, Playwright) against the real stack.

* From clicking Send to the agent's first token shown, and to the run shown finished, for the ``instant``
  app: p50 and p90 over ``--runs`` runs in one conversation (goals: first token < 100 ms p50).
* The conversation page's weight: every byte it loads (HTML, JS, CSS, the translation catalogue), by file
  (goal: under 150 KB).

    python bench/portal.py [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not bench/: its queue.py would shadow the stdlib

from bench.common import (
    PYTHON,
    free_port,
    percentile,
    process_env,
    scratch_database,
    spawn,
    stop,
    wait_http,
)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
EXECUTOR_TOKEN = "bench-executor-token"
WEB = ["-m", "uvicorn", "controlplane.asgi:application", "--no-access-log", "--log-level", "warning"]

# Installed in the page before each click: when Send is clicked, when the new turn's first agent text is on
# screen, and when its status reads "succeeded" (all on the page's own clock).
WATCH = """(turnsBefore) => {
  window.__t = {};
  const thread = document.getElementById('thread');
  document.getElementById('composer-send').addEventListener(
    'click', () => { window.__t.click = performance.now(); }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const turn = thread.children[turnsBefore];
    if (!turn) return;
    const bubble = turn.querySelector('.bubble.agent');
    if (bubble && bubble.textContent && !window.__t.first) window.__t.first = performance.now();
    const status = turn.querySelector('.run-status .status');
    if (status && status.classList.contains('succeeded') && window.__t.first && !window.__t.done) {
      window.__t.done = performance.now();
      observer.disconnect();
    }
  });
  observer.observe(thread, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def seed(executor_url: str) -> str:
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from agents.models import Action, App, AppGrant, Executor
    from rbac.models import Role, RoleBinding

    executor = Executor.objects.create(name="bench", base_url=executor_url, token=EXECUTOR_TOKEN)
    App.objects.create(slug="instant", name="Instant", playbook="instant", executor=executor)
    user = get_user_model().objects.create_user("bench", password="bench-password")
    role = Role.objects.create(slug="bench", name="bench")
    AppGrant.objects.create(role=role, action=Action.USE, app=None)
    RoleBinding.objects.create(role=role, user=user)
    store = SessionStore()
    store.update(
        {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
    )
    store.create()
    return store.session_key or ""


def page_weight(context, base: str) -> list[tuple[str, int]]:
    loaded: list[tuple[str, int]] = []
    page = context.new_page()
    page.on("response", lambda answer: loaded.append((answer.url.removeprefix(base), len(answer.body()))))
    page.goto("/portal/apps/instant/new", wait_until="networkidle")
    page.close()
    return loaded


def time_runs(context, runs: int) -> tuple[list[float], list[float]]:
    page = context.new_page()
    page.goto("/portal/apps/instant/new", wait_until="networkidle")
    first, done = [], []
    for n in range(runs):
        page.evaluate(WATCH, n)
        page.get_by_label("Message").fill(f"hello {n}")
        page.locator("#composer-send").click()
        page.wait_for_function("() => window.__t.done", timeout=20_000)
        times = page.evaluate("() => window.__t")
        first.append(times["first"] - times["click"])
        done.append(times["done"] - times["click"])
        if os.environ.get("BENCH_DEBUG"):
            entries = page.evaluate("""() => performance.getEntriesByType('resource').slice(-3).map(
                e => [e.name.slice(-40), e.startTime - window.__t.click, e.responseStart - window.__t.click,
                      e.responseEnd - window.__t.click])""")
            print(round(times["first"] - times["click"]), entries)
    page.close()
    return first, done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with scratch_database("bench_portal") as url:
        port, executor_port = free_port(), free_port()
        base, executor_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{executor_port}"
        env = process_env(url, STATIC_FROM_APPS="true", DEBUG="false", SECURE_COOKIES="false")
        processes = [
            spawn([PYTHON, "-m", "executor", "--port", str(executor_port), "--token", EXECUTOR_TOKEN], env),
            spawn([PYTHON, *WEB, "--port", str(port)], env),
            spawn([PYTHON, "manage.py", "runworker", "--concurrency", "4"], env),
        ]
        try:
            wait_http(executor_url + "/v1/health", {"Authorization": f"Bearer {EXECUTOR_TOKEN}"})
            wait_http(base + "/healthz")
            session_key = seed(executor_url)
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # no ORM call below; Playwright's loop runs
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                context = browser.new_context(base_url=base)
                context.add_cookies([{"name": "sessionid", "value": session_key, "url": base}])
                weights = page_weight(context, base)
                time_runs(context, 3)  # warm-up: connections, caches, the first stream
                started = time.perf_counter()
                first, done = time_runs(context, options.runs)
                elapsed = time.perf_counter() - started
                browser.close()
        finally:
            stop(processes)

    first.sort()
    done.sort()
    print(f"== the portal in Chromium: {options.runs} runs of the instant app in {elapsed:.1f} s")
    for label, values in (("first token shown", first), ("run shown finished", done)):
        p50, p90 = percentile(values, 0.5), percentile(values, 0.9)
        print(f"click Send -> {label:<18}  p50 {p50:6.1f} ms   p90 {p90:6.1f} ms")
    print("(goal: first token shown < 100 ms p50)")
    total = sum(size for _, size in weights)
    print(f"conversation page weight: {total / 1024:.1f} KiB in {len(weights)} files (goal < 150 KB)")
    for path, size in sorted(weights, key=lambda item: -item[1]):
        print(f"  {size / 1024:7.1f} KiB  {path}")
    ratio = percentile(first, 0.5) / 100
    print(f"ratio: first token p50 / goal = {ratio:.2f}; weight / goal = {total / 150_000:.2f}")


if __name__ == "__main__":
    main()
