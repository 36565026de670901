from django.conf import settings

from agents.models import DEFAULT_EXECUTOR_NAME, Executor


def _settings_fields() -> dict[str, object]:
    return {
        "base_url": settings.EXECUTOR_URL,
        "token": settings.EXECUTOR_TOKEN,
        "connect_timeout_s": settings.EXECUTOR_CONNECT_TIMEOUT_S,
        "read_timeout_s": settings.EXECUTOR_TIMEOUT_S,
        "retries": settings.EXECUTOR_RETRIES,
    }


def executor_sync_default() -> Executor:
    """The executor named "default", created or brought in line with the ``EXECUTOR_*`` settings.

    Writes only when something differs, so calling it per run costs one query. ``enabled`` is left alone:
    an admin who disables the default executor in an emergency is not overruled by the next call. Two
    processes racing here write the same values, so no lock is needed.
    """
    return executor_sync(name=DEFAULT_EXECUTOR_NAME, wanted=_settings_fields())


def executor_sync(*, name: str, wanted: dict[str, object]) -> Executor:
    """The executor ``name``, created with ``wanted`` or updated to it (only the fields that differ)."""
    executor, created = Executor.objects.get_or_create(name=name, defaults=wanted)
    changed = [field for field, value in wanted.items() if getattr(executor, field) != value]
    if not created and changed:
        for field in changed:
            setattr(executor, field, wanted[field])
        executor.save(update_fields=[*changed, "updated_at"])
    return executor
