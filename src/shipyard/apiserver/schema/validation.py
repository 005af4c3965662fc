"""OpenAPI schema validation of custom resources, with kube-apiserver's paths and messages.

kube-apiserver runs kube-openapi's validator over the whole object and turns every failure into a
`field.Error` (`kubeOpenAPIResultToFieldErrors`). Here the same walk is done in Python over a tree
compiled once per schema, so each message, bad value and path comes out as upstream writes it,
e.g. ``spec.replicas`` / ``Invalid value: "string": spec.replicas in body must be of type
integer: "string"``.

The request path is hot and most objects are valid, so a jsonschema-rs validator translated from
the same schema answers "valid?" first (a few microseconds); the Python walk only runs to explain
an object already known to be invalid. The translation must reject everything the walk reports;
tests check the two agree.

Beyond the schema itself, `validate` also reports what kube-apiserver checks right after it for
custom resources: embedded resources' apiVersion/kind (`schema/objectmeta`) and duplicates in
`x-kubernetes-list-type` set and map lists (`schema/listtype`). ObjectMeta of the root object is
validated elsewhere (the generic metadata validation), as upstream.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jsonschema_rs

from shipyard.apimachinery.errors import StatusCause

from . import fielderrors as fe
from .formats import effective_format, string_checker

_IN = "body"


def _type_of(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return ""


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and (isinstance(a, int | float) == isinstance(b, int | float))


class _Node:
    """One schema node, flattened for the walk."""

    __slots__ = (
        "types", "nullable", "format", "format_check", "enum", "minimum", "maximum",
        "exclusive_minimum", "exclusive_maximum", "multiple_of", "min_length", "max_length",
        "pattern", "pattern_rx", "min_items", "max_items", "min_properties", "max_properties",
        "properties", "required", "additional", "items", "all_of", "any_of", "one_of", "not_",
        "embedded", "list_type", "list_keys",
    )

    def __init__(self, s: dict[str, Any]) -> None:
        t = s.get("type", "") or ""
        if s.get("x-kubernetes-int-or-string"):
            self.types: tuple[str, ...] = ("integer", "string")
        else:
            self.types = (t,) if t else ()
        self.nullable = bool(s.get("nullable"))
        self.format = effective_format(t, s.get("format", "") or "")
        self.format_check: Callable[[str], bool] | None = (
            string_checker(self.format) if self.format and t in ("", "string") else None
        )
        self.enum: list[Any] | None = s.get("enum")
        self.minimum = s.get("minimum")
        self.maximum = s.get("maximum")
        self.exclusive_minimum = bool(s.get("exclusiveMinimum"))
        self.exclusive_maximum = bool(s.get("exclusiveMaximum"))
        self.multiple_of = s.get("multipleOf")
        self.min_length = s.get("minLength")
        self.max_length = s.get("maxLength")
        self.pattern: str | None = s.get("pattern") or None
        self.pattern_rx = re.compile(self.pattern) if self.pattern else None
        self.min_items = s.get("minItems")
        self.max_items = s.get("maxItems")
        self.min_properties = s.get("minProperties")
        self.max_properties = s.get("maxProperties")
        self.properties = {k: _Node(v) for k, v in sorted((s.get("properties") or {}).items())}
        self.required: list[str] = list(s.get("required") or [])
        addl = s.get("additionalProperties")
        self.additional = _Node(addl) if isinstance(addl, dict) else None
        items = s.get("items")
        self.items = _Node(items) if isinstance(items, dict) else None
        self.all_of = [_Node(x) for x in s.get("allOf") or []]
        self.any_of = [_Node(x) for x in s.get("anyOf") or []]
        self.one_of = [_Node(x) for x in s.get("oneOf") or []]
        self.not_ = _Node(s["not"]) if isinstance(s.get("not"), dict) else None
        self.embedded = bool(s.get("x-kubernetes-embedded-resource"))
        self.list_type: str = s.get("x-kubernetes-list-type") or ""
        self.list_keys: list[str] = list(s.get("x-kubernetes-list-map-keys") or [])


def _name(path: str) -> str:
    return path


def _walk(n: _Node, v: Any, path: str, out: list[StatusCause]) -> None:
    """kube-openapi's SchemaValidator.Validate for one node, in its validator order."""
    kind = _type_of(v)
    if n.types or n.format:
        _check_type(n, v, kind, path, out)
    if n.all_of or n.any_of or n.one_of or n.not_ is not None:
        _check_junctors(n, v, path, out)
    if kind == "string":
        _check_string(n, v, path, out)
    elif kind in ("integer", "number"):
        _check_number(n, v, path, out)
    elif kind == "array":
        if n.items is not None:
            for i, item in enumerate(v):
                _walk(n.items, item, fe.index(path, i), out)
        size = len(v)
        if n.min_items is not None and size < n.min_items:
            out.append(fe.invalid(path, size,
                                  f"{path} in {_IN} should have at least {n.min_items} items"))
        if n.max_items is not None and size > n.max_items:
            out.append(fe.too_many(path, size, n.max_items))
    if n.enum is not None and not any(json_equal(v, e) for e in n.enum):
        supported = [e if isinstance(e, str) else _json(e) for e in n.enum]
        out.append(fe.not_supported(path, v, supported))
    if kind == "object":
        _check_object(n, v, path, out)


