"""Server-side printing: objects -> a ``meta.k8s.io/v1`` Table, as ``kubectl get`` asks for.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints whatever columns
the server chose, so the columns are the server's business, exactly as kube-apiserver does it:

- built-ins carry a `TablePrinter` in ``ResourceInfo.extra["printer"]`` (see `builtins.py`): fixed
  column definitions and a function computing the cells, ages humanised on the server
  (``duration.HumanDuration``). Every column is always sent, ``priority > 0`` ones included; kubectl
  hides those unless ``-o wide``.
- everything else (CRDs) gets an implicit ``Name`` column followed by the version's
  ``additionalPrinterColumns``, or ``Age`` from ``.metadata.creationTimestamp`` when it has none.
  A value of the wrong JSON type gives a null cell; ``date`` cells stay RFC 3339 strings (kubectl
  humanises them), ``string`` cells print the value as Go's ``fmt.Print`` would.

``rows[].object`` is a PartialObjectMetadata (``includeObject=Metadata``, the default), the whole
object (``Object``) or absent (``None``). In a watch only the first event carries column
definitions (`table_for_watch_event`). Pure functions; the clock is a parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard.apimachinery.jsonpath import JSONPathError, evaluate
from shipyard.apiserver.resources import PrinterColumn, ResourceInfo

TABLE_API_VERSION = "meta.k8s.io/v1"

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
CREATION_TIMESTAMP_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the "
    "system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#metadata"
)

NAME_COLUMN = PrinterColumn("Name", "string", "", format="name", description=NAME_DESCRIPTION)
AGE_COLUMN = PrinterColumn("Age", "string", "", description=CREATION_TIMESTAMP_DESCRIPTION)
# What a CRD version without additionalPrinterColumns is served with.
DEFAULT_CRD_COLUMNS = (
    PrinterColumn(
        "Age", "date", ".metadata.creationTimestamp", description=CREATION_TIMESTAMP_DESCRIPTION
    ),
)

Cells = Callable[[dict[str, Any], datetime], list[Any]]


@dataclass(frozen=True, slots=True)
class TablePrinter:
    """A built-in kind's columns and the function computing one row's cells at time ``now``."""

    columns: tuple[PrinterColumn, ...]
    cells: Cells


# ---------------------------------------------------------------------------------------------
# time


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``Time`` or ``MicroTime``) as an aware datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


def format_time(value: datetime) -> str:
    """metav1.Time's wire form: UTC, whole seconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_duration(seconds_total: float) -> str:
    """``duration.HumanDuration``: two or three significant figures ("5m30s", "3h2m", "12d")."""
    seconds = int(seconds_total)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(timestamp: Any, now: datetime) -> str:
    """``translateTimestampSince``: "<unknown>" for a missing timestamp, else its age."""
    parsed = parse_time(timestamp)
    if parsed is None:
        return "<unknown>"
    return human_duration((now - parsed).total_seconds())


# ---------------------------------------------------------------------------------------------
# tables


def column_definition(column: PrinterColumn) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type,
        "format": column.format,
        "description": column.description,
        "priority": column.priority,
    }


def table_columns(info: ResourceInfo) -> tuple[PrinterColumn, ...]:
    printer = info.extra.get("printer")
    if isinstance(printer, TablePrinter):
        return printer.columns
    return (NAME_COLUMN, *(info.printer_columns or DEFAULT_CRD_COLUMNS))


def row_cells(info: ResourceInfo, obj: dict[str, Any], now: datetime) -> list[Any]:
    printer = info.extra.get("printer")
    if isinstance(printer, TablePrinter):
        return printer.cells(obj, now)
    cells: list[Any] = [obj.get("metadata", {}).get("name", "")]
    for column in info.printer_columns or DEFAULT_CRD_COLUMNS:
        try:
            results = evaluate(obj, column.json_path)
        except JSONPathError:  # an unparsable column prints as null, as kube does
            results = []
        cells.append(_cell_for_value(column.type, results[0], now) if results else None)
    return cells


def partial_object_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": TABLE_API_VERSION,
        "metadata": obj.get("metadata", {}),
    }


def to_table(
    info: ResourceInfo,
    objects: list[dict[str, Any]],
    *,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
    with_headers: bool = True,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A Table of ``objects`` (one row each, in order). ``include_object``: None|Metadata|Object."""
    moment = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for obj in objects:
        row: dict[str, Any] = {"cells": row_cells(info, obj, moment)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_object_metadata(obj)
        rows.append(row)
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    if remaining is not None:
        metadata["remainingItemCount"] = remaining
    return {
        "kind": "Table",
        "apiVersion": TABLE_API_VERSION,
        "metadata": metadata,
        # Not omitempty upstream: a watch event after the first carries "columnDefinitions": null.
        "columnDefinitions": (
            [column_definition(c) for c in table_columns(info)] if with_headers else None
        ),
        "rows": rows,
    }


def table_for_watch_event(
    info: ResourceInfo,
    obj: dict[str, Any],
    *,
    first: bool,
    include_object: str = "Metadata",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Table that replaces ``obj`` in a watch event; headers only when ``first``."""
    resource_version = obj.get("metadata", {}).get("resourceVersion", "")
    return to_table(
        info,
        [obj],
        include_object=include_object,
        resource_version=resource_version,
        with_headers=first,
        now=now,
    )


# ---------------------------------------------------------------------------------------------
# CRD cells (apiextensions-apiserver tableconvertor)


def _cell_for_value(column_type: str, value: Any, now: datetime) -> Any:
    if value is None:
        return None
    if column_type == "string":
        return go_print(value)
    if column_type == "integer":
        if type(value) is int:
            return value
        if type(value) is float:
            return int(value)
        return None
    if column_type == "number":
        if type(value) in (int, float):
            return float(value)
        return None
    if column_type == "boolean":
        return value if type(value) is bool else None
    if column_type == "date":
        if not isinstance(value, str):
            return None
        # ConvertToHumanReadableDateType: the server renders the age, not the timestamp.
        parsed = parse_time(value)
        return "<invalid>" if parsed is None else human_duration((now - parsed).total_seconds())
    return None


def go_print(value: Any) -> str:
    """``fmt.Fprint`` of a decoded JSON value, as kube's JSONPath printer renders a string cell."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    return str(value)
