from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import User
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from core.errors import DomainError

DEMO_ADMIN_PASSWORD = "admin"  # printed by `make demo`; refused with DEBUG off unless explicitly allowed


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


def user_ensure(
    *, username: str, password: str, email: str = "", superuser: bool = False
) -> tuple[User, bool]:
    """The user ``username``, created with ``password`` if missing; returns (user, created).

    An existing user is left exactly as it is (its password included): seeding twice changes nothing.
    """
    model = get_user_model()
    existing = model.objects.filter(username=username).first()
    if existing is not None:
        return existing, False
    create = model.objects.create_superuser if superuser else model.objects.create_user
    return create(username=username, email=email, password=password), True


class DemoPasswordRefused(Exception):
    """A password printed in the README was about to protect an account on a server with DEBUG off."""


def demo_passwords_allowed(*, allow: bool) -> None:
    """Raise ``DemoPasswordRefused`` unless DEBUG is on or the operator explicitly allowed demo passwords."""
    if not settings.DEBUG and not allow:
        raise DemoPasswordRefused(
            "refusing a demo password with DEBUG off: pass a real password, or allow demo passwords"
        )
