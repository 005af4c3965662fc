"""Static validation of a CustomResourceDefinition object (apiextensions.k8s.io/v1).

The subset of kube-apiserver's `ValidateCustomResourceDefinition(Update)` that decides whether a
CRD may be stored: name is `<plural>.<group>`, group, scope, names, versions (DNS-1035 names,
unique, exactly one storage version), conversion, printer columns, selectable fields, and each
version's schema (OpenAPI subset, structurality, CEL rules compile). On update group and
names.plural are immutable, and scope and names.kind too once the CRD is Established.

Path quirk kept from upstream: the internal type hoists a schema that all versions share to
`spec.validation`, so errors in it read ``spec.validation.openAPIV3Schema...``; per-version
schemas read ``spec.versions[i].schema.openAPIV3Schema...``. Accepted-names conflicts between
CRDs are decided by the CRD controller, not here.
"""

from __future__ import annotations

import re
from typing import Any

from shipyard.apimachinery.errors import StatusCause

from . import fielderrors as fe
from .cel import compile_rules
from .structural import check_structural
from .validation import dns1035_errors

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    r"for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_COLUMN_TYPES = ["boolean", "date", "integer", "number", "string"]
_COLUMN_FORMATS = ["byte", "date", "date-time", "double", "float", "int32", "int64", "password"]
MAX_SELECTABLE_FIELDS = 8


def subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _SUBDOMAIN.match(value):
        errs.append(_SUBDOMAIN_MSG)
    return errs


