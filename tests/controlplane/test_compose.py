"""The compose file only runs commands that exist and passes only settings that settings.py reads."""

import importlib
import importlib.util
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

from executor.config import ENVIRONMENT_VARIABLES as EXECUTOR_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OURS = {name: svc for name, svc in COMPOSE["services"].items() if svc.get("build")}


def test_our_image_runs_the_expected_services():
    assert {"migrate", "web", "worker", "executor"} <= set(OURS)


def _check_command(command: list[str]) -> None:
    program, *args = command
    if program == "python" and args[0] == "manage.py":
        assert args[1] in get_commands(), f"no management command {args[1]!r}"
    elif program == "python" and args[0] == "-m":
        module = importlib.import_module(args[1])
        if hasattr(module, "__path__"):  # a package runs its __main__
            assert importlib.util.find_spec(f"{args[1]}.__main__"), f"{args[1]} has no __main__"
    elif program in {"gunicorn", "uvicorn"}:
        module, _, attr = args[0].partition(":")
        assert hasattr(importlib.import_module(module), attr)
        if "-k" in args:
            worker_module, _, worker_class = args[args.index("-k") + 1].rpartition(".")
            assert hasattr(importlib.import_module(worker_module), worker_class)
    else:
        pytest.fail(f"unexpected program {program!r}")


@pytest.mark.parametrize("service", sorted(OURS))
def test_service_command_exists(service):
    _check_command(OURS[service]["command"])


def _variables_read_by(service: str) -> frozenset[str]:
    """The reference executor reads its own variables (executor/config.py); everything else is Django."""
    if OURS[service]["command"][:3] == ["python", "-m", "executor"]:
        return EXECUTOR_VARIABLES
    return settings.ENVIRONMENT_VARIABLES


@pytest.mark.parametrize("service", sorted(OURS))
def test_service_environment_is_read_by_settings(service):
    passed = set(OURS[service].get("environment", {}))
    unknown = passed - _variables_read_by(service)
    assert not unknown, f"{service} sets variables its program never reads: {sorted(unknown)}"


def test_env_file_sets_only_variables_some_service_reads():
    # .env goes to every service (env_file), so each process ignores the others' variables.
    env_file = ROOT / ".env.example"
    passed = {
        line.split("=", 1)[0]
        for line in env_file.read_text().splitlines()
        if line and not line.startswith("#")
    }
    passed -= {"POSTGRES_PASSWORD"}  # interpolated into DATABASE_URL by compose, not passed to us
    unknown = passed - settings.ENVIRONMENT_VARIABLES - EXECUTOR_VARIABLES
    assert not unknown, f".env.example sets variables nothing reads: {sorted(unknown)}"
