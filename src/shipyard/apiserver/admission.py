"""Admission for every write: metadata rules, then the kind's schema (prune, default, validate,
CEL), in kube-apiserver's order, with its fieldValidation semantics.

Unknown fields are pruned always; under ``Strict`` they fail the request (400 on create and
update, as the strict decoder does), under ``Warn`` each becomes a Warning header, under
``Ignore`` they vanish silently. All validation causes of one request are reported together in
one 422, each with its field path.
"""

from __future__ import annotations

from typing import Any, cast

from shipyard.apimachinery import errors
from shipyard.apimachinery.errors import StatusCause
from shipyard.apimachinery.jsonpath import get_path
from shipyard.apimachinery.validation import validate_object_meta
from shipyard.apiserver.resources import ResourceInfo
from shipyard.apiserver.schema.admission import CompiledSchema
from shipyard.apiserver.schema.crd import validate_crd
from shipyard.apiserver.schema.omitempty import omit_empty, omit_empty_metadata

FIELD_VALIDATION = ("Strict", "Warn", "Ignore")

# Kinds whose names need only be valid path segments (kube's ValidatePathSegmentName).
_PATH_SEGMENT_NAMES = frozenset({("rbac.authorization.k8s.io", "roles")})
# Kinds whose names must be DNS-1123 labels.
_LABEL_NAMES = frozenset({("", "namespaces")})


class Admission:
    def __init__(self) -> None:
        # Keyed by resource; holds the schema dict itself so a replaced schema is never
        # mistaken for the cached one.
        self._compiled: dict[
            tuple[str, str, str], tuple[dict[str, Any] | None, CompiledSchema | None]
        ] = {}

    def compiled(self, info: ResourceInfo) -> CompiledSchema | None:
        key = (info.group, info.version, info.resource)
        cached = self._compiled.get(key)
        if cached is not None and (cached[0] is info.schema or cached[0] == info.schema):
            return cached[1]
        compiled = CompiledSchema.from_schema(info.schema) if info.schema is not None else None
        self._compiled[key] = (info.schema, compiled)
        return compiled

    def forget(self, info: ResourceInfo) -> None:
        self._compiled.pop((info.group, info.version, info.resource), None)

    def admit(
        self,
        info: ResourceInfo,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        field_validation: str,
        *,
        patch: bool = False,
    ) -> list[str]:
        """Prune, default and validate ``obj`` in place; return warnings or raise."""
        if field_validation not in FIELD_VALIDATION:
            raise errors.BadRequest(
                f"Invalid field validation directive: {field_validation!r}; must be one of "
                "Strict, Warn, Ignore"
            )
        # What decoding into kube's typed structs would drop, before anything looks at it.
        omit_empty_metadata(obj.get("metadata"))
        if info.builtin:
            omit_empty(obj, info.schema)
        name = str(obj.get("metadata", {}).get("name", ""))
        key = (info.group, info.resource)
        name_rule = (
            "path" if key in _PATH_SEGMENT_NAMES else "label" if key in _LABEL_NAMES
            else "subdomain"
        )
        causes = list(validate_object_meta(
            obj.get("metadata", {}), namespaced=info.namespaced, name_validator=name_rule
        ))
        warnings: list[str] = []
        compiled = self.compiled(info)
        if compiled is not None:
            result = compiled.admit(obj, old, field_validation=field_validation)
            if result.strict_error is not None:
                if patch:
                    raise errors.Invalid(result.strict_error, details={
                        "name": name, "group": info.group, "kind": info.kind, "causes": [
                            {"reason": "FieldValueInvalid", "message": f'unknown field "{f}"',
                             "field": f} for f in result.unknown_fields
                        ]})
                # The decoder's words, as kube wraps them for a create or update.
                raise errors.BadRequest(
                    f'{info.kind} in version "{info.version}" cannot be handled as a '
                    f"{info.kind}: {result.strict_error}")
            if field_validation == "Warn":
                warnings.extend(f'unknown field "{f}"' for f in result.unknown_fields)
            warnings.extend(result.warnings)
            causes.extend(result.causes)
        if info.scale is not None and not info.builtin:
            causes.extend(_scale_causes(info, obj))
        strategy = info.extra.get("admit")  # a built-in's rules beyond its schema
        if strategy is not None:
            causes.extend(strategy(obj, old))
        if info.resource == "customresourcedefinitions" and info.group == "apiextensions.k8s.io":
            _default_crd_names(obj)
            causes.extend(validate_crd(obj, old))
        if causes:
            # StatusCause.field is omitempty. Copies: causes may be shared constants.
            causes = [cast(StatusCause, {k: v for k, v in c.items() if k != "field" or v})
                      for c in causes]
            raise errors.invalid(info.kind, info.group, name, causes)
        return warnings


def _default_crd_names(crd: dict[str, Any]) -> None:
    """apiextensions' SetDefaults: singular and listKind follow from kind when left out."""
    names = (crd.get("spec") or {}).get("names")
    if isinstance(names, dict) and isinstance(names.get("kind"), str) and names["kind"]:
        if not names.get("singular"):
            names["singular"] = names["kind"].lower()
        if not names.get("listKind"):
            names["listKind"] = names["kind"] + "List"


def _scale_causes(info: ResourceInfo, obj: dict[str, Any]) -> list[StatusCause]:
    """The scale subresource's own check of its replica paths (customresource validation):
    a value there must be a non-negative integer, whatever the schema says."""
    assert info.scale is not None
    out: list[StatusCause] = []
    for path in (info.scale.spec_replicas_path, info.scale.status_replicas_path):
        value = get_path(obj, path)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            out.append({"reason": "FieldValueInvalid", "field": path,
                        "message": f"Invalid value: {value!r}: should be a non-negative integer"})
    return out
