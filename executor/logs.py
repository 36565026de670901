"""structlog for the executor process: one line per event, JSON or console, with the bound run context."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(*, log_format: str, level: str) -> None:
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(level=numeric, format="%(name)s %(levelname)s %(message)s", stream=sys.stderr)
    renderer = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
