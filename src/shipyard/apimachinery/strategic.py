"""Strategic merge patch (application/strategic-merge-patch+json) for the built-in kinds we serve.

kubectl (apply, label, annotate, edit) and the Python client send strategic merge patches for
every kind compiled into them: Namespace, ConfigMap, Secret, Event, Node, ServiceAccount, Lease.
Without it `kubectl apply` on a ConfigMap fails. A strategic merge patch is a JSON merge patch
plus knowledge of the Go structs: lists declared `patchStrategy:"merge"` merge by a key instead
of being replaced, and the patch may carry directives:

* `$patch: replace | delete` inside a map (replace the map / empty it), `$patch: replace |
  delete` as a list element (replace the list / delete the element with that merge key);
* `$setElementOrder/<list>`: the order the patched list must end up in;
* `$deleteFromPrimitiveList/<list>`: values to remove from a merged list of scalars;
* `$retainKeys`: drop every key of the map not named in it.

`PatchMeta` is the slice of the Go struct tags the algorithm needs, one node per field; fields
absent from a node get defaults (maps merge recursively, lists are replaced). Errors map as
`handlers/patch.go` maps them: malformed directives are 400 BadRequest, lists of lists and
`$retainKeys` mismatches are 422 Invalid, and the untyped errors of the Go library (missing merge
key, unknown `$patch`) surface as kube's 500 with the library's message. Inputs are never
mutated.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.apimachinery.errors import BadRequest, Invalid, StatusError
from shipyard.apimachinery.patching import PATCH_REJECTED_MESSAGE

__all__ = [
    "OBJECT_META",
    "PatchMeta",
    "apply_strategic_merge_patch",
    "patch_meta_for",
]

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"

# mergepatch's sentinel errors, by the code kube-apiserver answers them with.
ERR_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"
ERR_RETAIN_KEYS_MISMATCH = "patch content doesn't match retainKeys list"


@dataclass(frozen=True)
class PatchMeta:
    """How to merge the value at one field: the Go tags patchStrategy / patchMergeKey.

    `strategy` is "" (default: replace lists, merge maps), "merge", "replace" or "retainKeys"
    (comma-separated as in Go). `fields` describes struct members; `items` the element type of a
    list of objects (its `fields`).
    """

    strategy: str = ""
    merge_key: str = ""
    fields: Mapping[str, PatchMeta] = field(default_factory=dict)
    items: PatchMeta | None = None

    def child(self, name: str) -> PatchMeta:
        return self.fields.get(name, _DEFAULT)

    def element(self) -> PatchMeta:
        return self.items or _DEFAULT

    @property
    def merges_list(self) -> bool:
        return "merge" in self.strategy.split(",")

    @property
    def replaces_map(self) -> bool:
        return "replace" in self.strategy.split(",")


_DEFAULT = PatchMeta()
_MERGE_BY_TYPE = PatchMeta(strategy="merge", merge_key="type")

OBJECT_META = PatchMeta(fields={
    "finalizers": PatchMeta(strategy="merge"),
    "ownerReferences": PatchMeta(strategy="merge", merge_key="uid"),
})


def _kind(**fields: PatchMeta) -> PatchMeta:
    return PatchMeta(fields={"metadata": OBJECT_META, **fields})


# Transcribed from k8s.io/api struct tags (core/v1, coordination/v1, events/v1). Lists not named
# here (Node spec.taints, status.images, ServiceAccount imagePullSecrets, Namespace
# spec.finalizers, ...) carry no patchStrategy and are replaced whole.
_KINDS: dict[tuple[str, str], PatchMeta] = {
    ("", "Namespace"): _kind(),
    ("", "ConfigMap"): _kind(),
    ("", "Secret"): _kind(),
    ("", "Event"): _kind(),
    ("", "ServiceAccount"): _kind(secrets=PatchMeta(strategy="merge", merge_key="name")),
    ("", "Node"): _kind(
        spec=PatchMeta(fields={"podCIDRs": PatchMeta(strategy="merge")}),
        status=PatchMeta(fields={"addresses": _MERGE_BY_TYPE, "conditions": _MERGE_BY_TYPE}),
    ),
    ("coordination.k8s.io", "Lease"): _kind(),
    ("events.k8s.io", "Event"): _kind(),
}


def patch_meta_for(group: str, kind: str,
                   schema: Mapping[str, Any] | None = None) -> PatchMeta | None:
    """How to merge a built-in kind: the transcribed table above, else, for a built-in kind
    whose OpenAPI ``schema`` is given, what that says (the ``x-kubernetes-patch-strategy`` and
    ``x-kubernetes-patch-merge-key`` extensions kube publishes from the same struct tags),
    with ObjectMeta's rules either way. None: not a built-in kind, no strategic merge patch."""
    known = _KINDS.get((group, kind))
    if known is not None or schema is None:
        return known
    cached = _DERIVED.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    derived = patch_meta_from_schema(schema)
    meta = PatchMeta(strategy=derived.strategy, merge_key=derived.merge_key,
                     fields={**derived.fields, "metadata": OBJECT_META}, items=derived.items)
    if schema:  # built-in schemas live as long as the process: derive each once
        _DERIVED[id(schema)] = (schema, meta)
    return meta


