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
    assert {"migrate", "web", "worker", "reconciler", "executor"} <= set(OURS)


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


PUSHPIN = COMPOSE["services"]["pushpin"]


def _mounts(service: dict) -> dict[str, Path]:
    """Bind mounts of a service: container path -> file in this repository."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = ROOT / source
    return mounts


def test_pushpin_is_an_optional_profile_in_front_of_web():
    assert PUSHPIN["profiles"] == ["pushpin"]
    assert PUSHPIN["image"].split(":")[0] == "fanout/pushpin"
    assert "web" in PUSHPIN["depends_on"]
    assert "5561" in [str(port) for port in PUSHPIN["expose"]]  # GRIP control, where GRIP_URL points


def test_pushpin_config_is_mounted_from_the_repository_and_routes_to_web():
    mounts = _mounts(PUSHPIN)
    assert set(mounts) == {"/etc/pushpin/routes"}
    for path in mounts.values():
        assert path.is_file(), f"{path} is mounted into pushpin but missing from the repository"
    routes = [line.split() for line in mounts["/etc/pushpin/routes"].read_text().splitlines() if line.strip()]
    assert routes == [["*", "web:8000"]]


@pytest.mark.parametrize("service", ["web", "worker"])
def test_event_publishers_get_grip_url_and_env_example_points_it_at_pushpin(service):
    assert OURS[service]["environment"]["GRIP_URL"] == "${GRIP_URL:-}"  # off unless .env turns it on
    assert "# GRIP_URL=http://pushpin:5561" in (ROOT / ".env.example").read_text().splitlines()
    assert "GRIP_URL" in settings.ENVIRONMENT_VARIABLES


def test_the_image_copies_every_package_and_the_translations():
    """A package left out of the Dockerfile would import in tests and fail in production."""
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    copied = set(re.findall(r"^COPY (\S+) ", (root / "Dockerfile").read_text(), flags=re.M))
    packages = {
        name.rstrip("*")
        for name in tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
            "find"
        ]["include"]
    }
    assert packages | {"templates", "static", "locale"} <= copied
