import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
django.setup(set_prefix=False)

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from observability.tracing import setup_if_enabled  # noqa: E402

setup_if_enabled("web")  # before the handler loads the middleware (the Django instrumentation adds one)
application = WSGIHandler()
