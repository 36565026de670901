from django.conf import settings

from agents.models import DEFAULT_EXECUTOR_NAME, Executor

TOKEN_REQUIRED_FOR_NEW_URL = (
    "Changing the URL requires entering the token again (or clearing it): the stored token is sent to "
    "whatever the URL points at."
)


class ExecutorTokenRequired(ValueError):
    """An executor's URL was to change while its stored token stayed: the token would go to the new host."""


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
    """The executor ``name``, created with ``wanted`` or updated to it (only the fields that differ).

    A new ``base_url`` for a row that holds a token needs the token in ``wanted`` too
    (``ExecutorTokenRequired`` otherwise): the stored one must not follow the URL to another host.
    """
    executor, created = Executor.objects.get_or_create(name=name, defaults=wanted)
    changed = [field for field, value in wanted.items() if getattr(executor, field) != value]
    if not created and "base_url" in changed and executor.token and "token" not in wanted:
        raise ExecutorTokenRequired(TOKEN_REQUIRED_FOR_NEW_URL)
    if not created and changed:
        for field in changed:
            setattr(executor, field, wanted[field])
        executor.save(update_fields=[*changed, "updated_at"])
    return executor
