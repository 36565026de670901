from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from run_queue import handlers
        from runs.orchestrator import RunHandler

        handlers.register(RunHandler())
