from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agents.plugins import registry, tokens
from runs.models import RunStatus
from tests.factories import AppFactory, RunFactory
from tests.gateway.plugins import TEST_PLUGINS


@pytest.fixture
def enabled(settings, monkeypatch):
    """Enable plugins by name (the built-in ones and tests/gateway/plugins.py's), for this test only."""
    monkeypatch.setattr(registry, "BUILTIN", {**registry.BUILTIN, **TEST_PLUGINS})

    def enable(*names: str) -> None:
        settings.PLUGINS_ENABLED = list(names)
        registry.reset()

    yield enable
    registry.reset()


@pytest.fixture
def gateway_run(db, enabled):
    """A running run of an app declaring ``plugins``, and a token for them."""

    def make(*plugins: str, status: str = RunStatus.RUNNING, token_plugins=None):
        enabled("echo", *plugins)
        app = AppFactory(plugins=["echo", *plugins])
        run = RunFactory(app=app, status=status)
        names = ["echo", *plugins] if token_plugins is None else token_plugins
        token = tokens.mint(run_id=run.pk, plugins=names, expires_at=timezone.now() + timedelta(hours=1))
        return run, token

    return make


class GatewayClient:
    def __init__(self) -> None:
        self.client = Client()

    def call(self, run, plugin: str, arguments=None, *, token: str | None = "", body=None, **headers):
        extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
        if token:
            extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        data = body if body is not None else json.dumps({} if arguments is None else arguments)
        return self.client.post(
            f"/api/runs/{run.pk}/tools/{plugin}", data=data, content_type="application/json", **extra
        )


@pytest.fixture
def gateway():
    return GatewayClient()
