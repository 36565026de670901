from django.conf import settings

from agents.models import DEFAULT_EXECUTOR_NAME, Executor
from agents.services import executor_sync_default


def default_executor() -> Executor | None:
    """The executor runs go to unless their app names another; None when there is none (or it is disabled).

    With ``EXECUTOR_URL`` set, the row named "default" mirrors the ``EXECUTOR_*`` settings (a deployment
    connects to its executor with no admin step); without it, the row is whatever an admin made it.
    """
    if settings.EXECUTOR_URL:
        executor = executor_sync_default()
        return executor if executor.enabled else None
    return Executor.objects.filter(name=DEFAULT_EXECUTOR_NAME, enabled=True).first()
