"""Who sees and uses which app: the cast against the rules, through the selectors, the API, run start and
``has_perm``."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.access import actions_on, apps_for, can
from agents.models import Action
from tests.factories import (
    AppFactory,
    AppGrantFactory,
    DepartmentFactory,
    RoleBindingFactory,
    RoleFactory,
    UserFactory,
    grant,
)


@pytest.fixture
def world(db, superuser):
    """Acme › Research › ML. Research apps are used by Research and everything below it (one binding with
    include_descendants); Support may only see the guide; an admin-only app has no grant at all."""
    acme = DepartmentFactory(slug="acme")
    research = DepartmentFactory(slug="research", parent=acme)
    ml = DepartmentFactory(slug="ml", parent=research)
    support = DepartmentFactory(slug="support", parent=acme)
    people = {
        "direct": UserFactory(username="direct"),  # bound to the role in person
        "member": UserFactory(username="member"),  # a member of research
        "deep": UserFactory(username="deep"),  # a member of ml, below research
        "supporter": UserFactory(username="supporter"),
        "outsider": UserFactory(username="outsider"),
        "expired": UserFactory(username="expired"),
        "root": superuser,
    }
    research.members.add(people["member"])
    ml.members.add(people["deep"])
    support.members.add(people["supporter"])
    apps = {slug: AppFactory(slug=slug) for slug in ["notes", "report", "guide", "ops"]}
    researcher = RoleFactory(slug="researcher")
    for slug in ["notes", "report"]:
        AppGrantFactory(role=researcher, action=Action.USE, app=apps[slug])
    RoleBindingFactory(role=researcher, department=research, include_descendants=True)
    RoleBindingFactory(role=researcher, user=people["direct"])
    RoleBindingFactory(
        role=researcher, user=people["expired"], expires_at=timezone.now() - timedelta(seconds=1)
    )
    viewer = RoleFactory(slug="viewer")
    AppGrantFactory(role=viewer, action=Action.SEE, app=apps["guide"])
    RoleBindingFactory(role=viewer, department=support)
    return people, apps, {"acme": acme, "research": research, "ml": ml, "support": support}


EXPECTED = {
    # person: (apps seen, apps used)
    "direct": ({"notes", "report"}, {"notes", "report"}),
    "member": ({"notes", "report"}, {"notes", "report"}),
    "deep": ({"notes", "report"}, {"notes", "report"}),
    "supporter": ({"guide"}, set()),
    "outsider": (set(), set()),
    "expired": (set(), set()),
    "root": ({"notes", "report", "guide", "ops"}, {"notes", "report", "guide", "ops"}),
}


@pytest.mark.parametrize("person", sorted(EXPECTED))
def test_each_of_the_cast_sees_and_uses_exactly_what_the_rules_give(world, person):
    people, apps, _ = world
    user = people[person]
    seen, used = EXPECTED[person]
    assert set(apps_for(user, Action.SEE).values_list("slug", flat=True)) == seen
    assert set(apps_for(user, Action.USE).values_list("slug", flat=True)) == used
    for slug, app in apps.items():
        assert can(user, Action.SEE, app) is (slug in seen)
        assert can(user, Action.USE, app) is (slug in used)
        assert user.has_perm("agents.see_app", app) is (slug in seen)
        assert user.has_perm("agents.use_app", app) is (slug in used)


@pytest.mark.parametrize("person", sorted(EXPECTED))
def test_the_store_lists_what_each_sees_with_whether_they_may_start_it(world, api_as, person):
    people, _, _ = world
    seen, used = EXPECTED[person]
    body = api_as(people[person]).get("/api/apps/").json()
    assert {app["slug"]: app["usable"] for app in body["results"]} == {slug: slug in used for slug in seen}


@pytest.mark.parametrize("person", sorted(EXPECTED))
def test_run_start_is_404_for_what_one_may_not_see_and_403_for_what_one_may_only_see(world, api_as, person):
    people, apps, _ = world
    seen, used = EXPECTED[person]
    client = api_as(people[person])
    missing = client.post("/api/runs/", {"app": "no-such-app"}, format="json")
    assert missing.status_code == 404
    for slug in apps:
        response = client.post("/api/runs/", {"app": slug}, format="json")
        if slug in used:
            assert response.status_code == 201, response.content
        elif slug in seen:
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "app_not_usable"
        else:
            assert response.status_code == 404
            assert response.json() == missing.json()  # nothing tells an invisible app from a missing one


@pytest.mark.parametrize("person", sorted(EXPECTED))
def test_an_app_one_may_not_see_is_the_same_404_as_a_missing_one(world, api_as, person):
    people, apps, _ = world
    seen, _ = EXPECTED[person]
    client = api_as(people[person])
    missing = client.get("/api/apps/no-such-app/")
    assert missing.status_code == 404
    for slug in apps:
        response = client.get(f"/api/apps/{slug}/")
        if slug in seen:
            assert response.status_code == 200
            assert response.json()["slug"] == slug
        else:
            assert (response.status_code, response.json()) == (404, missing.json())
        icon = client.get(f"/api/apps/{slug}/icon")  # none uploaded: a 404 either way, the same body
        assert (icon.status_code, icon.json()) == (404, missing.json())


def test_a_search_or_a_filter_never_reveals_an_invisible_app(world, api_as):
    people, _, _ = world
    client = api_as(people["supporter"])
    for query in ["?q=ops", "?q=notes", "?category=", "?q=o"]:
        slugs = {app["slug"] for app in client.get(f"/api/apps/{query}").json()["results"]}
        assert slugs <= {"guide"}
    runs = client.get("/api/runs/?app=notes")
    assert runs.status_code == 200
    assert runs.json()["results"] == []


def test_moving_a_department_moves_its_subtree_s_access(world):
    people, apps, departments = world
    assert can(people["deep"], Action.USE, apps["notes"])
    departments["ml"].parent = departments["support"]
    departments["ml"].save()
    assert not can(people["deep"], Action.USE, apps["notes"])
    assert not can(people["deep"], Action.SEE, apps["guide"])  # support's binding has no descendants
    departments["ml"].parent = departments["research"]
    departments["ml"].save()
    assert can(people["deep"], Action.USE, apps["notes"])


def test_a_binding_without_descendants_reaches_only_the_department_s_own_members(world):
    people, apps, departments = world
    role = RoleFactory(slug="acme-wide")
    AppGrantFactory(role=role, action=Action.USE, app=apps["ops"])
    RoleBindingFactory(role=role, department=departments["acme"])
    assert not can(people["member"], Action.USE, apps["ops"])
    departments["acme"].members.add(people["outsider"])
    assert can(people["outsider"], Action.USE, apps["ops"])


def test_a_grant_on_every_app_reaches_apps_made_later(world):
    people, _, _ = world
    grant(people["outsider"], Action.SEE)
    later = AppFactory(slug="later")
    assert can(people["outsider"], Action.SEE, later)
    assert not can(people["outsider"], Action.USE, later)


def test_any_grant_implies_see_and_use_does_not_imply_prompt_edit(world):
    people, apps, _ = world
    grant(people["outsider"], Action.PROMPT_EDIT, apps["ops"])
    assert actions_on(people["outsider"], apps["ops"]) == {Action.SEE, Action.PROMPT_EDIT}
    assert actions_on(people["member"], apps["notes"]) == {Action.SEE, Action.USE}
    assert actions_on(people["root"], apps["ops"]) == set(Action.values)


def test_a_binding_that_expires_stops_counting_at_once(world):
    people, apps, _ = world
    binding = RoleBindingFactory(
        role=RoleFactory(slug="temp"), user=people["outsider"], expires_at=timezone.now() + timedelta(hours=1)
    )
    AppGrantFactory(role=binding.role, action=Action.USE, app=apps["ops"])
    assert can(people["outsider"], Action.USE, apps["ops"])
    binding.expires_at = timezone.now() - timedelta(seconds=1)
    binding.save()
    assert not can(people["outsider"], Action.USE, apps["ops"])


def test_a_disabled_app_is_invisible_except_to_superusers(world, api_as):
    people, apps, _ = world
    apps["notes"].enabled = False
    apps["notes"].save()
    assert not can(people["member"], Action.SEE, apps["notes"])
    assert api_as(people["member"]).get("/api/apps/notes/").status_code == 404
    body = api_as(people["root"]).get("/api/apps/notes/").json()
    assert (body["enabled"], body["usable"]) == (False, False)
    refused = api_as(people["root"]).post("/api/runs/", {"app": "notes"}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "app_disabled")


def test_an_inactive_user_may_do_nothing(world):
    people, apps, _ = world
    people["member"].is_active = False
    people["member"].save()
    assert not apps_for(people["member"], Action.SEE).exists()
    assert not people["member"].has_perm("agents.see_app", apps["notes"])


def test_the_tree_s_depth_does_not_change_the_number_of_queries(db, django_assert_num_queries):
    shallow, deep = UserFactory(username="shallow"), UserFactory(username="deep")
    app = AppFactory(slug="deep-app")
    parent = top = DepartmentFactory(slug="d-0")
    for depth in range(1, 30):
        parent = DepartmentFactory(slug=f"d-{depth}", parent=parent)
    parent.members.add(deep)
    top.members.add(shallow)
    grant(top, Action.USE, app, include_descendants=True)
    for user in (shallow, deep):
        with django_assert_num_queries(1):
            assert can(user, Action.USE, app)


def test_can_and_apps_for_agree_for_every_person_app_and_action(world):
    """``can`` is the run start's written-out statement; ``apps_for`` the ORM's: one rule, two spellings."""
    people, apps, departments = world
    editors = RoleFactory(slug="editors")
    AppGrantFactory(role=editors, action=Action.PROMPT_EDIT, app=apps["guide"])
    AppGrantFactory(role=editors, action=Action.RUN_VIEW_ALL)
    RoleBindingFactory(role=editors, department=departments["acme"], include_descendants=True)
    grant(people["supporter"], Action.CONFIGURE, apps["ops"])
    apps["report"].enabled = False
    apps["report"].save()
    for user in people.values():
        for action in Action.values:
            by_can = {slug for slug, app in apps.items() if can(user, action, app)}
            by_query = set(apps_for(user, action).values_list("slug", flat=True))
            assert by_can == by_query, (user.username, action)
