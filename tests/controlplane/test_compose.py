"""The compose file only runs commands that exist and passes only settings that settings.py reads."""

import importlib
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OURS = {name: svc for name, svc in COMPOSE["services"].items() if svc.get("build")}


def test_our_image_runs_the_expected_services():
    assert {"migrate", "web", "worker"} <= set(OURS)


def _check_command(command: list[str]) -> None:
    program, *args = command
    if program == "python" and args[0] == "manage.py":
        assert args[1] in get_commands(), f"no management command {args[1]!r}"
    elif program == "python" and args[0] == "-m":
        importlib.import_module(args[1])
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


@pytest.mark.parametrize("service", sorted(OURS))
def test_service_environment_is_read_by_settings(service):
    passed = set(OURS[service].get("environment", {}))
    env_file = ROOT / ".env.example"
    passed |= {
        line.split("=", 1)[0]
        for line in env_file.read_text().splitlines()
        if line and not line.startswith("#")
    }
    passed -= {"POSTGRES_PASSWORD"}  # interpolated into DATABASE_URL by compose, not passed to us
    unknown = passed - settings.ENVIRONMENT_VARIABLES
    assert not unknown, f"{service} sets variables settings.py never reads: {sorted(unknown)}"