def _json(v: Any) -> str:
    import orjson

    return orjson.dumps(v).decode()


def _check_type(n: _Node, v: Any, kind: str, path: str, out: list[StatusCause]) -> None:
    if v is None:
        if n.types and not n.nullable:
            out.append(fe.type_invalid(path, "null", _type_msg(path, ",".join(n.types), "null")))
        return
    types = n.types
    float_int = kind == "number" and float(v).is_integer() and "integer" in types
    int_float = kind == "integer" and "number" in types
    if kind not in ("string", "array") and n.format and not (
        kind in types or float_int or int_float or _data_format(kind) == n.format
    ):
        data_format = _data_format(kind)
        out.append(fe.type_invalid(path, data_format, _type_msg(path, n.format, data_format)))
        return
    numeric = "number" in types or "integer" in types
    if not numeric and n.format and kind in ("string", "array"):
        return
    if types and not (kind in types or float_int or int_float):
        out.append(fe.type_invalid(path, kind, _type_msg(path, ",".join(types), kind)))


def _data_format(kind: str) -> str:
    return {"integer": "int64", "number": "float64"}.get(kind, "")


def _type_msg(path: str, type_name: str, value: str) -> str:
    return f"{path} in {_IN} must be of type {type_name}: {fe.go_quote(value)}"


def _check_string(n: _Node, v: str, path: str, out: list[StatusCause]) -> None:
    if n.max_length is not None and len(v) > n.max_length:
        out.append(fe.too_long(path, n.max_length))
    if n.min_length is not None and len(v) < n.min_length:
        out.append(fe.invalid(
            path, v, f"{path} in {_IN} should be at least {n.min_length} chars long"))
    if n.pattern_rx is not None and n.pattern_rx.search(v) is None:
        out.append(fe.invalid(path, v, f"{path} in {_IN} should match '{n.pattern}'"))
    if n.format_check is not None and not n.format_check(v):
        out.append(fe.type_invalid(path, v, _type_msg(path, n.format, v)))


def _check_number(n: _Node, v: float, path: str, out: list[StatusCause]) -> None:
    if n.multiple_of is not None and n.multiple_of > 0:
        q = v / n.multiple_of
        if not float(q).is_integer():
            out.append(fe.invalid(path, v, f"{path} in {_IN} should be a multiple of "
                                           f"{fe.go_number(n.multiple_of)}"))
    if n.maximum is not None:
        if v > n.maximum or (n.exclusive_maximum and v == n.maximum):
            rel = "less than" if n.exclusive_maximum else "less than or equal to"
            out.append(fe.invalid(path, v, f"{path} in {_IN} should be {rel} "
                                           f"{fe.go_number(n.maximum)}"))
    if n.minimum is not None:
        if v < n.minimum or (n.exclusive_minimum and v == n.minimum):
            rel = "greater than" if n.exclusive_minimum else "greater than or equal to"
            out.append(fe.invalid(path, v, f"{path} in {_IN} should be {rel} "
                                           f"{fe.go_number(n.minimum)}"))


