"""API tokens are never rendered in clear by the admin: lists, change and delete pages, its log, repr."""

import pytest
from django.contrib.admin.models import LogEntry
from rest_framework.authtoken.models import Token, TokenProxy

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKENS = "/admin/authtoken/tokenproxy/"


@pytest.fixture
def token():
    return Token.objects.create(user=UserFactory(username="holder"))


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def assert_page_hides(client, url, token):
    page = client.get(url)
    assert page.status_code == 200, url
    assert token.key not in page.content.decode(), url
    return page.content.decode()


def test_the_token_list_shows_whose_token_it_is_but_not_the_key(admin_client, token):
    html = assert_page_hides(admin_client, TOKENS, token)
    assert "holder" in html


def test_the_change_and_delete_pages_of_a_token_do_not_show_its_key(admin_client, token):
    assert_page_hides(admin_client, f"{TOKENS}{token.user_id}/change/", token)
    assert_page_hides(admin_client, f"{TOKENS}{token.user_id}/delete/", token)


def test_deleting_a_user_lists_their_token_without_its_key(admin_client, token):
    html = assert_page_hides(admin_client, f"/admin/auth/user/{token.user_id}/delete/", token)
    assert "API token of user" in html


def test_revoking_a_token_in_the_admin_logs_no_key(admin_client, token):
    response = admin_client.post(f"{TOKENS}{token.user_id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Token.objects.filter(key=token.key).exists()
    assert token.key not in admin_client.get(response.url).content.decode()  # the success message
    assert LogEntry.objects.count() == 1
    assert token.key not in LogEntry.objects.get().object_repr


def test_str_and_repr_of_a_token_do_not_contain_its_key(token):
    proxy = TokenProxy.objects.get(key=token.key)
    for text in [str(token), repr(token), str(proxy), repr(proxy)]:
        assert token.key not in text
    assert str(token) == f"API token of user #{token.user_id}"
