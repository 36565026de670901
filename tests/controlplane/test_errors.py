"""Every API error, whatever raised it, has the shape {"error": {"code", "message", "detail"}}."""

import pytest
from django.core.cache import cache
from django.urls import include, path
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied

from core.errors import Conflict
from tests.factories import PASSWORD


class _Input(serializers.Serializer):
    count = serializers.IntegerField(min_value=1)


@api_view(["POST"])
def validating(request):
    _Input(data=request.data).is_valid(raise_exception=True)


@api_view(["GET"])
def forbidden(request):
    raise PermissionDenied()


@api_view(["POST"])
def conflicting(request):
    raise Conflict("A run is already active in this session.", detail={"run_id": "x"})


@api_view(["GET"])
def crashing(request):
    raise RuntimeError("boom")


handler404 = "controlplane.api.json_404"
handler500 = "controlplane.api.json_500"


def plain_django_crash(request):
    raise RuntimeError("boom")


urlpatterns = [
    path("api/t/plain-crash", plain_django_crash),
    path("api/t/validate", validating),
    path("api/t/forbidden", forbidden),
    path("api/t/conflict", conflicting),
    path("api/t/crash", crashing),
    path("", include("controlplane.urls")),
]


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "detail"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.urls(__name__)
class TestErrorShape:
    def test_validation_error_is_400_with_field_details(self, api_as, member):
        error = assert_error(api_as(member).post("/api/t/validate", {"count": 0}), 400, "invalid")
        assert "count" in error["detail"]

    def test_unauthenticated_is_401_with_challenge(self, api, db):
        response = api.get("/api/me/")
        assert_error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"] == "Token"

    def test_bad_token_is_401(self, api, db):
        api.credentials(HTTP_AUTHORIZATION="Token nope")
        assert_error(api.get("/api/me/"), 401, "authentication_failed")

    def test_forbidden_is_403(self, api_as, member):
        assert_error(api_as(member).get("/api/t/forbidden"), 403, "permission_denied")

    def test_unknown_api_path_is_json_404(self, api_as, member):
        assert_error(api_as(member).get("/api/no/such/thing"), 404, "not_found")

    def test_wrong_method_is_405(self, api_as, member):
        assert_error(api_as(member).delete("/api/me/"), 405, "method_not_allowed")

    def test_domain_conflict_is_409_with_detail(self, api_as, member):
        error = assert_error(api_as(member).post("/api/t/conflict"), 409, "conflict")
        assert error["detail"] == {"run_id": "x"}

    def test_unexpected_exception_is_json_500_carrying_the_request_id(self, api_as, member):
        response = api_as(member).get("/api/t/crash", HTTP_X_REQUEST_ID="req-500")
        error = assert_error(response, 500, "server_error")
        assert error["detail"] == {"request_id": "req-500"}
        assert "boom" not in response.content.decode()

    def test_throttled_token_requests_are_429_with_retry_after(
        self, cheap_password_hashing, api, member, throttle_clock
    ):
        cache.clear()
        for _ in range(10):
            api.post("/api/auth/token/", {"username": "member", "password": "wrong"})
        response = api.post("/api/auth/token/", {"username": "member", "password": PASSWORD})
        error = assert_error(response, 429, "throttled")
        assert int(response["Retry-After"]) > 0
        assert error["detail"]["retry_after"] > 0
        cache.clear()


@pytest.mark.urls(__name__)
def test_crash_outside_drf_under_api_is_json_500(client, db):
    client.raise_request_exception = False
    response = client.get("/api/t/plain-crash", HTTP_X_REQUEST_ID="plain-1")
    assert assert_error(response, 500, "server_error")["detail"] == {"request_id": "plain-1"}


def test_non_api_404_stays_html(client, db):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")
