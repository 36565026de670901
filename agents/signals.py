"""A saved or deleted app or executor empties this process's cache of them (agents.selectors)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from agents.models import App, Executor
from agents.selectors import config_cache_clear


@receiver([post_save, post_delete], sender=App)
@receiver([post_save, post_delete], sender=Executor)
def _config_changed(sender, **kwargs) -> None:
    config_cache_clear()
