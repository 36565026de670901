import pytest

from tests.executor_support import ExecutorProcess, executor_fixture

executor_server = pytest.fixture(scope="session")(executor_fixture)


@pytest.fixture
def executor(executor_server: ExecutorProcess):
    """The shared executor process; after the test, its faults are cleared and the test's clients closed."""
    yield executor_server
    executor_server.reset()


@pytest.fixture(autouse=True)
def _runs_not_access(every_user_may_use_every_app):
    """These tests are about runs, not access: every user they make may start runs of every app."""


@pytest.fixture
def hub(monkeypatch):
    """A fresh live hub for the test (runs.live)."""
    from runs import live

    fresh = live.LiveHub()
    monkeypatch.setattr(live, "_hub", fresh)
    return fresh


@pytest.fixture
def local(settings, hub):
    """No Redis: publishing hands batches and hints to this process's hub (as in standalone mode)."""
    if hasattr(settings, "EVENTSTREAM_REDIS"):
        del settings.EVENTSTREAM_REDIS
    return hub
