"""Structural pruning: drop fields a CRD schema does not specify, and say which.

kube-apiserver prunes every custom resource it decodes (`schema/pruning`): fields absent from
`properties` are removed unless the node (or an ancestor) has
`x-kubernetes-preserve-unknown-fields: true`; `additionalProperties` schemas apply to every key;
list items follow `items`. The resource root and every `x-kubernetes-embedded-resource` keep
`apiVersion`, `kind` and `metadata`; inside those `metadata` objects, fields ObjectMeta does not
have are dropped too (upstream does it by round-tripping through ObjectMeta).

The removed paths (``spec.replias``, ``spec.items[0].x``) feed `fieldValidation`: Strict makes
them a 400 BadRequest on create/update (``strict decoding error: unknown field "spec.replias"``),
Warn makes one `Warning` header each (``unknown field "spec.replias"``), Ignore drops them silently.
"""

from __future__ import annotations

from typing import Any

OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
})
_TYPE_META = ("apiVersion", "kind")


def prune(obj: Any, schema: dict[str, Any] | None, *, is_root: bool = True) -> list[str]:
    """Remove unknown fields from `obj` in place; return their paths, sorted."""
    pruned: list[str] = []
    if schema is None:
        if isinstance(obj, dict):
            for k in sorted(obj):
                if is_root and (k in _TYPE_META or k == "metadata"):
                    continue
                pruned.append(k)
                del obj[k]
        return pruned
    _prune(obj, schema, "", pruned, resource=is_root)
    pruned.sort()
    return pruned


def _join(path: str, k: str) -> str:
    return f"{path}.{k}" if path else k


def _prune(x: Any, s: dict[str, Any], path: str, out: list[str], *, resource: bool) -> None:
    resource = resource or bool(s.get("x-kubernetes-embedded-resource"))
    if s.get("x-kubernetes-preserve-unknown-fields"):
        _skip(x, s, path, out, resource=resource)
        return
    if isinstance(x, dict):
        props: dict[str, Any] = s.get("properties") or {}
        addl = s.get("additionalProperties")
        for k in list(x):
            if resource and k in _TYPE_META:
                continue
            if resource and k == "metadata":
                _prune_meta(x[k], props.get("metadata"), _join(path, k), out)
                continue
            sub = props.get(k)
            if sub is not None:
                _prune(x[k], sub, _join(path, k), out, resource=False)
            elif isinstance(addl, dict):
                _prune(x[k], addl, _join(path, k), out, resource=False)
            elif addl is True:
                continue
            else:
                out.append(_join(path, k))
                del x[k]
    elif isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(x):
                _prune(item, items, f"{path}[{i}]", out, resource=False)


def _skip(x: Any, s: dict[str, Any], path: str, out: list[str], *, resource: bool) -> None:
    """Below preserve-unknown-fields: keep unknowns, still prune inside specified children."""
    if isinstance(x, dict):
        props: dict[str, Any] = s.get("properties") or {}
        addl = s.get("additionalProperties")
        for k, v in x.items():
            if resource and k == "metadata":
                _prune_meta(v, props.get("metadata"), _join(path, k), out)
            elif k in props:
                _prune(v, props[k], _join(path, k), out, resource=False)
            elif isinstance(addl, dict):
                _prune(v, addl, _join(path, k), out, resource=False)
    elif isinstance(x, list) and isinstance(s.get("items"), dict):
        for i, item in enumerate(x):
            _prune(item, s["items"], f"{path}[{i}]", out, resource=False)


def _prune_meta(meta: Any, _schema: dict[str, Any] | None, path: str, out: list[str]) -> None:
    if not isinstance(meta, dict):
        return
    for k in list(meta):
        if k not in OBJECT_META_FIELDS:
            out.append(_join(path, k))
            del meta[k]


def strict_error_message(paths: list[str]) -> str:
    """The BadRequest message for fieldValidation=Strict (create and update)."""
    return "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in paths)


def unknown_field_warnings(paths: list[str]) -> list[str]:
    """One `Warning` header text per path, for fieldValidation=Warn."""
    return [f'unknown field "{p}"' for p in paths]