_DERIVED: dict[int, tuple[Mapping[str, Any], PatchMeta]] = {}


def patch_meta_from_schema(schema: Mapping[str, Any]) -> PatchMeta:
    """The patch metadata an OpenAPI (structural) schema carries, at every depth."""
    props = schema.get("properties") or {}
    items = schema.get("items")
    return PatchMeta(
        strategy=str(schema.get("x-kubernetes-patch-strategy") or ""),
        merge_key=str(schema.get("x-kubernetes-patch-merge-key") or ""),
        fields={name: patch_meta_from_schema(sub) for name, sub in props.items()
                if isinstance(sub, Mapping)},
        items=patch_meta_from_schema(items) if isinstance(items, Mapping) else None,
    )


def apply_strategic_merge_patch(doc: Mapping[str, Any], patch: Any, schema: PatchMeta) -> Any:
    """Apply a strategic merge patch to a copy of `doc` (kube's StrategicMergeMapPatch)."""
    if not isinstance(patch, Mapping):
        kind = "array" if isinstance(patch, list) else type(patch).__name__
        raise BadRequest(
            f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
        )
    return _merge_map(copy.deepcopy(dict(doc)), copy.deepcopy(dict(patch)), schema)


def _merge_map(original: dict[str, Any], patch: dict[str, Any], meta: PatchMeta) -> Any:
    if DIRECTIVE in patch:
        directive = patch.pop(DIRECTIVE)
        if directive == "replace":
            return _merge_map({}, patch, meta)
        if directive == "delete":
            return {}
        patch[DIRECTIVE] = directive
        raise StatusError(f"unknown patch type: {_go(directive)} in map: {_go(patch)}")

    if RETAIN_KEYS in patch:
        _apply_retain_keys(original, patch)

    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        _apply_set_element_order(original, patch, key, meta)

    deletions: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            deletions.append((key[len(DELETE_FROM_PRIMITIVE_LIST):], value))
            continue
        if value is None:
            original.pop(key, None)
            continue
        child = meta.child(key)
        current = original.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            original[key] = (_merge_map({}, value, child) if child.replaces_map
                             else _merge_map(current, value, child))
        elif isinstance(current, list) and isinstance(value, list) and child.merges_list:
            original[key] = _merge_list(current, value, child)
        else:
            original[key] = _fresh(value, child)

    for key, values in deletions:
        if not isinstance(values, list):
            raise BadRequest(ERR_BAD_PRIMITIVE_LIST)
        current = original.get(key)
        if isinstance(current, list):
            original[key] = [v for v in current if v not in values]
    return original


def _fresh(value: Any, meta: PatchMeta) -> Any:
    """A patch value landing where there is nothing (of its type) to merge into."""
    if isinstance(value, dict):
        return _merge_map({}, value, meta)
    if isinstance(value, list) and meta.merges_list:
        return _merge_list([], value, meta)
    return value


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise BadRequest(ERR_BAD_RETAIN_KEYS)
    keep = set(retain)
    for key, value in patch.items():
        if value is None or key.startswith((SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST)):
            continue
        if key not in keep:
            raise Invalid(PATCH_REJECTED_MESSAGE)
    for key in [k for k in original if k not in keep]:
        del original[key]


