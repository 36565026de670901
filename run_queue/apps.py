from django.apps import AppConfig


class RunQueueConfig(AppConfig):
    name = "run_queue"
    verbose_name = "Run queue"