def _check_object(n: _Node, v: dict[str, Any], path: str, out: list[StatusCause]) -> None:
    size = len(v)
    if n.min_properties is not None and size < n.min_properties:
        out.append(fe.invalid(path, size, f"{path} in {_IN} should have at least "
                                          f"{n.min_properties} properties"))
        return
    if n.max_properties is not None and size > n.max_properties:
        out.append(fe.too_many(path, size, n.max_properties))
        return
    props = n.properties
    if n.additional is not None:
        for k in sorted(v):
            if k not in props:
                _walk(n.additional, v[k], fe.child(path, k), out)
    for k, sub in props.items():
        if k in v:
            _walk(sub, v[k], fe.child(path, k), out)
    for k in n.required:
        if k not in v:
            out.append(fe.required(fe.child(path, k)))


def _check_junctors(n: _Node, v: Any, path: str, out: list[StatusCause]) -> None:
    # Composite errors are not openapi Validation errors upstream: no field, empty bad value.
    if n.all_of:
        failed = 0
        for sub in n.all_of:
            errs: list[StatusCause] = []
            _walk(sub, v, path, errs)
            out.extend(errs)
            failed += bool(errs)
        if failed:
            out.append(fe.invalid("", "", f"{fe.go_quote(path)} must validate all the schemas "
                                          "(allOf)"))
    if n.any_of and not any(_valid(sub, v, path) for sub in n.any_of):
        out.append(fe.invalid("", "", f"{fe.go_quote(path)} must validate at least one schema "
                                      "(anyOf)"))
    if n.one_of and sum(_valid(sub, v, path) for sub in n.one_of) != 1:
        out.append(fe.invalid("", "", f"{fe.go_quote(path)} must validate one and only one schema "
                                      "(oneOf)"))
    if n.not_ is not None and _valid(n.not_, v, path):
        out.append(fe.invalid("", "", f"{fe.go_quote(path)} must not validate the schema (not)"))


def _valid(n: _Node, v: Any, path: str) -> bool:
    errs: list[StatusCause] = []
    _walk(n, v, path, errs)
    return not errs


# --- checks kube-apiserver runs next to the schema -------------------------------------------

_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def dns1035_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS1035.match(value):
        errs.append(DNS1035_MSG)
    return errs


def _embedded(path: str, v: dict[str, Any], out: list[StatusCause]) -> None:
    if "apiVersion" not in v:
        out.append(fe.required(fe.child(path, "apiVersion"), "must not be empty"))
    if "kind" not in v:
        out.append(fe.required(fe.child(path, "kind"), "must not be empty"))
    api_version, kind = v.get("apiVersion"), v.get("kind")
    if "apiVersion" in v:
        p = fe.child(path, "apiVersion")
        if not isinstance(api_version, str):
            out.append(fe.invalid(p, api_version, "must be a string"))
        elif not api_version:
            out.append(fe.invalid(p, api_version, "must not be empty"))
        elif api_version.count("/") > 1:
            out.append(fe.invalid(p, api_version,
                                  f"unexpected GroupVersion string: {api_version}"))
    if "kind" in v:
        p = fe.child(path, "kind")
        if not isinstance(kind, str):
            out.append(fe.invalid(p, kind, "must be a string"))
        elif not kind:
            out.append(fe.invalid(p, kind, "must not be empty"))
        elif errs := dns1035_errors(kind.lower()):
            out.append(fe.invalid(p, kind, "may have mixed case, but should otherwise match: "
                                  + ",".join(errs)))
    meta = v.get("metadata")
    if "metadata" in v and not isinstance(meta, dict):
        out.append(fe.invalid(fe.child(path, "metadata"), meta, "must be an object"))


