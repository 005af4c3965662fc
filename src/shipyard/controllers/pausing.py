"""Pause: `Cluster.spec.paused` pauses everything of the cluster, the annotation
`cluster.x-k8s.io/paused` (any value) pauses one object. A paused object is not reconciled
(deletion included), but its `Paused` condition still reports the state, as upstream's
`paused.EnsurePausedCondition`."""

from __future__ import annotations

from shipyard.api.core.constants import (
    NOT_PAUSED_REASON,
    PAUSED_ANNOTATION,
    PAUSED_CONDITION,
    PAUSED_REASON,
)
from shipyard.client.interfaces import Object
from shipyard.controllers import conditions


def has_paused_annotation(obj: Object) -> bool:
    return PAUSED_ANNOTATION in ((obj.get("metadata") or {}).get("annotations") or {})


def is_paused(cluster: Object | None, obj: Object) -> bool:
    if cluster is not None and (cluster.get("spec") or {}).get("paused"):
        return True
    return has_paused_annotation(obj)


def set_paused_condition(cluster: Object | None, obj: Object) -> bool:
    """Set the Paused condition to reflect `is_paused`; True if it changed."""
    if is_paused(cluster, obj):
        paused_by = ("Cluster spec.paused is set"
                     if cluster is not None and (cluster.get("spec") or {}).get("paused")
                     else f"annotation {PAUSED_ANNOTATION} is set")
        return conditions.set_condition(obj, PAUSED_CONDITION, "True", PAUSED_REASON, paused_by)
    return conditions.set_condition(obj, PAUSED_CONDITION, "False", NOT_PAUSED_REASON)
