"""Owner references and the cluster-name label, the two links `move`, garbage collection and
every Cluster API controller use to chain an object to its Cluster.

Contract: `owner_reference(owner, controller=...)` builds the reference from a live object
(its apiVersion, kind, name and uid); `ensure_owner_reference(obj, ref)` adds or refreshes it in
`obj["metadata"]["ownerReferences"]` (matched by group, kind and name, so a version change of
the owner replaces the old entry) and returns True if it changed; `is_controlled_by` and
`has_owner` read them. Nothing here talks to the API: callers patch what changed.
"""

from __future__ import annotations

from typing import Any

from shipyard.api.core.constants import CLUSTER_NAME_LABEL, GROUP
from shipyard.client.interfaces import GVK, Object, OwnerReference


def owner_reference(owner: Object, *, controller: bool = False,
                    block_owner_deletion: bool = True) -> OwnerReference:
    meta = owner["metadata"]
    ref: OwnerReference = {"apiVersion": str(owner["apiVersion"]), "kind": str(owner["kind"]),
                           "name": str(meta["name"]), "uid": str(meta["uid"])}
    if controller:
        ref["controller"] = True
    if block_owner_deletion:
        ref["blockOwnerDeletion"] = True
    return ref


def _same_owner(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a.get("kind") == b.get("kind") and a.get("name") == b.get("name")
            and GVK(str(a.get("apiVersion", "")), "").group
            == GVK(str(b.get("apiVersion", "")), "").group)


def ensure_owner_reference(obj: Object, ref: OwnerReference) -> bool:
    """Add `ref` (or replace the entry for the same group/kind/name); True if changed."""
    refs: list[dict[str, Any]] = obj.setdefault("metadata", {}).setdefault("ownerReferences", [])
    for i, existing in enumerate(refs):
        if _same_owner(existing, dict(ref)):
            merged = {**existing, **ref}
            if merged == existing:
                return False
            refs[i] = merged
            return True
    refs.append(dict(ref))
    return True


def remove_owner_reference(obj: Object, owner: Object) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    kept = [r for r in refs if not _same_owner(r, {"apiVersion": owner["apiVersion"],
                                                   "kind": owner["kind"],
                                                   "name": owner["metadata"]["name"]})]
    if len(kept) == len(refs):
        return False
    obj["metadata"]["ownerReferences"] = kept
    return True


def has_owner(obj: Object, group: str, kinds: tuple[str, ...]) -> bool:
    """True if some ownerReference points at one of `kinds` in `group`."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") in kinds and GVK(str(ref.get("apiVersion", "")), "").group == group:
            return True
    return False


def controller_of(obj: Object) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def is_controlled_by(obj: Object, owner: Object) -> bool:
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == owner["metadata"].get("uid")


def cluster_name_of(obj: Object) -> str | None:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    name = labels.get(CLUSTER_NAME_LABEL)
    return str(name) if name else None


def ensure_cluster_label(obj: Object, cluster_name: str) -> bool:
    labels: dict[str, str] = obj.setdefault("metadata", {}).setdefault("labels", {})
    if labels.get(CLUSTER_NAME_LABEL) == cluster_name:
        return False
    labels[CLUSTER_NAME_LABEL] = cluster_name
    return True


def owner_machine_name(obj: Object) -> str | None:
    """The name of the Cluster API Machine owning `obj` (an infrastructure machine or a
    bootstrap config), or None before the Machine controller has adopted it."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Machine" and str(ref.get("apiVersion", "")).startswith(
                GROUP + "/"):
            return str(ref["name"])
    return None
