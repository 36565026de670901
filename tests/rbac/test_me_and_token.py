import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token

from tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def test_me_shows_the_signed_in_user_and_departments(api_as, member, department):
    body = api_as(member).get("/api/me/").json()
    assert body["username"] == "member"
    assert body["departments"] == ["research"]
    assert body["is_superuser"] is False


def test_token_exchange_then_token_authenticates(api, member):
    response = api.post("/api/auth/token/", {"username": "member", "password": PASSWORD})
    assert response.status_code == 200
    key = response.json()["token"]
    assert Token.objects.get(user=member).key == key
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/me/").json()["username"] == "member"


def test_token_exchange_is_stable_across_calls(api, member):
    first = api.post("/api/auth/token/", {"username": "member", "password": PASSWORD}).json()
    second = api.post("/api/auth/token/", {"username": "member", "password": PASSWORD}).json()
    assert first == second


def test_wrong_password_is_a_clear_400_and_creates_nothing(api, member):
    response = api.post("/api/auth/token/", {"username": "member", "password": "nope"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_credentials"
    assert not Token.objects.exists()


def test_inactive_user_gets_no_token(api, member):
    member.is_active = False
    member.save(update_fields=["is_active"])
    response = api.post("/api/auth/token/", {"username": "member", "password": PASSWORD})
    assert response.status_code == 400


def test_missing_fields_are_named(api, db):
    response = api.post("/api/auth/token/", {})
    assert response.status_code == 400
    assert set(response.json()["error"]["detail"]) == {"username", "password"}


def test_token_authentication_refuses_unknown_and_inactive_users_and_keeps_the_token(api, member):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from controlplane.authentication import TokenAuthentication

    token = Token.objects.create(user=member)
    with CaptureQueriesContext(connection) as queries:
        user, auth = TokenAuthentication().authenticate_credentials(token.key)
    assert len(queries) == 1
    assert (user.pk, user.username, auth.key, auth.user_id, auth.created) == (
        member.pk,
        member.username,
        token.key,
        member.pk,
        token.created,
    )
    api.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert api.get("/api/me/").json()["error"]["code"] == "authentication_failed"
    member.is_active = False
    member.save()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = api.get("/api/me/")
    assert response.status_code == 401
    assert "inactive" in response.json()["error"]["message"]
