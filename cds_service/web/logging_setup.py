"""Structured JSON logs. Only named, safe fields are emitted: never tokens, JWTs or patient ids."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import orjson

# Fields a log call may add with `extra=`; anything else is dropped rather than risk leaking PHI.
SAFE_FIELDS = (
    "hook_instance",
    "service",
    "rules",
    "thresholds_version",
    "data_failed",
    "total_ms",
    "status",
    "path",
    "method",
    "error_code",
    "iss",
    "jti",
    "feedback_new",
    "feedback_duplicates",
    "rows",
    "correlation_id",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__  # `extra=` values land here; a dict lookup is cheaper than hasattr
        for field in SAFE_FIELDS:
            if field in fields:
                entry[field] = fields[field]
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__  # no traceback text: it may quote values
        try:
            return orjson.dumps(entry, default=str).decode()  # every hook call logs two lines
        except (TypeError, orjson.JSONEncodeError):  # e.g. an integer beyond 64 bits
            return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("vertebral_cds")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # uvicorn's error logger prints tracebacks, whose text may quote SQL parameters (a patient id):
    # it writes through the same formatter, which keeps the exception's type and drops its text.
    for name in ("uvicorn.error", "uvicorn"):
        server_log = logging.getLogger(name)
        server_log.handlers[:] = [handler]
        server_log.propagate = False
