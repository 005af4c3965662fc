"""What kube-apiserver's typed decoding drops: empty ``omitempty`` maps and lists.

kube-apiserver decodes a built-in kind into its Go struct before storing it, and encodes the
struct on the way out, so a map or slice field tagged ``omitempty`` that arrives empty (``{}``,
``[]``) is simply gone: a ConfigMap emptied with ``{"data": {"$patch": "delete"}}`` has no
``data``. Fields without ``omitempty`` are the ones kube's OpenAPI lists as ``required``
(kube-openapi derives ``required`` from the missing tag), and they stay. Pointers to structs
(``securityContext: {}``) and plain structs stay as well: only maps and slices are omitted
here, since the schema cannot tell a zero-valued scalar that is a pointer from one that is not.

ObjectMeta is typed for every kind, custom resources included, so its maps and lists (labels,
annotations, finalizers, ownerReferences) vanish when empty whatever the kind.
"""

from __future__ import annotations

from typing import Any

_EMPTY_META = ("labels", "annotations", "finalizers", "ownerReferences")


def omit_empty_metadata(meta: Any) -> None:
    """Drop ObjectMeta's empty maps and lists from ``meta`` in place."""
    if isinstance(meta, dict):
        for name in _EMPTY_META:
            if meta.get(name, None) in ({}, []):
                del meta[name]


def omit_empty(obj: Any, schema: dict[str, Any] | None) -> None:
    """Drop, in place, every empty map or list of ``obj`` that ``schema`` declares and does not
    require, at any depth; what the schema leaves open is kept as sent."""
    if schema is not None:
        _walk(obj, schema)


def _omittable(schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return False
    if schema.get("type") == "array":
        return True
    return isinstance(schema.get("additionalProperties"), dict) and "properties" not in schema


def _walk(x: Any, s: dict[str, Any]) -> None:
    if isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for item in x:
                _walk(item, items)
        return
    if not isinstance(x, dict):
        return  # fields a partly typed schema leaves open are kept as sent
    props: dict[str, Any] = s.get("properties") or {}
    addl = s.get("additionalProperties")
    required = s.get("required") or ()
    for key in list(x):
        sub = props.get(key)
        if sub is None:
            if isinstance(addl, dict):
                _walk(x[key], addl)
            continue
        value = x[key]
        _walk(value, sub)
        if value in ({}, []) and key not in required and _omittable(sub):
            del x[key]
