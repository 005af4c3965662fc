"""Field errors as kube-apiserver words them, turned straight into `StatusCause`s.

apimachinery's `field.Error` carries a type, a path, a bad value and a detail; the Status sent to
the client holds `reason` = the type, `field` = the path and `message` = the error body, e.g.
``Invalid value: "string": spec.replicas in body must be of type integer: "string"``. The bad value
is printed the way Go's `fmt` prints it (`%q` for strings, `%v` for numbers and booleans), which
is what every message in this package relies on. Paths are plain strings built with `child`,
`index` and `key` so hot paths never allocate path objects.
"""

from __future__ import annotations

import json
import math
from typing import Any

from shipyard.apimachinery.errors import StatusCause

OMIT = object()  # bad value left out of the body, as apimachinery's omitValue


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


def go_quote(s: str) -> str:
    """Go's `%q` / strconv.Quote for printable text (JSON escaping is the same for it)."""
    return json.dumps(s, ensure_ascii=False)


def go_number(n: float | int) -> str:
    """Go's `%v` of a float64: integral values print without a fraction, large ones as 1e+21."""
    if isinstance(n, bool):
        return "true" if n else "false"
    if isinstance(n, int):
        return str(n)
    if math.isfinite(n) and n == int(n) and abs(n) < 1e21:
        return str(int(n))
    text = repr(n)
    if "e" in text:
        mantissa, _, exp = text.partition("e")
        sign = "-" if exp.startswith("-") else "+"
        digits = exp.lstrip("+-").rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    return text


def go_value(v: Any) -> str:
    """How `field.Error` prints a bad value."""
    if v is None:
        return '"null"'
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, bool | int | float):
        return go_number(v)
    if isinstance(v, dict):
        inner = ", ".join(f"{go_quote(str(k))}:{go_struct(x)}" for k, x in v.items())
        return "map[string]interface {}{" + inner + "}"
    if isinstance(v, list):
        return "[]interface {}{" + ", ".join(go_struct(x) for x in v) + "}"
    return go_quote(str(v))


def go_struct(v: Any) -> str:
    """`%#v` of a value nested inside a map or slice."""
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v}"
    if isinstance(v, float):
        return go_number(v)
    return go_value(v)


def _cause(reason: str, path: str, body: str) -> StatusCause:
    return {"reason": reason, "message": body, "field": path}


def _with_detail(body: str, detail: str) -> str:
    return f"{body}: {detail}" if detail else body


def required(path: str, detail: str = "") -> StatusCause:
    return _cause("FieldValueRequired", path, _with_detail("Required value", detail))


def forbidden(path: str, detail: str = "") -> StatusCause:
    return _cause("FieldValueForbidden", path, _with_detail("Forbidden", detail))


def invalid(path: str, value: Any, detail: str = "") -> StatusCause:
    body = f"Invalid value: {go_value(value)}"
    return _cause("FieldValueInvalid", path, _with_detail(body, detail))


def type_invalid(path: str, value: Any, detail: str) -> StatusCause:
    return _cause(
        "FieldValueTypeInvalid", path, _with_detail(f"Invalid value: {go_value(value)}", detail)
    )


def duplicate(path: str, value: Any) -> StatusCause:
    return _cause("FieldValueDuplicate", path, f"Duplicate value: {go_value(value)}")


def not_supported(path: str, value: Any, supported: list[str]) -> StatusCause:
    detail = ""
    if supported:
        detail = "supported values: " + ", ".join(go_quote(s) for s in supported)
    body = f"Unsupported value: {go_value(value)}"
    return _cause("FieldValueNotSupported", path, _with_detail(body, detail))


def too_long(path: str, max_length: int) -> StatusCause:
    """`field.TooLong` (1.32+): the value itself is never printed."""
    if max_length >= 0:
        unit = "byte" if max_length == 1 else "bytes"
        detail = f"may not be more than {max_length} {unit}"
    else:
        detail = "value is too long"
    return _cause("FieldValueTooLong", path, f"Too long: {detail}")


def too_many(path: str, actual: int, max_items: int) -> StatusCause:
    detail = f"must have at most {max_items} items" if max_items >= 0 else "has too many items"
    body = f"Too many: {actual}" if actual >= 0 else "Too many"
    return _cause("FieldValueTooMany", path, f"{body}: {detail}")


def internal(path: str, detail: str) -> StatusCause:
    return _cause("InternalError", path, f"Internal error: {detail}")
