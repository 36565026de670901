"""Demo data: a superuser, two people in two departments, one app per scripted playbook, and the access
rules that show RBAC at work.

- alice (research) sees and starts every research app, and edits their prompts;
- bob (support) sees the guided demo but may not start it, and starts the instant reply;
- the operators' report is seen by admins only (no grant names it);
- a project, "Market report", owned by research;
- a file root "demo" over sample files in ``VAR_DIR/demo-files``: research reads ``reports/`` and the
  project's ``workspace/``, nobody but admins reads ``secret/``.

``seed_demo`` creates what is missing and changes nothing that exists (a password someone changed stays
changed), so ``manage.py standalone`` can call it on every start. Its apps name no executor: they run on
the default one — the reference executor inside ``manage.py standalone``, or ``EXECUTOR_URL`` elsewhere.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connections, transaction

from agents.models import Action, AgentKind, App, AppGrant, Project
from agents.prompts import prompt_version_create
from files.models import FileACL, FileRoot, Permission
from rbac.models import Department, Role, RoleBinding
from rbac.services import DEMO_ADMIN_PASSWORD, demo_passwords_allowed, user_ensure

DEMO_USER_PASSWORD = "demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    password: str
    superuser: bool = False
    department: str = ""

    @property
    def email(self) -> str:
        return f"{self.username}@example.com"


@dataclass(frozen=True)
class DemoApp:
    slug: str
    name: str
    description: str
    category: str = "research"
    glyph: str = "bot"
    playbook: str = ""
    plugins: tuple[str, ...] = ()

    @property
    def system_prompt(self) -> str:
        return f"You are the {self.name} demo agent (scripted playbook {self.playbook or self.slug!r})."


USERS = (
    DemoUser("admin", DEMO_ADMIN_PASSWORD, superuser=True),
    DemoUser("alice", DEMO_USER_PASSWORD, department="research"),
    DemoUser("bob", DEMO_USER_PASSWORD, department="support"),
)

# (slug, name, parent slug): a small tree, so department inheritance has something to show.
DEPARTMENTS = (
    ("acme", "Acme", ""),
    ("research", "Research", "acme"),
    ("support", "Support", "acme"),
)

APPS = (
    DemoApp(
        "demo",
        "Guided demo agent",
        "Start here. Plans a todo list, streams its reasoning, calls a tool, then asks you to approve "
        'before it writes the answer. Input: {"message": "what to work on"}.',
        glyph="spark",
    ),
    DemoApp(
        "instant",
        "Instant reply",
        "Answers with one short message straight away: the quickest way to watch a run start and finish.",
        category="everyone",
        glyph="chat",
    ),
    DemoApp(
        "flood",
        "Event flood",
        "Streams a burst of message fragments to show how fast events reach the browser. "
        'Input: {"count": 1000} (1 to 1,000,000).',
        glyph="chart",
    ),
    DemoApp(
        "fail",
        "Always fails",
        "Plans one step, says so, and fails on purpose: this is what a failed run and its error look like.",
        glyph="shield",
    ),
    DemoApp(
        "long",
        "Long runner",
        "Ticks ten times a second until cancelled, or for a while with "
        '{"seconds": 30}. Try cancelling it, or closing the page and coming back.',
        glyph="code",
    ),
    DemoApp(
        "tools",
        "Tool user",
        "Calls plugins through the tool gateway, each call checked, traced and audited: give it a URL to "
        "fetch (http_fetch; the demo allows only this machine, e.g. http://127.0.0.1:8000/healthz) or a "
        "SELECT on the sample database (db_query), e.g. SELECT * FROM incidents.",
        glyph="search",
        plugins=("http_fetch", "db_query"),
    ),
    DemoApp(
        "ops-report",
        "Operators' report",
        "Answers at once with a short report. No grant names it: only admins see it in the store.",
        category="operations",
        glyph="document",
        playbook="instant",
    ),
)

RESEARCH_APPS = ("demo", "flood", "fail", "long", "instant", "tools")

# The sample database db_query reads in the demo (the `samples` alias: settings.py, standalone only).
SAMPLES_ALIAS = "samples"
SAMPLE_INCIDENTS = (
    (1, "Disk full on the build server", 2, "2026-11-02"),
    (2, "DNS outage in the office", 1, "2026-11-09"),
    (3, "Slow API responses", 3, "2026-11-17"),
    (4, "Expired TLS certificate", 1, "2026-11-23"),
)


@dataclass(frozen=True)
class DemoRole:
    slug: str
    name: str
    grants: tuple[tuple[str, tuple[str, ...]], ...]  # (action, app slugs; () = every app)
    department: str = ""  # bound to this department and those below it...
    user: str = ""  # ...or to this user


ROLES = (
    DemoRole(
        "researcher",
        "Researcher",
        ((Action.USE, RESEARCH_APPS),),
        department="research",
    ),
    DemoRole("prompt-editor", "Prompt editor", ((Action.PROMPT_EDIT, RESEARCH_APPS),), user="alice"),
    DemoRole(
        "support-agent",
        "Support agent",
        ((Action.SEE, ("demo",)), (Action.USE, ("instant",))),
        department="support",
    ),
)

PROJECTS = (("market-report", "Market report", "research"),)


@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)


@transaction.atomic
def seed_demo(*, allow_demo_passwords: bool = False) -> SeedReport:
    """Create the demo users, departments and apps that do not exist yet.

    Raises ``rbac.services.DemoPasswordRefused`` with DEBUG off unless ``allow_demo_passwords``: the demo
    passwords are printed in the README.
    """
    demo_passwords_allowed(allow=allow_demo_passwords)
    report = SeedReport()
    users = {user.username: _ensure_user(user, report) for user in USERS}
    for slug, name, parent in DEPARTMENTS:
        _ensure_department(slug, name, parent, users, report)
    for app in APPS:
        _ensure_app(app, report)
    for role in ROLES:
        _ensure_role(role, users, report)
    for slug, name, department in PROJECTS:
        _ensure_project(slug, name, department, report)
    _ensure_samples(report)
    _ensure_demo_files(report)
    return report


def _ensure_user(demo: DemoUser, report: SeedReport):
    user, created = user_ensure(
        username=demo.username, password=demo.password, email=demo.email, superuser=demo.superuser
    )
    if created:
        report.created.append(f"user {demo.username}")
    return user


def _ensure_department(slug: str, name: str, parent: str, users: dict, report: SeedReport) -> None:
    department, created = Department.objects.get_or_create(
        slug=slug, defaults={"name": name, "parent": Department.objects.filter(slug=parent).first()}
    )
    if not created:
        return  # an existing department, members included, is someone's: leave it
    members = [users[u.username] for u in USERS if u.department == slug]
    department.members.add(*members)
    report.created.append(f"department {slug}")


def _ensure_app(demo: DemoApp, report: SeedReport) -> None:
    app, created = App.objects.get_or_create(
        slug=demo.slug,
        defaults={
            "name": demo.name,
            "description": demo.description,
            "category": demo.category,
            "glyph": demo.glyph,
            "agent_kind": AgentKind.SCRIPTED,
            "playbook": demo.playbook or demo.slug,
            "plugins": list(demo.plugins),
        },
    )
    if not created:
        return
    prompt_version_create(
        app=app,
        text=demo.system_prompt,
        message="Demo prompt",
        author=None,
        activate=True,
        reason="Demo prompt",
    )
    report.created.append(f"app {demo.slug}")


def _ensure_role(demo: DemoRole, users: dict, report: SeedReport) -> None:
    role, created = Role.objects.get_or_create(slug=demo.slug, defaults={"name": demo.name})
    if not created:
        return  # an existing role, grants and bindings included, is someone's: leave it
    apps = {app.slug: app for app in App.objects.all()}
    for action, slugs in demo.grants:
        targets: list[App | None] = [apps[slug] for slug in slugs if slug in apps] if slugs else [None]
        AppGrant.objects.bulk_create([AppGrant(role=role, action=action, app=app) for app in targets])
    if demo.department:
        department = Department.objects.get(slug=demo.department)
        RoleBinding.objects.create(role=role, department=department, include_descendants=True)
    else:
        RoleBinding.objects.create(role=role, user=users[demo.user])
    report.created.append(f"role {demo.slug}")


def _ensure_project(slug: str, name: str, department: str, report: SeedReport) -> None:
    owner = Department.objects.get(slug=department)
    _, created = Project.objects.get_or_create(slug=slug, defaults={"name": name, "department": owner})
    if created:
        report.created.append(f"project {slug}")


def _ensure_samples(report: SeedReport) -> None:
    """The sample table db_query reads in the demo, where the samples database is configured."""
    if SAMPLES_ALIAS not in settings.DB_QUERY_DATABASES or SAMPLES_ALIAS not in connections:
        return
    with connections[SAMPLES_ALIAS].cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS incidents"
            " (id integer PRIMARY KEY, title text NOT NULL, severity integer NOT NULL, opened date NOT NULL)"
        )
        cursor.execute("SELECT count(*) FROM incidents")
        if cursor.fetchone()[0]:
            return
        for row in SAMPLE_INCIDENTS:
            cursor.execute("INSERT INTO incidents VALUES (%s, %s, %s, %s)", row)
    report.created.append("sample database (incidents)")


DEMO_ROOT = "demo"
DEMO_READER_ROLE = "demo-file-reader"
DEMO_READABLE = ("reports", "workspace")


def _png(width: int = 48, height: int = 24) -> bytes:
    """A small real PNG (a two-colour bar chart), without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b""
    for y in range(height):
        row = b""
        for x in range(width):
            bar = (x // 8) % 2 == 0 and y >= height - (x // 8 + 1) * 3
            row += bytes((37, 99, 235) if bar else (241, 245, 249))
        rows += b"\x00" + row
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


DEMO_FILES: dict[str, str | Callable[[], bytes]] = {
    "reports/2026-q3.csv": (
        "quarter,region,revenue\n2026-Q3,north,1200\n2026-Q3,south,980\n2026-Q3,east,1430\n"
    ),
    "reports/summary.md": (
        "# Quarterly summary\n\nRevenue grew 8 % over the quarter; east led.\n\n季度总结：收入增长 8%。\n"
    ),
    "reports/chart.png": _png,
    "workspace/market-report/output.txt": (
        "Market report agent, run output:\n- 3 competitors analysed\n- 2 risks found\n"
    ),
    "workspace/market-report/notes.log": "2026-11-30T09:00:00Z started\n2026-11-30T09:02:10Z finished\n",
    "secret/salaries.csv": "name,salary\nalice,1\nbob,2\n",
    "README.txt": "Sample files of the demo file root.\n",
}


def _ensure_demo_files(report: SeedReport) -> None:
    """The demo root's folder (files that exist are left as they are), the root and its ACLs."""
    base = Path(settings.VAR_DIR) / "demo-files"
    for name, content in DEMO_FILES.items():
        path = base / name
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content() if callable(content) else content.encode()
        path.write_bytes(data)
    project = Project.objects.filter(slug="market-report").first()
    root, created = FileRoot.objects.get_or_create(
        name=DEMO_ROOT,
        defaults={
            "path": str(base),
            "description": "Shared reports and the Market report project's workspace (demo).",
            "project": project,
        },
    )
    if not created:
        return
    report.created.append(f"file root {DEMO_ROOT}")
    role, _ = Role.objects.get_or_create(slug=DEMO_READER_ROLE, defaults={"name": "Demo file reader"})
    RoleBinding.objects.get_or_create(
        role=role, department=Department.objects.get(slug="research"), defaults={"include_descendants": True}
    )
    for prefix in DEMO_READABLE:
        FileACL.objects.get_or_create(root=root, path_prefix=prefix, role=role, permission=Permission.READ)
