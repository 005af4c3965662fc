"""ObjectMeta rules shared by every write: system fields, timestamps, generation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shipyard.apiserver.resources import ResourceInfo

# Built-in kinds whose registry strategies do not maintain metadata.generation.
_NO_GENERATION = frozenset(
    {
        ("", "namespaces"), ("", "secrets"), ("", "configmaps"), ("", "events"), ("", "nodes"),
        ("", "serviceaccounts"), ("coordination.k8s.io", "leases"), ("events.k8s.io", "events"),
    }
)

# Fields the server owns: clients cannot set or change them through the main resource.
SYSTEM_FIELDS = (
    "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def tracks_generation(info: ResourceInfo) -> bool:
    return (info.group, info.resource) not in _NO_GENERATION


def spec_view(obj: dict[str, Any], info: ResourceInfo) -> dict[str, Any]:
    """The part of an object whose change bumps generation: all but metadata (and status
    when it has its own subresource)."""
    drop = {"metadata", "status"} if info.status else {"metadata"}
    return {k: v for k, v in obj.items() if k not in drop}


def stamp_create(obj: dict[str, Any], info: ResourceInfo) -> None:
    meta = obj["metadata"]
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now()
    for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
        meta.pop(field, None)
    if tracks_generation(info):
        meta["generation"] = 1
    else:
        meta.pop("generation", None)


def carry_system_fields(new: dict[str, Any], old: dict[str, Any], info: ResourceInfo) -> None:
    """Keep what clients may not change, and bump generation when the spec changed."""
    new_meta = new.setdefault("metadata", {})
    old_meta = old["metadata"]
    for field in SYSTEM_FIELDS:
        if field in old_meta:
            new_meta[field] = old_meta[field]
        else:
            new_meta.pop(field, None)
    if "managedFields" not in new_meta and "managedFields" in old_meta:
        new_meta["managedFields"] = old_meta["managedFields"]
    if tracks_generation(info) and spec_view(new, info) != spec_view(old, info):
        new_meta["generation"] = int(old_meta.get("generation", 0)) + 1
