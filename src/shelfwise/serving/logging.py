"""Structured logs: one JSON object per line, personal data masked.

Call ``setup_logging()`` once in the serving process. Code logs with ``extra={"fields": {...}}``
to add keys to the JSON object."""

from __future__ import annotations

import json
import logging
import sys
import time

from shelfwise.serving.pii import mask_text


# Fields our own code fills (model versions look like phone numbers: "20261130-112413"); every
# other field, and the message, may carry what a client sent and is masked.
OWN_FIELDS = frozenset({"name", "version", "previous", "action", "request_id", "route", "method", "key_id", "folder"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_text(record.getMessage()),
        }
        for key, value in (getattr(record, "fields", None) or {}).items():
            entry[key] = mask_text(value) if isinstance(value, str) and key not in OWN_FIELDS else value
        if record.exc_info:
            entry["error"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def setup_logging(level: str = "INFO", stream=None) -> logging.Handler:
    """Send the ``shelfwise`` loggers to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("shelfwise")
    for old in [h for h in logger.handlers if isinstance(h.formatter, JsonFormatter)]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler
