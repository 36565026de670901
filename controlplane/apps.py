from django.apps import AppConfig


class ControlplaneConfig(AppConfig):
    """Project wiring as an app: its system checks and the commands that compose processes."""

    name = "controlplane"
    verbose_name = "Control plane"

    def ready(self) -> None:
        from controlplane import checks  # noqa: F401 -- registers the checks
