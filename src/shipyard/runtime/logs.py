"""Structured logs: every record emitted while reconciling carries the controller, the object
(namespace, name) and a per-reconcile `reconcileID`, as controller-runtime's logger does.

Records carry them as the attributes `controller`, `namespace`, `object_name` and
`reconcileID`. The values live in context variables set by the controller around each
reconcile, so they follow the reconcile into every coroutine it awaits without being passed
around. `ContextFilter` copies them onto log records (attach it to a handler);
`JSONFormatter` renders records as one JSON object per line with those fields.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

controller_var: ContextVar[str | None] = ContextVar("controller", default=None)
namespace_var: ContextVar[str | None] = ContextVar("namespace", default=None)
name_var: ContextVar[str | None] = ContextVar("name", default=None)
reconcile_id_var: ContextVar[str | None] = ContextVar("reconcileID", default=None)

# Record attribute -> variable. LogRecord already has `name` (the logger's), so the object's
# name is `object_name` on records and "name" in JSON output, as controller-runtime prints it.
FIELDS = {"controller": controller_var, "namespace": namespace_var, "object_name": name_var,
          "reconcileID": reconcile_id_var}
JSON_KEYS = {"object_name": "name"}


def context_fields() -> dict[str, str]:
    return {key: value for key, var in FIELDS.items() if (value := var.get()) is not None}


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Set some of controller/namespace/object_name/reconcileID for the duration of the
    block."""
    tokens = [(FIELDS[key], FIELDS[key].set(value)) for key, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Copies the reconcile context onto each record (as attributes of the same names)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in context_fields().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[JSON_KEYS.get(key, key)] = value
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class ContextLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger whose records always carry the current reconcile context as `extra`."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**context_fields(), **(kwargs.get("extra") or {})}
        return msg, kwargs


def get_logger(name: str) -> ContextLogger:
    return ContextLogger(logging.getLogger(name), {})
