import gc
import os

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
django.setup(set_prefix=False)

from observability.tracing import setup_if_enabled  # noqa: E402

setup_if_enabled("web")  # before the handler loads the middleware (the Django instrumentation adds one)

from controlplane.asgi_handler import ASGIHandler  # noqa: E402  (needs settings configured)

application = ASGIHandler(threads=settings.WEB_THREADS, max_body_bytes=settings.API_MAX_BODY_BYTES)

# Thousands of open SSE streams keep many objects alive: with the default threshold (700) full collections
# run often and pause the event loop for hundreds of ms. FACTS.md measured ~750 streams per process at the
# default and ~1,500-1,750 with a gen-0 threshold of 50,000. Freeze what start-up allocated.
if settings.WEB_GC_THRESHOLD:
    gc.set_threshold(settings.WEB_GC_THRESHOLD, 20, 100)
    gc.freeze()
