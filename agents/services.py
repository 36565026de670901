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
    wanted = _settings_fields()
    executor, created = Executor.objects.get_or_create(name=DEFAULT_EXECUTOR_NAME, defaults=wanted)
    changed = [name for name, value in wanted.items() if getattr(executor, name) != value]
    if not created and changed:
        for name in changed:
            setattr(executor, name, wanted[name])
        executor.save(update_fields=[*changed, "updated_at"])
    return executor
