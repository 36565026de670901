"""The app store under a company-sized policy: GET /api/apps/ for a member deep in the department tree.

1,000 apps, 100 departments in a tree 5 deep, 2,000 users, 5,000 bindings (a tenth of them expired, half on
departments, a third of those including sub-departments) and 50 roles with grants. Measures, in one process
through Django's test client (the view, its queries and the serialisation; no HTTP server):

- ``GET /api/apps/`` p50 / p99 and queries per request, for a member four levels down, for an outsider and
  for a superuser; the same with ``page_size=500``;
- ``can(user, "app.use", app)`` p50 (the run start's check).

Goals (issue 12): p50 < 20 ms, queries constant (the same for every user and page size).

    python bench/rbac.py [--requests 150]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # this folder holds bench/queue.py, which would shadow the standard library's queue

import argparse
import random
import statistics
import time

from bench.common import percentile, scratch_database

LEVELS = (1, 3, 9, 27, 60)  # 100 departments, 5 deep


def seed(rng: random.Random):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from agents.models import Action, App, AppGrant, Executor
    from rbac.models import Department, Role, RoleBinding

    User = get_user_model()
    executor = Executor.objects.create(name="bench", base_url="http://executor:8100")
    apps = App.objects.bulk_create(
        [App(slug=f"app-{n:04d}", name=f"App {n:04d}", executor=executor) for n in range(1000)]
    )
    departments: list[list] = []
    for level, size in enumerate(LEVELS):
        parents = departments[-1] if departments else [None]
        made = Department.objects.bulk_create(
            [
                Department(slug=f"d{level}-{n}", name=f"D{level}-{n}", parent=parents[n % len(parents)])
                for n in range(size)
            ]
        )
        departments.append(made)
    every = [d for level in departments for d in level]
    users = User.objects.bulk_create([User(username=f"user-{n:04d}") for n in range(2000)])
    Membership = Department.members.through
    Membership.objects.bulk_create(
        [Membership(department_id=every[n % len(every)].pk, user_id=u.pk) for n, u in enumerate(users)]
    )
    roles = Role.objects.bulk_create([Role(slug=f"role-{n}", name=f"Role {n}") for n in range(50)])
    grants = []
    for role in roles:
        for app in rng.sample(apps, 20):
            grants.append(AppGrant(role=role, action=rng.choice([Action.SEE, Action.USE]), app=app))
    AppGrant.objects.bulk_create(grants)
    past = timezone.now() - timezone.timedelta(days=1)
    bindings = []
    for n in range(5000):
        expires = past if n % 10 == 0 else None
        if n % 2:
            bindings.append(RoleBinding(role=rng.choice(roles), user=rng.choice(users), expires_at=expires))
        else:
            bindings.append(
                RoleBinding(
                    role=rng.choice(roles),
                    department=rng.choice(every),
                    include_descendants=n % 3 == 0,
                    expires_at=expires,
                )
            )
    RoleBinding.objects.bulk_create(bindings)
    deep = User.objects.create_user("deep-member")
    departments[-1][0].members.add(deep)
    outsider = User.objects.create_user("outsider")
    root = User.objects.create_superuser("root")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {"member four levels down": deep, "outsider": outsider, "superuser": root}, apps


def measure(client, path: str, requests: int) -> tuple[list[float], int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    queries, seen = len(captured), len(response.json()["results"])
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    return timings, queries, seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=150)
    args = parser.parse_args()
    with scratch_database("cp_bench_rbac"):
        from django.conf import settings
        from django.test import Client

        from agents.access import apps_for, can

        settings.ALLOWED_HOSTS = ["*"]
        cast, apps = seed(random.Random(12))
        print("RBAC: 1,000 apps, 100 departments 5 deep, 2,000 users, 5,000 bindings, 50 roles")
        default_p50s, queries_by_user = [], {}
        for name, user in cast.items():
            client = Client()
            client.force_login(user)
            for path in ("/api/apps/", "/api/apps/?page_size=500"):
                timings, queries, seen = measure(client, path, args.requests)
                queries_by_user.setdefault(name, set()).add(queries)
                p50 = percentile(sorted(timings), 0.5) * 1000
                if path == "/api/apps/":
                    default_p50s.append(p50)
                print(
                    f"  GET {path:<26} {name:<24} sees {apps_for(user, 'app.see').count():>4} apps "
                    f"(page {seen:>3}): p50 {p50:5.1f} ms, "
                    f"p99 {percentile(sorted(timings), 0.99) * 1000:5.1f} ms, {queries} queries"
                )
        member = cast["member four levels down"]
        checks = []
        for app in apps[: args.requests]:
            started = time.perf_counter()
            can(member, "app.use", app)
            checks.append(time.perf_counter() - started)
        print(f"  can(member, 'app.use', app): p50 {percentile(sorted(checks), 0.5) * 1000:.2f} ms")
        worst = max(default_p50s)
        print(f"  goal p50 < 20 ms (default page): worst {worst:.1f} ms, {worst / 20:.2f}× the goal")
        # Sign-in (session and user) and the page's count and rows; an empty page skips the rows.
        print(f"  queries per request by user: { {k: sorted(v) for k, v in queries_by_user.items()} }")
        print(f"  median p50 (default page): {statistics.median(default_p50s):.1f} ms")


if __name__ == "__main__":
    main()
