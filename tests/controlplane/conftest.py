import pytest


@pytest.fixture(autouse=True)
def _runs_not_access(every_user_may_use_every_app):
    """These tests are about runs, not access: every user they make may start runs of every app."""
