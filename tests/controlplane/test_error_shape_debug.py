"""Under /api/ every error is the one JSON shape whatever DEBUG says (controlplane.middleware and the
last /api/ route); outside /api/, Django's pages stay."""

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path
from django.views.decorators.http import require_GET

from tests.controlplane.test_errors import assert_error


def plain_crash(request):
    raise RuntimeError("boom")


@require_GET
def plain_get_only(request):
    return HttpResponse("ok")


urlpatterns = [
    path("api/t/plain-crash", plain_crash),
    path("api/t/get-only", plain_get_only),
    path("", include("controlplane.urls")),
]


@pytest.fixture(params=[True, False], ids=["debug", "no-debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def client(db):
    return Client(raise_request_exception=False)


@pytest.mark.urls(__name__)
class TestUnderApi:
    @pytest.mark.parametrize("url", ["/api/nope", "/api/nope/", "/api/runs/not-a-uuid/", "/api/"])
    def test_an_unknown_path_is_a_json_404(self, client, debug, url):
        assert_error(client.get(url), 404, "not_found")

    def test_a_missing_slash_is_a_json_404_naming_the_right_path(self, client, debug):
        for method in ("get", "post"):
            error = assert_error(getattr(client, method)("/api/runs"), 404, "not_found")
            assert error["detail"] == {"hint": "Did you mean /api/runs/ ?"}

    def test_a_crash_in_a_plain_view_is_a_json_500_with_the_request_id(self, client, debug):
        response = client.get("/api/t/plain-crash")
        error = assert_error(response, 500, "server_error")
        assert error["detail"]["request_id"] == response["X-Request-ID"]

    def test_a_wrong_method_on_a_plain_view_is_a_json_405_with_allow(self, client, debug):
        response = client.post("/api/t/get-only")
        assert_error(response, 405, "method_not_allowed")
        assert response["Allow"] == "GET"

    def test_a_bad_host_is_a_json_400(self, client, debug):
        assert_error(client.get("/api/me/", HTTP_HOST="evil.example"), 400, "bad_request")

    def test_a_nul_in_a_query_parameter_is_a_400_naming_it(self, client, debug):
        error = assert_error(client.get("/api/runs/", {"status": "a\x00"}), 400, "invalid")
        assert "status" in error["detail"]

    def test_a_session_cookie_with_a_nul_is_ignored(self, client, debug):
        cookie = 'sessionid="\\000abcdefghij"'  # an octal escape: Django's cookie parser makes it a NUL
        assert_error(client.get("/api/me/", HTTP_COOKIE=cookie), 401, "not_authenticated")


@pytest.mark.urls(__name__)
def test_outside_api_django_pages_stay(client, settings):
    settings.DEBUG = True
    response = client.get("/nope")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_post_asking_for_html_with_an_unparsable_body_is_json_not_a_500(db):
    from rest_framework.test import APIClient

    from tests.factories import AppFactory, UserFactory

    AppFactory(slug="html-asker", playbook="instant")
    client = APIClient()
    client.force_authenticate(user=UserFactory(username="html-asker"))
    run_id = client.post("/api/runs/", {"app": "html-asker"}, format="json").json()["id"]
    response = client.generic(
        "POST",
        f"/api/runs/{run_id}/cancel",
        b"\x00\x01",
        CONTENT_TYPE="application/octet-stream",
        HTTP_ACCEPT="text/html",
    )
    assert response.status_code < 500
    assert response["Content-Type"].startswith("application/json")
