"""Patch an object once at the end of a reconcile, as upstream's `util/patch.Helper`.

A reconciler takes a deep copy of what it read (`snapshot`), mutates the copy, and calls
`patch(client, before, after)`. Spec/metadata changes go as one JSON merge patch on the object;
status changes as one merge patch on the `status` subresource. A change to a list under metadata
(finalizers, ownerReferences) carries `resourceVersion`, so it fails with Conflict instead of
silently dropping another writer's entry (merge patches replace lists whole). Returns the last
object the server returned (or `after` if nothing needed writing).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from shipyard.apimachinery.patching import create_merge_patch
from shipyard.client.interfaces import Object, Writer

_LIST_FIELDS = ("finalizers", "ownerReferences")


def snapshot(obj: Object) -> Object:
    """A deep copy of a JSON object. An orjson round trip is ~5x faster than `copy.deepcopy`
    (it was the top of the controllers' profile at 1,000 machines); anything orjson cannot
    encode falls back to deepcopy."""
    try:
        copied: Object = orjson.loads(orjson.dumps(obj))
    except TypeError:
        return copy.deepcopy(obj)
    return copied


def _ident(obj: Object) -> tuple[str, str, str, str | None]:
    meta = obj["metadata"]
    return (str(obj["apiVersion"]), str(obj["kind"]), str(meta["name"]),
            meta.get("namespace"))


async def patch(client: Writer, before: Object, after: Object) -> Object:
    api_version, kind, name, namespace = _ident(after)
    result = after
    main_before = {k: v for k, v in before.items() if k != "status"}
    main_after = {k: v for k, v in after.items() if k != "status"}
    diff: Any = create_merge_patch(main_before, main_after)
    if diff:
        meta_diff = diff.get("metadata") or {}
        if any(f in meta_diff for f in _LIST_FIELDS):
            meta_diff["resourceVersion"] = before["metadata"].get("resourceVersion")
            diff["metadata"] = meta_diff
        result = await client.patch(api_version, kind, name, diff, namespace)
    status_diff: Any = create_merge_patch({"status": before.get("status") or {}},
                                          {"status": after.get("status") or {}})
    if status_diff:
        result = await client.patch(api_version, kind, name, status_diff, namespace,
                                    subresource="status")
    return result


def add_finalizer(obj: Object, finalizer: str) -> bool:
    finalizers: list[str] = obj["metadata"].setdefault("finalizers", [])
    if finalizer in finalizers:
        return False
    finalizers.append(finalizer)
    return True


def remove_finalizer(obj: Object, finalizer: str) -> bool:
    finalizers: list[str] = obj["metadata"].get("finalizers") or []
    if finalizer not in finalizers:
        return False
    obj["metadata"]["finalizers"] = [f for f in finalizers if f != finalizer]
    return True
