import gc
import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

application = get_asgi_application()

# Thousands of open SSE streams keep many objects alive: with the default threshold (700) full collections
# run often and pause the event loop for hundreds of ms. FACTS.md measured ~750 streams per process at the
# default and ~1,500-1,750 with a gen-0 threshold of 50,000. Freeze what start-up allocated.
if settings.WEB_GC_THRESHOLD:
    gc.set_threshold(settings.WEB_GC_THRESHOLD, 20, 100)
    gc.freeze()
