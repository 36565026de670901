"""The observability app's admin: spans (``admin_spans``)."""

from observability import admin_spans  # noqa: F401  (registers SpanAdmin)
