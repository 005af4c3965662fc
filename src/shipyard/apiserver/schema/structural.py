"""Is a CRD version's openAPIV3Schema structural, and valid as a CRD schema?

kube-apiserver refuses a CustomResourceDefinition whose schema it could not prune, default or
validate deterministically. Two upstream passes are reproduced here, with their field paths and
messages:

* the OpenAPI subset CRDs accept (`validation.go` in apis/apiextensions: no `$ref`,
  `definitions`, `uniqueItems: true`, properties together with additionalProperties, list and map
  type extensions consistent), and
* structurality (`apiserver/schema/validation.go`: a `type` on every specified node unless
  int-or-string or preserve-unknown-fields, nothing in value validations (allOf/anyOf/oneOf/not)
  that the structure does not have, root metadata restricted to name and generateName).

`check_structural(schema, path=...)` returns causes; the caller supplies the path prefix
(`spec.versions[0].schema.openAPIV3Schema`, or `spec.validation.openAPIV3Schema` where
kube-apiserver reports a schema shared by all versions there). CEL rules are compiled by
`cel.compile_rules`; `crd.validate_crd` combines both.
"""

from __future__ import annotations

import re
from typing import Any

from shipyard.apimachinery.errors import StatusCause

from .fielderrors import child, forbidden, index, invalid, key, not_supported, required

