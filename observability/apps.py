from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from observability import tracing

        role = tracing.process_role()
        if role is not None:
            tracing.setup_if_enabled(role)
