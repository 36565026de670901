from django.contrib.auth import authenticate
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from controlplane.errors import DomainError


class InvalidCredentials(DomainError):
    status = 400
    code = "invalid_credentials"
    message = "Unable to sign in with the given username and password."


def token_issue(*, request: HttpRequest, username: str, password: str) -> Token:
    """The API token of the user with these credentials (created on first use)."""
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    token, _ = Token.objects.get_or_create(user=user)
    return token
