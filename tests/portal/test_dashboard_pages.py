"""The operators' pages exist only for staff and holders of a ``dashboard.view`` grant: anyone else signed
in gets the portal's 404 page and no navigation entry; nobody signed out gets past the sign-in page."""

from __future__ import annotations

import pytest

from observability.models import OperatorAction, OperatorGrant
from tests.factories import RoleBindingFactory, RoleFactory, UserFactory

TRACE = "0af7651916cd43dd8448eb211c80319c"
PAGES = ["/dashboard/", "/dashboard/traces/", f"/dashboard/traces/{TRACE}"]


@pytest.fixture
def operator(db):
    """Not staff: an operator by a role's dashboard.view grant."""
    user = UserFactory(username="operator")
    role = RoleFactory(slug="operators")
    RoleBindingFactory(role=role, user=user)
    OperatorGrant.objects.create(role=role, action=OperatorAction.DASHBOARD_VIEW)
    return user


@pytest.mark.parametrize("path", PAGES)
def test_an_operator_by_grant_opens_the_page_with_its_script(client, operator, path):
    client.force_login(operator)
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-nav="dashboard"' in html
    assert 'aria-current="page" data-nav="dashboard"' in html
    script = "trace.js" if TRACE in path else "traces.js" if "traces" in path else "dashboard.js"
    assert f"/static/portal/js/{script}" in html


@pytest.mark.parametrize("path", PAGES)
def test_staff_open_the_page(client, db, path):
    client.force_login(UserFactory(username="staff", is_staff=True))
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", PAGES)
def test_anyone_else_gets_the_portals_not_found_page(client, member, path):
    client.force_login(member)
    response = client.get(path)
    assert response.status_code == 404
    assert "portal/not_found.html" in [template.name for template in response.templates]


def test_a_grant_on_a_role_not_held_opens_nothing(client, member):
    OperatorGrant.objects.create(role=RoleFactory(slug="operators"), action=OperatorAction.DASHBOARD_VIEW)
    client.force_login(member)
    assert client.get("/dashboard/").status_code == 404
    assert 'data-nav="dashboard"' not in client.get("/portal/").content.decode()


@pytest.mark.parametrize("path", PAGES)
def test_signed_out_is_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_nav_entry_is_only_for_operators(client, member, operator):
    client.force_login(member)
    assert 'data-nav="dashboard"' not in client.get("/portal/").content.decode()
    client.force_login(operator)
    assert 'data-nav="dashboard"' in client.get("/portal/").content.decode()


@pytest.mark.parametrize("trace", ["0AF7651916CD43DD8448EB211C80319C", "0af7651916cd43dd", "not-a-trace-id"])
def test_a_malformed_trace_id_is_not_a_page(client, operator, trace):
    client.force_login(operator)
    assert client.get(f"/dashboard/traces/{trace}").status_code == 404


def test_the_trace_page_hands_its_id_to_the_script(client, operator):
    client.force_login(operator)
    html = client.get(f"/dashboard/traces/{TRACE}").content.decode()
    assert f'<script id="page-data" type="application/json">{{"trace": "{TRACE}"}}</script>' in html
