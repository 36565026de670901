from django.conf import settings

from agents.models import DEFAULT_EXECUTOR_NAME, App, Executor
from agents.services import executor_sync_default
from controlplane.errors import NotFound, ServiceUnavailable


def default_executor() -> Executor | None:
    """The executor runs go to unless their app names another; None when there is none (or it is disabled).

    With ``EXECUTOR_URL`` set, the row named "default" mirrors the ``EXECUTOR_*`` settings (a deployment
    connects to its executor with no admin step); without it, the row is whatever an admin made it.
    """
    if settings.EXECUTOR_URL:
        executor = executor_sync_default()
        return executor if executor.enabled else None
    return Executor.objects.filter(name=DEFAULT_EXECUTOR_NAME, enabled=True).first()


def app_for_use(*, user, slug: str) -> App:
    """The enabled app ``slug`` if ``user`` may start runs of it; otherwise a 404 (RBAC narrows this)."""
    app = App.objects.select_related("executor").filter(slug=slug, enabled=True).first()
    if app is None or not user.is_authenticated:
        raise NotFound("No such app.", code="app_not_found")
    return app


def executor_for_app(app: App) -> Executor:
    """The executor a new run of ``app`` goes to."""
    executor = app.executor if app.executor_id else default_executor()
    if executor is None or not executor.enabled:
        raise ServiceUnavailable("No executor is available for this app.", code="no_executor")
    return executor