def _apply_set_element_order(
    original: dict[str, Any], patch: dict[str, Any], key: str, meta: PatchMeta
) -> None:
    order = patch.pop(key)
    if not isinstance(order, list):
        raise BadRequest(ERR_BAD_SET_ELEMENT_ORDER)
    name = key[len(SET_ELEMENT_ORDER):]
    if name in patch and patch[name] is None:
        return  # the list itself is deleted; there is nothing to order
    child = meta.child(name)
    current = original.get(name)
    current_list = current if isinstance(current, list) else []
    patch_list = patch.pop(name, [])
    if not isinstance(patch_list, list):
        patch[name] = patch_list
        return
    if child.merges_list:
        merged = _merge_list(current_list, patch_list, child)
    else:
        merged = _fresh(patch_list, child)
    if not merged and name not in original:
        return
    ordered = _partition_and_order(merged, order, current_list, child.merge_key)
    original[name] = ordered


def _merge_list(original: list[Any], patch: list[Any], meta: PatchMeta) -> list[Any]:
    if not original and not patch:
        return original
    if any(isinstance(v, list) for v in original + patch):
        raise Invalid(PATCH_REJECTED_MESSAGE)  # ErrNoListOfLists
    if not any(isinstance(v, dict) for v in original + patch):
        merged = list(original)
        for value in patch:
            if value not in merged:
                merged.append(value)
        return _partition_and_order(merged, patch, original, "")

    key = meta.merge_key
    if not key:
        raise StatusError("cannot merge lists without merge key")
    plain: list[dict[str, Any]] = []
    replace = False
    for element in patch:
        if not isinstance(element, dict):
            raise StatusError(f"expected a map, but received a {_go_type(element)}")
        if DIRECTIVE not in element:
            plain.append(element)
            continue
        directive = element[DIRECTIVE]
        if directive == "delete":
            if key not in element:
                raise StatusError(f"map: {_go(element)} does not contain declared merge key: {key}")
            original = [o for o in original if not _same_key(o, element, key)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise StatusError("merging lists cannot yet be specified in the patch")
        else:
            raise StatusError(f"unknown patch type: {_go(directive)} in map: {_go(element)}")
    element_meta = meta.element()
    if replace:
        original = [_merge_map({}, e, element_meta) for e in plain]
        plain = []
    merged = list(original)
    for element in plain:
        if key not in element:
            raise StatusError(f"map: {_go(element)} does not contain declared merge key: {key}")
        for i, existing in enumerate(merged):
            if _same_key(existing, element, key):
                merged[i] = _merge_map(existing, element, element_meta)
                break
        else:
            merged.append(_merge_map({}, element, element_meta))
    return _partition_and_order(merged, plain, original, key)


def _same_key(a: Any, b: Any, key: str) -> bool:
    return isinstance(a, dict) and isinstance(b, dict) and key in a and a.get(key) == b.get(key)


def _index(items: list[Any], item: Any, key: str) -> int:
    for i, candidate in enumerate(items):
        if (_same_key(candidate, item, key) if key else candidate == item):
            return i
    return -1


def _partition_and_order(
    merged: list[Any], patch_order: list[Any], server_order: list[Any], key: str
) -> list[Any]:
    """Items named by the patch keep the patch's order; the server's other items keep theirs and
    are interleaved where the live list had them (kube's normalizeElementOrder)."""
    in_patch = [m for m in merged if _index(patch_order, m, key) >= 0]
    server_only = [m for m in merged if _index(patch_order, m, key) < 0]

    def by(order: list[Any]) -> Any:
        def rank(item: Any) -> int:
            i = _index(order, item, key)
            return i if i >= 0 else len(order)
        return rank

    in_patch.sort(key=by(patch_order))
    server_only.sort(key=by(server_order))
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) or j < len(in_patch):
        if i >= len(server_only):
            result.append(in_patch[j])
            j += 1
        elif j >= len(in_patch):
            result.append(server_only[i])
            i += 1
        else:
            left = _index(server_order, server_only[i], key)
            right = _index(server_order, in_patch[j], key)
            if left >= 0 and right >= 0 and left < right:
                result.append(server_only[i])
                i += 1
            else:
                result.append(in_patch[j])
                j += 1
    return result


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    return "string"


def _go(value: Any) -> str:
    """Go's %v of a decoded JSON value, for the library's error messages."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    return str(value)
