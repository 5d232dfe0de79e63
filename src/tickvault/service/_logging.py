"""Structured JSON logs: one object per line, with the request id.

The service logs through :func:`log_event`, which redacts every string before it becomes a
record (and formats tracebacks itself, so they are redacted too). :class:`JsonLogFormatter`
renders any record — ours, uvicorn's — as one JSON line; ``tickvault serve`` installs it.
Configuring handlers is the edge's job: library code only emits records.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import traceback
from collections.abc import Iterable
from typing import Any

from tickvault.service._errors import Redactor, request_id_var

__all__ = ["JsonLogFormatter", "configure_logging", "log_event", "logger"]

logger = logging.getLogger("tickvault.service")

# Attributes every LogRecord has; anything else on a record is an ``extra`` field to render.
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message", "asctime", "color_message"}  # uvicorn adds an ANSI-coloured copy of its messages


class JsonLogFormatter(logging.Formatter):
    """Render a record as one JSON object: ``ts level logger message request_id`` + extras.

    Parameters
    ----------
    redactor
        Applied to the whole rendered line (a last line of defence for records that did not
        come through :func:`log_event`).
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line for ``record``."""
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid != "-":
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value
        if record.exc_info:
            out["traceback"] = "".join(traceback.format_exception(*record.exc_info))
        return self._redactor.text(json.dumps(out, default=str, separators=(",", ":")))


def configure_logging(level: str = "info", secrets: Iterable[str] = ()) -> None:
    """Send ``tickvault`` and ``uvicorn`` logs to stderr as JSON lines (for ``tickvault serve``).

    Parameters
    ----------
    level
        ``debug``, ``info``, ``warning`` or ``error``.
    secrets
        Values masked in every line (provider keys, passwords).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter(Redactor(secrets)))
    for name in ("tickvault", "uvicorn", "uvicorn.error"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(level.upper())
        log.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the service writes its own access log


def log_event(level: int, message: str, redactor: Redactor, *, exc: BaseException | None = None,
              **fields: Any) -> None:
    """Log ``message`` with structured ``fields``, every string redacted.

    Parameters
    ----------
    level
        ``logging.INFO``, ...
    message
        Short event description (``request``, ``unhandled error``).
    redactor
        Masks secrets in the message, string fields and the traceback.
    exc
        An exception whose traceback is logged (formatted and redacted here).
    **fields
        Extra JSON-compatible fields.
    """
    if not logger.isEnabledFor(level):
        return
    extra: dict[str, Any] = {k: redactor.text(v) if isinstance(v, str) else v for k, v in fields.items()}
    extra["request_id"] = request_id_var.get()
    if exc is not None:
        extra["error_type"] = type(exc).__name__
        extra["traceback"] = redactor.text("".join(traceback.format_exception(exc)))
    logger.log(level, redactor.text(message), extra=extra)
