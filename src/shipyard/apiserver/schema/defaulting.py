"""Structural defaulting, as kube-apiserver applies it to custom resources.

Upstream (`schema/defaulting`) does two passes, which `apply_defaults` runs in order:

1. `PruneNonNullableNullsWithoutDefaults`: a `null` under a property or additionalProperties
   schema that is neither `nullable` nor defaulted is removed, as if never sent.
2. `Default`: for an object that exists, every property with a `default` that is missing, or
   `null` and not `nullable`, gets a deep copy of the default; list items and additionalProperties
   values that are non-nullable nulls get their schema's default; then the walk descends into the
   (possibly just defaulted) children, so defaults nest.

Defaults are applied on decode (request version) and again when reading from storage; they are
never applied to a missing parent object.
"""

from __future__ import annotations

import copy
from typing import Any


def apply_defaults(obj: Any, schema: dict[str, Any]) -> None:
    """Default `obj` in place according to `schema`."""
    prune_nulls(obj, schema)
    default(obj, schema)


def _non_nullable_null(v: Any, s: dict[str, Any] | None) -> bool:
    return v is None and s is not None and not s.get("nullable")


def prune_nulls(x: Any, s: dict[str, Any]) -> None:
    if isinstance(x, dict):
        props: dict[str, Any] = s.get("properties") or {}
        addl = s.get("additionalProperties")
        for k in list(x):
            sub = props.get(k)
            if sub is None and isinstance(addl, dict):
                sub = addl
            if sub is None:
                continue
            v = x[k]
            if v is None and "default" not in sub and not sub.get("nullable"):
                del x[k]
            else:
                prune_nulls(v, sub)
    elif isinstance(x, list) and isinstance(s.get("items"), dict):
        for item in x:
            prune_nulls(item, s["items"])


def default(x: Any, s: dict[str, Any]) -> None:
    if isinstance(x, dict):
        props: dict[str, Any] = s.get("properties") or {}
        for k, sub in props.items():
            if "default" not in sub:
                continue
            if k not in x or _non_nullable_null(x[k], sub):
                x[k] = copy.deepcopy(sub["default"])
        addl = s.get("additionalProperties")
        for k in list(x):
            sub = props.get(k)
            if sub is not None:
                default(x[k], sub)
            elif isinstance(addl, dict):
                if _non_nullable_null(x[k], addl) and "default" in addl:
                    x[k] = copy.deepcopy(addl["default"])
                default(x[k], addl)
    elif isinstance(x, list):
        items = s.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(x):
                if _non_nullable_null(item, items) and "default" in items:
                    x[i] = copy.deepcopy(items["default"])
                default(x[i], items)
