"""The cast every test can use: a superuser, an owner and a member of one department, and an outsider."""

import pytest
from rest_framework.test import APIClient

from tests.factories import DepartmentFactory, UserFactory


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


@pytest.fixture
def member(db):
    return UserFactory(username="member")


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def department(owner, member):
    return DepartmentFactory(name="Research", slug="research", members=[owner, member])


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def api_as(api):
    def sign_in(user):
        api.force_authenticate(user=user)
        return api

    return sign_in


@pytest.fixture
def throttle_clock(monkeypatch):
    """Throttles count in fixed windows: pin their clock mid-window so a test never straddles two."""
    from core.throttling import WindowedRateThrottle

    monkeypatch.setattr(WindowedRateThrottle, "timer", staticmethod(lambda: 1_800_000_030.0))


@pytest.fixture
def cheap_password_hashing(settings):
    """For tests that count failed sign-ins (throttles): each attempt hashes the password it was sent, even
    for a user who does not exist, and PBKDF2 takes half a second of CPU that proves nothing about the count.
    Users made after it get cheap hashes too (ask for it first); those made before (PBKDF2) still verify."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *settings.PASSWORD_HASHERS]


@pytest.fixture(autouse=True)
def _fresh_config_cache():
    """Apps and executors are cached per process (agents.selectors); a test's rows are rolled back without
    the signals that empty the cache, so every test starts with it empty."""
    from agents.selectors import config_cache_clear

    config_cache_clear()
    yield
    config_cache_clear()


@pytest.fixture
def every_user_may_use_every_app(monkeypatch):
    """For tests about runs rather than access: every user made by ``UserFactory`` (the cast included) may
    start runs of every app, through a role bound to them. Access itself is tested in tests/agents and
    tests/rbac without it."""
    from tests import factories

    monkeypatch.setitem(factories.EVERY_USER_MAY_USE_EVERY_APP, "on", True)


@pytest.fixture
def local_tracing(monkeypatch):
    """core.tracing's helpers on a tracer provider of the test's own (the global one can be set only once
    per process), exporting to the table through the SDK's batch processor, as in a traced process; call
    ``flush()`` before reading the spans. For transactional tests: the exporter writes on its own thread."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from core import tracing
    from observability.tracing import RunIds, TableSpanExporter

    provider = TracerProvider(id_generator=RunIds())
    exporter = TableSpanExporter("test@host:1")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=10))
    monkeypatch.setattr(tracing, "_tracer", lambda: provider.get_tracer("controlplane"))
    monkeypatch.setattr(tracing.state, "enabled", True)
    exporter.flush = lambda: provider.force_flush()
    yield exporter
    provider.shutdown()