def validate_crd(crd: dict[str, Any], old: dict[str, Any] | None = None) -> list[StatusCause]:
    """Every reason kube-apiserver would refuse to store `crd` (given the stored `old`)."""
    spec: dict[str, Any] = crd.get("spec") or {}
    names: dict[str, Any] = spec.get("names") or {}
    group = spec.get("group", "") or ""
    out: list[StatusCause] = []
    name = (crd.get("metadata") or {}).get("name", "")
    if not name:
        out.append(fe.required("metadata.name", "name or generateName is required"))
    else:
        msgs = subdomain_errors(name)
        if name != f"{names.get('plural', '')}.{group}":
            msgs.append('must be spec.names.plural+"."+spec.group')
        out += [fe.invalid("metadata.name", name, m) for m in msgs]
    if not group:
        out.append(fe.required("spec.group"))
    elif errs := subdomain_errors(group):
        out.append(fe.invalid("spec.group", group, ",".join(errs)))
    elif "." not in group:
        out.append(fe.invalid("spec.group", group, "should be a domain with at least one dot"))
    scope = spec.get("scope", "") or ""
    if not scope:
        out.append(fe.required("spec.scope"))
    elif scope not in ("Cluster", "Namespaced"):
        out.append(fe.not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    out += _versions(spec)
    for field_name in ("plural", "singular", "kind", "listKind"):
        if not names.get(field_name):
            out.append(fe.required(f"spec.names.{field_name}"))
    out += _names(names)
    out += _conversion(spec.get("conversion"))
    if old is not None:
        out += _immutable(spec, old.get("spec") or {}, _established(old))
    return out


def _shared_schema(versions: list[dict[str, Any]]) -> bool:
    schemas = [(v.get("schema") or {}).get("openAPIV3Schema") for v in versions]
    return len(schemas) > 0 and all(s is not None and s == schemas[0] for s in schemas)


def _versions(spec: dict[str, Any]) -> list[StatusCause]:
    out: list[StatusCause] = []
    versions: list[dict[str, Any]] = spec.get("versions") or []
    if not versions:
        out.append(fe.invalid("spec.versions", [], "must have exactly one version marked as "
                                                   "storage version"))
        return out
    shared = _shared_schema(versions)
    seen: set[str] = set()
    unique = True
    for i, v in enumerate(versions):
        vpath = f"spec.versions[{i}]"
        vname = v.get("name", "") or ""
        unique &= vname not in seen
        seen.add(vname)
        if errs := dns1035_errors(vname):
            out.append(fe.invalid(f"{vpath}.name", vname, ",".join(errs)))
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            out.append(fe.required(f"{vpath}.schema.openAPIV3Schema", "schemas are required"))
        elif not shared or i == 0:
            spath = ("spec.validation.openAPIV3Schema" if shared
                     else f"{vpath}.schema.openAPIV3Schema")
            out += check_structural(schema, spath)
            out += compile_rules(schema, spath).errors
        for j, col in enumerate(v.get("additionalPrinterColumns") or []):
            out += _column(col, f"{vpath}.additionalPrinterColumns[{j}]")
        out += _selectable(v.get("selectableFields") or [], schema, f"{vpath}.selectableFields")
    if not unique:
        out.append({"reason": "FieldValueInvalid", "field": "spec.versions",
                    "message": "Invalid value: ...: must contain unique version names"})
    if sum(bool(v.get("storage")) for v in versions) != 1:
        out.append({"reason": "FieldValueInvalid", "field": "spec.versions",
                    "message": "Invalid value: ...: must have exactly one version marked as "
                               "storage version"})
    return out


def _names(names: dict[str, Any]) -> list[StatusCause]:
    out: list[StatusCause] = []
    for f in ("plural", "singular"):
        value = names.get(f) or ""
        if value and (errs := dns1035_errors(value)):
            out.append(fe.invalid(f"spec.names.{f}", value, ",".join(errs)))
    for f in ("kind", "listKind"):
        value = names.get(f) or ""
        if value and (errs := dns1035_errors(value.lower())):
            out.append(fe.invalid(f"spec.names.{f}", value,
                                  "may have mixed case, but should otherwise match: "
                                  + ",".join(errs)))
    for f in ("shortNames", "categories"):
        for i, value in enumerate(names.get(f) or []):
            if errs := dns1035_errors(value):
                out.append(fe.invalid(f"spec.names.{f}[{i}]", value, ",".join(errs)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        out.append(fe.invalid("spec.names.listKind", names["listKind"],
                              "kind and listKind may not be the same"))
    return out


def _column(col: dict[str, Any], path: str) -> list[StatusCause]:
    out: list[StatusCause] = []
    if not col.get("name"):
        out.append(fe.required(f"{path}.name"))
    t = col.get("type") or ""
    if not t:
        out.append(fe.required(f"{path}.type", f"must be one of {', '.join(_COLUMN_TYPES)}"))
    elif t not in _COLUMN_TYPES:
        out.append(fe.not_supported(f"{path}.type", t, _COLUMN_TYPES))
    fmt = col.get("format") or ""
    if fmt and fmt not in _COLUMN_FORMATS:
        out.append(fe.not_supported(f"{path}.format", fmt, _COLUMN_FORMATS))
    jp = col.get("jsonPath") or ""
    if not jp:
        out.append(fe.required(f"{path}.JSONPath"))
    else:
        out += _simple_json_path(jp, f"{path}.JSONPath")
    return out


def _simple_json_path(jp: str, path: str) -> list[StatusCause]:
    if not jp.startswith("."):
        return [fe.invalid(path, jp, "must be a simple json path starting with .")]
    return []


def _selectable(fields: list[dict[str, Any]], schema: dict[str, Any] | None,
                path: str) -> list[StatusCause]:
    out: list[StatusCause] = []
    if len(fields) > MAX_SELECTABLE_FIELDS:
        out.append(fe.too_many(path, len(fields), MAX_SELECTABLE_FIELDS))
    seen: set[str] = set()
    for i, f in enumerate(fields):
        jp = f.get("jsonPath") or ""
        fpath = f"{path}[{i}].jsonPath"
        if not jp:
            out.append(fe.required(fpath))
            continue
        if jp in seen:
            out.append(fe.duplicate(fpath, jp))
        seen.add(jp)
        node = schema
        for part in jp.lstrip(".").split(".") if jp.startswith(".") else [""]:
            node = ((node or {}).get("properties") or {}).get(part) if part else None
        if node is None:
            out.append(fe.invalid(fpath, jp, "is an invalid path: does not refer to a valid "
                                              "field"))
        elif node.get("type") not in ("string", "integer", "boolean"):
            out.append(fe.invalid(fpath, node.get("type", ""),
                                  "must point to a field of type string, boolean or integer. "
                                  "Enum string fields and strings with formats are allowed."))
    return out


def _conversion(conversion: dict[str, Any] | None) -> list[StatusCause]:
    if conversion is None:
        return []
    out: list[StatusCause] = []
    strategy = conversion.get("strategy") or ""
    if not strategy:
        out.append(fe.required("spec.conversion.strategy"))
    elif strategy not in ("None", "Webhook"):
        out.append(fe.not_supported("spec.conversion.strategy", strategy, ["None", "Webhook"]))
    webhook = conversion.get("webhook")
    if strategy == "Webhook":
        if not webhook or not webhook.get("clientConfig"):
            out.append(fe.required("spec.conversion.webhookClientConfig",
                                   "required when strategy is set to Webhook"))
        else:
            cc = webhook["clientConfig"]
            if ("url" in cc) == ("service" in cc):
                out.append(fe.required("spec.conversion.webhookClientConfig",
                                       "exactly one of url or service is required"))
        versions = (webhook or {}).get("conversionReviewVersions") or []
        if not versions:
            out.append(fe.required("spec.conversion.conversionReviewVersions"))
        elif not set(versions) & {"v1", "v1beta1"}:
            out.append({"reason": "FieldValueInvalid",
                        "field": "spec.conversion.conversionReviewVersions",
                        "message": "Invalid value: []string{"
                                   + ", ".join(fe.go_quote(v) for v in versions)
                                   + "}: must include at least one of v1, v1beta1"})
    elif webhook:
        out.append(fe.forbidden("spec.conversion.webhookClientConfig",
                                "should not be set when strategy is not set to Webhook"))
    return out


def _established(crd: dict[str, Any]) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def _immutable(spec: dict[str, Any], old: dict[str, Any], established: bool) -> list[StatusCause]:
    out: list[StatusCause] = []
    checks = [("spec.group", spec.get("group"), old.get("group")),
              ("spec.names.plural", (spec.get("names") or {}).get("plural"),
               (old.get("names") or {}).get("plural"))]
    if established:
        checks += [("spec.scope", spec.get("scope"), old.get("scope")),
                   ("spec.names.kind", (spec.get("names") or {}).get("kind"),
                    (old.get("names") or {}).get("kind"))]
    for path, new, prev in checks:
        if new != prev:
            out.append(fe.invalid(path, new, "field is immutable"))
    return out
