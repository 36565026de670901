"""The app store's API: constant queries whatever the number of apps and bindings, what an entry shows,
icons, and the demo's rules."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from agents.models import Action, App, AppGrant
from controlplane.demo import seed_demo
from rbac.models import Department, RoleBinding
from tests.factories import (
    AppFactory,
    DepartmentFactory,
    PromptVersionFactory,
    RoleFactory,
    UserFactory,
    grant,
)


def make_apps(count: int, start: int = 0) -> list[App]:
    executor = AppFactory(slug=f"seed-{start}").executor
    apps = App.objects.bulk_create(
        [
            App(slug=f"app-{n:04d}", name=f"App {n:04d}", executor=executor)
            for n in range(start, start + count)
        ]
    )
    return apps


def deep_member(depth: int = 5):
    user = UserFactory(username="deep-member")
    parent = None
    chain = []
    for level in range(depth):
        parent = DepartmentFactory(slug=f"level-{level}", parent=parent)
        chain.append(parent)
    parent.members.add(user)
    return user, chain


def list_apps(client) -> list[dict]:
    response = client.get("/api/apps/?page_size=500")
    assert response.status_code == 200
    return response.json()["results"]


def test_listing_the_store_takes_the_same_queries_for_10_or_1000_apps_and_200_bindings(
    db, api_as, django_assert_num_queries
):
    user, chain = deep_member()
    role = RoleFactory(slug="readers")
    RoleBinding.objects.create(role=role, department=chain[0], include_descendants=True)
    make_apps(10)
    AppGrant.objects.create(role=role, action=Action.SEE)  # every app
    client = api_as(user)
    with django_assert_num_queries(2):  # the page, and the count
        small = list_apps(client)
    make_apps(990, start=10)
    others = RoleFactory(slug="others")
    # Made in one statement: through the factory, hashing 200 passwords took 40 s.
    strangers = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"stranger-{n}") for n in range(200)]
    )
    RoleBinding.objects.bulk_create([RoleBinding(role=others, user=u) for u in strangers])
    AppGrant.objects.bulk_create(
        [AppGrant(role=others, action=Action.USE, app=app) for app in App.objects.all()[:300]]
    )
    with django_assert_num_queries(2):
        large = list_apps(client)
    assert len(small) == 11  # 10 apps and the one the factory made for their executor
    assert len(large) == 500  # a page of them
    assert not any(app["usable"] for app in large)  # the others' grants give the deep member nothing


def test_an_entry_shows_what_the_store_needs(db, api_as, member):
    app = AppFactory(slug="writer", category="writing", tags=["docs", "fast"], glyph="document")
    version = PromptVersionFactory(app=app, number=3)
    App.objects.filter(pk=app.pk).update(active_prompt=version)
    grant(member, Action.USE, app)
    entry = list_apps(api_as(member))[0]
    assert entry == {
        "slug": "writer",
        "name": "Writer",
        "description": "",
        "category": "writing",
        "tags": ["docs", "fast"],
        "glyph": "document",
        "icon_url": None,
        "plugins": [],
        "enabled": True,
        "usable": True,
        "prompt_editable": False,
        "all_runs_readable": False,
        "active_prompt_version": 3,
        "updated_at": entry["updated_at"],
    }
    detail = api_as(member).get("/api/apps/writer/").json()
    assert detail["actions"] == ["app.see", "app.use"]


def test_each_entry_says_whether_i_may_edit_its_prompt_and_read_all_its_runs_in_the_same_queries(
    db, api_as, member, superuser, django_assert_num_queries
):
    writer, reader, plain = AppFactory(slug="writer"), AppFactory(slug="reader"), AppFactory(slug="plain")
    grant(member, Action.PROMPT_EDIT, writer)
    grant(member, Action.RUN_VIEW_ALL, reader)
    grant(member, Action.SEE, plain)
    make_apps(30)
    grant(member, Action.SEE)  # every app
    with django_assert_num_queries(2):  # the page, and the count: no query per app
        entries = {entry["slug"]: entry for entry in list_apps(api_as(member))}
    flags = {
        slug: (entries[slug]["prompt_editable"], entries[slug]["all_runs_readable"])
        for slug in ("writer", "reader", "plain", "app-0001")
    }
    assert flags == {
        "writer": (True, False),
        "reader": (False, True),
        "plain": (False, False),
        "app-0001": (False, False),
    }
    detail = api_as(member).get("/api/apps/writer/").json()
    assert (detail["prompt_editable"], detail["all_runs_readable"]) == (True, False)
    everything = list_apps(api_as(superuser))
    assert all(entry["prompt_editable"] and entry["all_runs_readable"] for entry in everything)


def test_an_edit_grant_on_every_app_makes_every_prompt_editable(db, api_as, member):
    make_apps(3)
    grant(member, Action.PROMPT_EDIT)
    assert [entry["prompt_editable"] for entry in list_apps(api_as(member))] == [True] * 4


def test_the_store_searches_and_filters_by_category(db, api_as, member):
    AppFactory(slug="alpha", name="Alpha", category="writing", description="Drafts letters")
    AppFactory(slug="beta", name="Beta", category="code")
    grant(member, Action.SEE)
    client = api_as(member)
    slugs = lambda query: {a["slug"] for a in client.get(f"/api/apps/{query}").json()["results"]}  # noqa: E731
    assert slugs("?q=letters") == {"alpha"}
    assert slugs("?category=code") == {"beta"}
    assert slugs("?q=zzz") == set()
    too_long = client.get("/api/apps/?q=" + "x" * 101)
    assert (too_long.status_code, too_long.json()["error"]["code"]) == (400, "invalid")


def png(size=(8, 8), fmt="PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture
def admin_client(superuser, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = Client()
    client.force_login(superuser)
    return client


def icon_upload(admin_client, app, content: bytes, name: str):
    data = {
        "name": app.name,
        "slug": app.slug,
        "enabled": "on",
        "description": "",
        "category": "",
        "tags": "[]",
        "glyph": "bot",
        "icon": SimpleUploadedFile(name, content),
        "executor": app.executor_id,
        "agent_kind": "scripted",
        "playbook": "demo",
        "plugins": "[]",
        "settings_schema": "{}",
        "run_deadline_s": "",
        # the app's page carries the prompt inlines (history, new version): their management forms
        "prompt_versions-TOTAL_FORMS": "0",
        "prompt_versions-INITIAL_FORMS": "0",
        "prompt_versions-2-TOTAL_FORMS": "0",
        "prompt_versions-2-INITIAL_FORMS": "0",
    }
    return admin_client.post(f"/admin/agents/app/{app.pk}/change/", data)


def test_an_uploaded_icon_is_served_to_those_who_see_the_app_and_to_no_one_else(
    db, admin_client, api_as, member, outsider
):
    app = AppFactory(slug="painter")
    response = icon_upload(admin_client, app, png(), "icon.png")
    assert response.status_code == 302, response.content.decode()[:2000]
    grant(member, Action.SEE, app)
    entry = api_as(member).get("/api/apps/painter/").json()
    assert entry["icon_url"] == "/api/apps/painter/icon"
    icon = api_as(member).get(entry["icon_url"])
    assert icon.status_code == 200
    assert icon["Content-Type"] == "image/png"
    assert icon["X-Content-Type-Options"] == "nosniff"
    assert b"".join(icon.streaming_content) == png()
    assert api_as(outsider).get(entry["icon_url"]).status_code == 404


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "x.svg", "image"),
        (png(fmt="BMP"), "x.bmp", "PNG, JPEG, GIF or WebP"),
        (png(size=(600, 600)) + b"\0" * (256 * 1024), "big.png", "at most"),
    ],
)
def test_an_icon_that_is_not_a_small_web_image_is_refused(db, admin_client, content, name, message):
    app = AppFactory(slug="painter")
    response = icon_upload(admin_client, app, content, name)
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    app.refresh_from_db()
    assert not app.icon


def test_the_demo_shows_the_rules_at_work(db, settings, api_as):
    settings.DEBUG = True
    seed_demo()
    from django.contrib.auth import get_user_model

    users = {u.username: u for u in get_user_model().objects.all()}
    store = {name: {a["slug"]: a["usable"] for a in list_apps(api_as(user))} for name, user in users.items()}
    research = {"demo", "instant", "flood", "fail", "long", "tools"}
    assert store["alice"] == dict.fromkeys(research, True)
    assert store["bob"] == {"demo": False, "instant": True}  # sees the guide, may not start it
    assert store["admin"] == dict.fromkeys(research | {"ops-report"}, True)  # only admins see ops-report
    assert Department.objects.get(slug="research").projects.get().slug == "market-report"
    refused = api_as(users["bob"]).post("/api/runs/", {"app": "demo"}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "app_not_usable")
    hidden = api_as(users["bob"]).post("/api/runs/", {"app": "ops-report"}, format="json")
    assert hidden.status_code == 404
