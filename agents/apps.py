from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        from agents import audit, signals  # noqa: F401 - signals connects the receivers

        audit.register()
