from django.apps import AppConfig


class ControlplaneConfig(AppConfig):
    """Project wiring as an app: its system checks, the admin's link to the portal and the commands that
    compose processes."""

    name = "controlplane"
    verbose_name = "Control plane"

    def ready(self) -> None:
        from django.contrib import admin

        from controlplane import checks  # noqa: F401 -- registers the checks

        admin.site.site_url = "/portal/"  # the admin's "View site" link: the portal, not a 404 at /
