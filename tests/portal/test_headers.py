"""The Content-Security-Policy: pages may load only the project's own scripts, styles and images (no inline
script or style); API data may load nothing at all."""

from __future__ import annotations

PAGE_POLICY = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "frame-ancestors 'none'",
}


def directives(response) -> set[str]:
    return {part.strip() for part in response["Content-Security-Policy"].split(";")}


def test_a_portal_page_allows_only_the_projects_own_files(client, member):
    client.force_login(member)
    response = client.get("/portal/")
    assert response.status_code == 200
    assert directives(response) >= PAGE_POLICY
    assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_the_sign_in_page_has_the_page_policy(client):
    assert directives(client.get("/accounts/login/")) >= PAGE_POLICY


def test_api_data_may_load_nothing(api_as, member):
    response = api_as(member).get("/api/apps/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_an_api_error_may_load_nothing(client):
    response = client.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_api_docs_page_has_the_page_policy(client, member):
    client.force_login(member)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert directives(response) >= PAGE_POLICY
