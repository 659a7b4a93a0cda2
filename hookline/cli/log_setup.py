"""Process-wide logging: one JSON object per line in production, readable text in development."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from hookline.config.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(settings: Settings) -> None:
    """Send every log record to stderr in the format ``settings`` ask for.

    JSON records carry the message, level, logger, time and whatever ``extra`` the call gave
    (delivery and endpoint ids, attempt, status; Temporal adds workflow and activity ids).
    Nothing logs secrets or bodies.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)


def formatter_for(settings: Settings) -> logging.Formatter:
    """The formatter of ``settings``' log format."""
    if settings.resolved_log_format == "json":
        return JsonFormatter(
            TEXT_FORMAT,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return logging.Formatter(TEXT_FORMAT)