def _extras(n: _Node, v: Any, path: str, out: list[StatusCause]) -> None:
    """Embedded resources and list-type invariants, depth first."""
    if isinstance(v, dict):
        if n.embedded:
            _embedded(path, v, out)
        for k, sub in n.properties.items():
            if k in v:
                _extras(sub, v[k], fe.child(path, k), out)
        if n.additional is not None:
            for k in sorted(v):
                if k not in n.properties:
                    _extras(n.additional, v[k], fe.child(path, k), out)
    elif isinstance(v, list):
        if n.list_type == "set":
            for i, item in enumerate(v):
                if any(json_equal(item, prev) for prev in v[:i]):
                    out.append(fe.duplicate(fe.index(path, i), item))
        elif n.list_type == "map" and n.list_keys:
            seen: list[dict[str, Any]] = []
            for i, item in enumerate(v):
                if not isinstance(item, dict):
                    continue
                keys = {k: item[k] for k in n.list_keys if k in item}
                if any(json_equal(keys, s) for s in seen):
                    out.append(fe.duplicate(fe.index(path, i), keys))
                seen.append(keys)
        if n.items is not None:
            for i, item in enumerate(v):
                _extras(n.items, item, fe.index(path, i), out)


def _needs_extras(n: _Node) -> bool:
    if n.embedded or n.list_type in ("set", "map"):
        return True
    children = [*n.properties.values(), n.additional, n.items]
    return any(c is not None and _needs_extras(c) for c in children)


# --- translation to jsonschema-rs ---------------------------------------------------------------


def to_json_schema(s: dict[str, Any]) -> dict[str, Any]:
    """A draft 2020-12 schema accepting exactly what `_walk` accepts."""
    out: dict[str, Any] = {}
    t = s.get("type", "") or ""
    types: list[str] = ["integer", "string"] if s.get("x-kubernetes-int-or-string") else (
        [t] if t else [])
    fmt = effective_format(t, s.get("format", "") or "")
    if types:
        if s.get("nullable"):
            types = [*types, "null"]
        out["type"] = types[0] if len(types) == 1 else types
    elif fmt:
        out["type"] = ["string", "array", "null"]
    if fmt and t in ("", "string") and string_checker(fmt) is not None:
        out["format"] = "k8s-" + fmt.replace("-", "")
    for kw in ("enum", "multipleOf", "minLength", "maxLength", "pattern", "minItems", "maxItems",
               "minProperties", "maxProperties", "required"):
        if s.get(kw) is not None:
            out[kw] = s[kw]
    if out.get("multipleOf") is not None and out["multipleOf"] <= 0:
        del out["multipleOf"]
    if not out.get("pattern"):
        out.pop("pattern", None)
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if s.get(bound) is not None:
            out[exclusive if s.get(exclusive) else bound] = s[bound]
    if s.get("properties"):
        out["properties"] = {k: to_json_schema(v) for k, v in s["properties"].items()}
    if isinstance(s.get("additionalProperties"), dict):
        out["additionalProperties"] = to_json_schema(s["additionalProperties"])
    if isinstance(s.get("items"), dict):
        out["items"] = to_json_schema(s["items"])
    for junctor in ("allOf", "anyOf", "oneOf"):
        if s.get(junctor):
            out[junctor] = [to_json_schema(x) for x in s[junctor]]
    if isinstance(s.get("not"), dict):
        out["not"] = to_json_schema(s["not"])
    return out


def _format_funcs() -> dict[str, Callable[[str], bool]]:
    from .formats import STRING_FORMATS

    return {f"k8s-{name}": check for name, check in STRING_FORMATS.items()}


class SchemaValidator:
    """Validates objects against one CRD version's structural schema; build once per schema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._root = _Node(schema)
        self._fast = jsonschema_rs.Draft202012Validator(
            to_json_schema(schema), formats=_format_funcs(), validate_formats=True,
            pattern_options=jsonschema_rs.RegexOptions(),
        )
        self._extras = _needs_extras(self._root)

    def validate(self, obj: Any) -> list[StatusCause]:
        """Every schema error of `obj` as kube-apiserver reports it (empty when valid)."""
        out: list[StatusCause] = []
        if not self._fast.is_valid(obj):
            _walk(self._root, obj, "", out)
        if self._extras:
            _extras(self._root, obj, "", out)
        return out
