"""Who works in which project: members of its department and of every department below it; making one."""

import pytest

from agents.models import Project
from agents.projects import project_for, projects_for
from core.errors import NotFound
from tests.factories import DepartmentFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tree(department):
    """research (owner, member) > lab > bench (a bench worker); elsewhere: another department."""
    lab = DepartmentFactory(slug="lab", parent=department)
    bench = DepartmentFactory(slug="bench", parent=lab, members=[UserFactory(username="bench-worker")])
    DepartmentFactory(slug="elsewhere", members=[UserFactory(username="elsewhere-worker")])
    return department, lab, bench


def usernames_working_in(project):
    from django.contrib.auth import get_user_model

    return sorted(
        user.username for user in get_user_model().objects.all() if projects_for(user).filter(pk=project.pk)
    )


def test_members_of_the_department_and_of_those_below_it_work_in_its_project(tree, superuser, outsider):
    research, lab, _ = tree
    top = ProjectFactory(slug="top", department=research)
    middle = ProjectFactory(slug="middle", department=lab)
    assert usernames_working_in(top) == ["bench-worker", "member", "owner", "root"]
    assert usernames_working_in(middle) == ["bench-worker", "root"]


def test_a_project_outside_my_departments_is_the_404_of_a_missing_one(tree, outsider, member):
    ProjectFactory(slug="top", department=tree[0])
    with pytest.raises(NotFound) as hidden:
        project_for(user=outsider, slug="top")
    with pytest.raises(NotFound) as missing:
        project_for(user=member, slug="no-such-project")
    assert hidden.value.code == missing.value.code == "project_not_found"
    assert project_for(user=member, slug="top").slug == "top"


def test_the_projects_of_a_user_deep_in_the_tree_are_one_statement(tree, django_assert_num_queries):
    from django.contrib.auth import get_user_model

    ProjectFactory(slug="top", department=tree[0])
    ProjectFactory(slug="bottom", department=tree[2])
    worker = get_user_model().objects.get(username="bench-worker")
    with django_assert_num_queries(1):
        assert sorted(p.slug for p in projects_for(worker)) == ["bottom", "top"]


def test_the_api_lists_only_my_projects_in_pages(api_as, tree, member, outsider):
    ProjectFactory(slug="top", name="Top", department=tree[0])
    ProjectFactory(slug="bottom", name="Bottom", department=tree[2])
    body = api_as(member).get("/api/projects/").json()
    assert [p["slug"] for p in body["results"]] == ["top"]
    assert body["results"][0]["department"] == "research"
    assert api_as(outsider).get("/api/projects/").json()["results"] == []


def test_a_member_makes_a_project_of_their_department_or_of_one_below(api_as, tree, member):
    api = api_as(member)
    made = api.post("/api/projects/", {"slug": "p1", "name": "P1", "department": "research"})
    assert made.status_code == 201, made.content
    assert made.json()["department"] == "research"
    below = api.post("/api/projects/", {"slug": "p2", "name": "P2", "department": "bench"})
    assert below.status_code == 201, below.content
    assert Project.objects.get(slug="p1").created_by == member


def test_a_project_of_someone_elses_department_is_refused(api_as, tree, outsider, member):
    response = api_as(outsider).post("/api/projects/", {"slug": "p1", "name": "P1", "department": "research"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_in_department"
    above = api_as(member).post("/api/projects/", {"slug": "p2", "name": "P2", "department": "elsewhere"})
    assert above.status_code == 403
    assert not Project.objects.exists()


def test_a_superuser_makes_a_project_of_any_department(api_as, tree, superuser):
    response = api_as(superuser).post("/api/projects/", {"slug": "p1", "name": "P1", "department": "bench"})
    assert response.status_code == 201


def test_a_taken_slug_is_a_conflict_and_an_unknown_department_names_the_field(api_as, tree, member):
    api = api_as(member)
    ProjectFactory(slug="taken", department=tree[0])
    taken = api.post("/api/projects/", {"slug": "taken", "name": "T", "department": "research"})
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "project_exists")
    unknown = api.post("/api/projects/", {"slug": "new", "name": "N", "department": "nowhere"})
    assert unknown.status_code == 400
    assert "department" in unknown.json()["error"]["detail"]
    bad_slug = api.post("/api/projects/", {"slug": "not a slug", "name": "N", "department": "research"})
    assert "slug" in bad_slug.json()["error"]["detail"]
