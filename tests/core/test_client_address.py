"""The client a throttle counts: its connection's address, or what trusted proxies forwarded for it
(core.throttling.client_address); and the sign-in budget that the token endpoint and the admin share."""

import pytest
from django.core.cache import cache
from django.test import RequestFactory

from core.throttling import client_address
from tests.factories import PASSWORD, UserFactory


@pytest.fixture(autouse=True)
def _fresh_counters(throttle_clock, cheap_password_hashing):
    cache.clear()
    yield
    cache.clear()


def address(remote: str, forwarded: str | None = None) -> str:
    headers = {} if forwarded is None else {"HTTP_X_FORWARDED_FOR": forwarded}
    return client_address(RequestFactory().get("/", REMOTE_ADDR=remote, **headers))


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.TRUSTED_PROXIES = []
    assert address("198.51.100.9", "203.0.113.1") == "198.51.100.9"


def test_a_trusted_proxy_s_forwarded_address_is_the_client_and_what_the_client_wrote_is_not(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "192.0.2.1"]
    assert address("10.1.2.3", "203.0.113.1") == "203.0.113.1"
    # The client wrote the first entry; the trusted proxies appended the rest.
    assert address("10.1.2.3", "1.1.1.1, 203.0.113.1, 192.0.2.1") == "203.0.113.1"
    assert address("10.1.2.3", "garbage, 10.9.9.9") == "10.9.9.9"
    assert address("10.1.2.3") == "10.1.2.3"


def test_a_client_connecting_directly_cannot_claim_another_address(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert address("198.51.100.9", "10.0.0.1") == "198.51.100.9"


def test_ipv6_proxies_and_clients(settings):
    settings.TRUSTED_PROXIES = ["fd00::/8"]
    assert address("fd00::1", "2001:db8::7") == "2001:db8::7"


def token(api, forwarded=None, remote="198.51.100.9"):
    extra = {"REMOTE_ADDR": remote}
    if forwarded:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return api.post("/api/auth/token/", {"username": "nobody", "password": "wrong"}, format="json", **extra)


def test_rotating_x_forwarded_for_does_not_reset_the_sign_in_budget(db, api, settings):
    settings.TRUSTED_PROXIES = []
    statuses = [token(api, forwarded=f"203.0.113.{n}").status_code for n in range(12)]
    assert statuses[:10] == [400] * 10
    refused = token(api, forwarded="203.0.113.200")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert 0 < int(refused["Retry-After"]) <= 60
    assert token(api, remote="198.51.100.10").status_code == 400  # another machine has its own budget


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(db, api, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    for _ in range(10):
        token(api, forwarded="203.0.113.1", remote="10.0.0.2")
    assert token(api, forwarded="9.9.9.9, 203.0.113.1", remote="10.0.0.2").status_code == 429
    assert token(api, forwarded="203.0.113.2", remote="10.0.0.2").status_code == 400


def admin_sign_in(client, password="wrong", forwarded=None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": password},
        REMOTE_ADDR="198.51.100.9",
        **extra,
    )


def test_the_admin_sign_in_is_throttled_with_a_plain_page_and_shares_the_token_endpoint_s_budget(
    db, client, api, settings
):
    settings.TRUSTED_PROXIES = []
    UserFactory(username="root", is_staff=True, is_superuser=True)
    for n in range(5):
        assert admin_sign_in(client, forwarded=f"203.0.113.{n}").status_code == 200  # the form, again
    for _ in range(5):
        assert token(api).status_code == 400
    refused = admin_sign_in(client, password=PASSWORD)
    assert refused.status_code == 429
    assert refused["Content-Type"].startswith("text/html")
    assert b"Too many sign-in attempts" in refused.content
    assert 0 < int(refused["Retry-After"]) <= 60
    assert token(api).status_code == 429
    assert client.get("/admin/login/").status_code == 200  # showing the form costs nothing