_OPENAPI_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_ROOT, _ITEM, _FIELD = 0, 1, 2
_GENERIC_FORBIDDEN = (
    ("type", "must be empty to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("externalDocs", "must be undefined to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]


def check_structural(
    schema: dict[str, Any], path: str = "spec.validation.openAPIV3Schema"
) -> list[StatusCause]:
    """All reasons kube-apiserver would refuse `schema` as a CRD version's openAPIV3Schema."""
    causes = _check_openapi(schema, path, inside_meta=False)
    structural = _invariants(schema, _ROOT, path)
    # upstream sorts structural errors by their full text to be deterministic
    structural.sort(key=lambda c: f"{c['field']}: {c['message']}")
    return causes + structural


# --- the OpenAPI subset (apis/apiextensions/validation) ---------------------------------------


def _check_openapi(s: dict[str, Any], path: str, *, inside_meta: bool) -> list[StatusCause]:
    out: list[StatusCause] = []
    t = s.get("type", "")
    if t and t not in _OPENAPI_TYPES:
        out.append(not_supported(child(path, "type"), t, _OPENAPI_TYPES))
    if s.get("id"):
        out.append(forbidden(child(path, "id"), "id is not supported"))
    if "additionalItems" in s:
        out.append(forbidden(child(path, "additionalItems"), "additionalItems is not supported"))
    if s.get("patternProperties"):
        out.append(forbidden(child(path, "patternProperties"),
                             "patternProperties is not supported"))
    if s.get("definitions"):
        out.append(forbidden(child(path, "definitions"), "definitions is not supported"))
    if "dependencies" in s:
        out.append(forbidden(child(path, "dependencies"), "dependencies is not supported"))
    if "$ref" in s:
        out.append(forbidden(child(path, "$ref"), "$ref is not supported"))
    if t == "null":
        out.append(forbidden(child(path, "type"),
                             "type cannot be set to null, use nullable as an alternative"))
    if isinstance(s.get("items"), list):
        out.append(forbidden(child(path, "items"),
                             "items must be a schema object and not an array"))
    if inside_meta and s.get("x-kubernetes-embedded-resource"):
        out.append(forbidden(child(path, "x-kubernetes-embedded-resource"),
                             "must not be used inside of resource meta"))
    if s.get("uniqueItems") is True:
        out.append(forbidden(child(path, "uniqueItems"),
                             "uniqueItems cannot be set to true since the runtime complexity "
                             "becomes quadratic"))
    props: dict[str, Any] = s.get("properties") or {}
    addl = s.get("additionalProperties")
    if addl is not None:
        if props and (addl is False or isinstance(addl, dict)):
            out.append(forbidden(child(path, "additionalProperties"),
                                 "additionalProperties and properties are mutual exclusive"))
        if isinstance(addl, dict):
            out += _check_openapi(addl, child(path, "additionalProperties"), inside_meta=False)
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    for name in sorted(props):
        meta = embedded and name in ("apiVersion", "kind", "metadata")
        out += _check_openapi(props[name], key(child(path, "properties"), name),
                              inside_meta=inside_meta or meta)
    items = s.get("items")
    if isinstance(items, dict):
        out += _check_openapi(items, child(path, "items"), inside_meta=inside_meta)
    for junctor in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(s.get(junctor) or []):
            out += _check_openapi(sub, index(child(path, junctor), i), inside_meta=inside_meta)
    if isinstance(s.get("not"), dict):
        out += _check_openapi(s["not"], child(path, "not"), inside_meta=inside_meta)
    out += _check_list_and_map_types(s, path)
    return out


def _check_list_and_map_types(s: dict[str, Any], path: str) -> list[StatusCause]:
    out: list[StatusCause] = []
    list_type = s.get("x-kubernetes-list-type")
    if list_type is not None:
        if s.get("type") != "array":
            out.append(invalid(child(path, "type"), s.get("type", ""),
                               "must be array if x-kubernetes-list-type is specified"))
        elif list_type not in ("atomic", "set", "map"):
            out.append(not_supported(child(path, "x-kubernetes-list-type"), list_type,
                                     ["atomic", "set", "map"]))
    keys = s.get("x-kubernetes-list-map-keys") or []
    if keys and list_type != "map":
        out.append(forbidden(child(path, "x-kubernetes-list-map-keys"),
                             "must not be set if x-kubernetes-list-type is not map"))
    if list_type == "map":
        raw_items = s.get("items")
        items: dict[str, Any] = raw_items if isinstance(raw_items, dict) else {}
        if not keys:
            out.append(required(child(path, "x-kubernetes-list-map-keys"),
                                "must not be empty if x-kubernetes-list-type is map"))
        if items.get("type") != "object":
            out.append(invalid(child(child(path, "items"), "type"), items.get("type", ""),
                               "must be object if parent array's x-kubernetes-list-type is map"))
        item_props = items.get("properties") or {}
        for k in keys:
            prop = item_props.get(k)
            kpath = key(child(child(path, "items"), "properties"), k)
            if prop is None:
                out.append(required(kpath, "entries mentioned in x-kubernetes-list-map-keys "
                                           "must exist"))
            elif k not in (items.get("required") or []) and "default" not in prop:
                out.append(required(child(kpath, "default"),
                                    "this property is in x-kubernetes-list-map-keys, so it must "
                                    "have a default or be a required property"))
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None:
        if s.get("type") != "object":
            out.append(invalid(child(path, "type"), s.get("type", ""),
                               "must be object if x-kubernetes-map-type is specified"))
        elif map_type not in ("atomic", "granular"):
            out.append(not_supported(child(path, "x-kubernetes-map-type"), map_type,
                                     ["atomic", "granular"]))
    return out


# --- structurality (apiserver/schema/validation.go) --------------------------------------------


def _invariants(s: dict[str, Any], lvl: int, path: str) -> list[StatusCause]:
    out: list[StatusCause] = []
    t = s.get("type", "")
    items = s.get("items")
    if t == "array" and items is None:
        out.append(required(child(path, "items"), "must be specified"))
    if isinstance(items, dict):
        out += _invariants(items, _ITEM, child(path, "items"))
    props: dict[str, Any] = s.get("properties") or {}
    for name in props:
        if isinstance(props[name], dict):
            out += _invariants(props[name], _FIELD, key(child(path, "properties"), name))
    addl = s.get("additionalProperties")
    embedded = bool(s.get("x-kubernetes-embedded-resource"))
    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    if addl is not None:
        if lvl == _ROOT:
            out.append(forbidden(child(path, "additionalProperties"),
                                 "must not be used at the root"))
        if isinstance(addl, dict):
            out += _invariants(addl, _FIELD, child(path, "additionalProperties"))
    if int_or_string and preserve:
        out.append(invalid(child(path, "x-kubernetes-preserve-unknown-fields"), True,
                           "must be false if x-kubernetes-int-or-string is true"))
    if int_or_string and embedded:
        out.append(invalid(child(path, "x-kubernetes-embedded-resource"), True,
                           "must be false if x-kubernetes-int-or-string is true"))
    skip_any_of = s.get("anyOf") == _INT_OR_STRING_ANY_OF
    all_of = s.get("allOf") or []
    skip_first_all_of_any_of = bool(all_of) and all_of[0].get("anyOf") == _INT_OR_STRING_ANY_OF
    # CRDs forbid x-kubernetes-validations under every junctor (AllowNestedXValidations=false)
    out += _value_validation(s, skip_any_of, skip_first_all_of_any_of, path, allow_cel=False)
    check_meta = lvl == _ROOT or embedded
    if embedded and t != "object":
        if not t:
            out.append(required(child(path, "type"),
                                "must be object if x-kubernetes-embedded-resource is true"))
        else:
            out.append(invalid(child(path, "type"), t,
                               "must be object if x-kubernetes-embedded-resource is true"))
    elif not t and not int_or_string and not preserve:
        detail = {_ROOT: "must not be empty at the root",
                  _ITEM: "must not be empty for specified array items",
                  _FIELD: "must not be empty for specified object fields"}[lvl]
        out.append(required(child(path, "type"), detail))
    if embedded and addl is not None:
        out.append(forbidden(child(path, "additionalProperties"),
                             "must not be used if x-kubernetes-embedded-resource is set"))
    if lvl == _ROOT and t and t != "object":
        out.append(invalid(child(path, "type"), t, "must be object at the root"))
    for meta_field in ("kind", "apiVersion"):
        if check_meta and meta_field in props and props[meta_field].get("type", "") != "string":
            out.append(invalid(child(key(child(path, "properties"), meta_field), "type"),
                               props[meta_field].get("type", ""), "must be string"))
    if "metadata" in props:
        out += _metadata(props["metadata"], check_meta, lvl,
                         key(child(path, "properties"), "metadata"))
    if embedded and not preserve and not props:
        out.append(required(child(path, "properties"),
                            "must not be empty if x-kubernetes-embedded-resource is true without "
                            "x-kubernetes-preserve-unknown-fields"))
    return out


_DOC_KEYS = {"description", "example", "externalDocs", "title"}


def _metadata(s: dict[str, Any], check_meta: bool, lvl: int, path: str) -> list[StatusCause]:
    out: list[StatusCause] = []
    if check_meta and s.get("type", "") != "object":
        out.append(invalid(child(path, "type"), s.get("type", ""), "must be object"))
    if lvl == _ROOT:
        rest = {k: v for k, v in s.items() if k not in _DOC_KEYS and k not in ("type", "default")}
        props = rest.pop("properties", None) or {}
        if set(props) - {"name", "generateName"} or rest:
            out.append(forbidden(path, "must not specify anything other than name and "
                                       "generateName, but metadata is implicitly specified"))
    return out


def _value_validation(
    s: dict[str, Any], skip_any_of: bool, skip_first_all_of_any_of: bool, path: str,
    *, allow_cel: bool,
) -> list[StatusCause]:
    out: list[StatusCause] = []
    if not skip_any_of:
        for i, sub in enumerate(s.get("anyOf") or []):
            out += _nested(sub, False, index(child(path, "anyOf"), i), allow_cel=False)
    for i, sub in enumerate(s.get("allOf") or []):
        skip = skip_first_all_of_any_of and i == 0
        out += _nested(sub, skip, index(child(path, "allOf"), i), allow_cel=allow_cel)
    for i, sub in enumerate(s.get("oneOf") or []):
        out += _nested(sub, False, index(child(path, "oneOf"), i), allow_cel=False)
    if isinstance(s.get("not"), dict):
        out += _nested(s["not"], False, child(path, "not"), allow_cel=False)
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            re.compile(pattern)
        except re.error as err:
            out.append(invalid(child(path, "pattern"), pattern,
                               f"must be a valid regular expression, but isn't: {err}"))
    return out


def _nested(
    v: dict[str, Any], skip_any_of: bool, path: str, *, allow_cel: bool
) -> list[StatusCause]:
    out = _value_validation(v, skip_any_of, False, path, allow_cel=allow_cel)
    if isinstance(v.get("items"), dict):
        out += _nested(v["items"], False, child(path, "items"), allow_cel=allow_cel)
    for name, sub in (v.get("properties") or {}).items():
        out += _nested(sub, False, key(child(path, "properties"), name), allow_cel=allow_cel)
    for name, detail in _GENERIC_FORBIDDEN:
        if name == "nullable" and not v.get(name):
            continue
        if name in ("x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
                    "x-kubernetes-int-or-string") and not v.get(name):
            continue
        if name == "x-kubernetes-validations" and (allow_cel or not v.get(name)):
            continue
        if name in v and v[name] not in ("", None, []):
            out.append(forbidden(child(path, name), detail))
    if "additionalProperties" in v:
        out.append(forbidden(child(path, "additionalProperties"),
                             "must be undefined to be structural"))
    if "metadata" in (v.get("properties") or {}):
        out.append(forbidden(key(child(path, "properties"), "metadata"),
                             "must not be specified in a nested context"))
    return out
