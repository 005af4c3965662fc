"""Conditions on plain object dicts: v1beta2 `metav1.Condition`s and the v1beta1 ones kept
under `status.deprecated.v1beta1`.

Why here: every core controller writes conditions, and Cluster API's rules are easy to get
subtly wrong (lastTransitionTime moves only when the status flips; observedGeneration follows
the object's generation; one condition per type). The contract, as upstream's `util/conditions`:

- `set_condition(obj, type, status, reason, message)` upserts `status.conditions[type]` and
  returns True if anything changed; `lastTransitionTime` is kept unless `status` changed.
- `get_condition`/`is_true`/`is_false` read them; a missing condition is neither true nor false.
- `set_v1beta1_condition` does the same for `status.deprecated.v1beta1.conditions` (with the
  v1beta1 `severity`, only meaningful when the status is "False").
- `mirror(source, type)` reads a provider object's Ready condition in either shape.

Objects are mutated in place; callers patch the status once at the end of a reconcile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from shipyard.api.core import constants as capi
from shipyard.client.interfaces import Object

Status = Literal["True", "False", "Unknown"]


def now() -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serialises."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(obj: Object, *path: str) -> list[dict[str, Any]]:
    node: dict[str, Any] = obj.setdefault("status", {})
    for key in path:
        node = node.setdefault(key, {})
    conditions: list[dict[str, Any]] = node.setdefault("conditions", [])
    return conditions


def _find(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    for c in conditions or ():
        if c.get("type") == type_:
            return c
    return None


def get_condition(obj: Object, type_: str) -> dict[str, Any] | None:
    return _find((obj.get("status") or {}).get("conditions"), type_)


def is_true(obj: Object, type_: str) -> bool:
    c = get_condition(obj, type_)
    return c is not None and c.get("status") == "True"


def is_false(obj: Object, type_: str) -> bool:
    c = get_condition(obj, type_)
    return c is not None and c.get("status") == "False"


def set_condition(obj: Object, type_: str, status: Status, reason: str,
                  message: str = "") -> bool:
    """Upsert a v1beta2 condition; True if it changed."""
    conditions = _conditions(obj)
    generation = (obj.get("metadata") or {}).get("generation")
    want: dict[str, Any] = {"type": type_, "status": status, "reason": reason,
                            "message": message}
    if generation:
        want["observedGeneration"] = generation
    current = _find(conditions, type_)
    if current is None:
        conditions.append({**want, "lastTransitionTime": now()})
        return True
    changed = any(current.get(k) != v for k, v in want.items())
    if current.get("status") != status:
        current["lastTransitionTime"] = now()
    current.update(want)
    return changed


def delete_condition(obj: Object, type_: str) -> None:
    conditions = (obj.get("status") or {}).get("conditions")
    if conditions:
        conditions[:] = [c for c in conditions if c.get("type") != type_]


def get_v1beta1_condition(obj: Object, type_: str) -> dict[str, Any] | None:
    deprecated = ((obj.get("status") or {}).get("deprecated") or {}).get("v1beta1") or {}
    return _find(deprecated.get("conditions"), type_)


def set_v1beta1_condition(obj: Object, type_: str, status: Status, reason: str = "",
                          message: str = "", severity: str = "") -> bool:
    """Upsert a v1beta1 condition under status.deprecated.v1beta1; True if it changed."""
    conditions = _conditions(obj, "deprecated", "v1beta1")
    want: dict[str, Any] = {"type": type_, "status": status}
    if status != "True":
        if reason:
            want["reason"] = reason
        if severity:
            want["severity"] = severity
        if message:
            want["message"] = message
    current = _find(conditions, type_)
    if current is None:
        conditions.append({**want, "lastTransitionTime": now()})
        return True
    changed = any(current.get(k) != v for k, v in want.items()) or any(
        k not in want for k in current if k not in ("type", "status", "lastTransitionTime"))
    if current.get("status") != status:
        current["lastTransitionTime"] = now()
    for key in ("reason", "severity", "message"):
        current.pop(key, None)
    current.update(want)
    return changed


def ready_of(source: Object) -> tuple[Status, str, str] | None:
    """A provider object's Ready condition as (status, reason, message), read from the
    v1beta2 `status.conditions` or, failing that, a v1beta1-shaped list in the same place."""
    c = get_condition(source, "Ready") or get_v1beta1_condition(source, "Ready")
    if c is None:
        return None
    status = str(c.get("status", "Unknown"))
    if status not in ("True", "False", "Unknown"):
        status = "Unknown"
    return status, str(c.get("reason") or ""), str(c.get("message") or "")  # type: ignore[return-value]


def mirror_infrastructure_ready(obj: Object, infra: Object, provisioned: bool, *,
                                provisioned_wins: bool = False) -> None:
    """InfrastructureReady on ``obj`` from its infrastructure object: its Ready condition when it
    has one (unless ``provisioned_wins`` and that condition lags a provisioned object), else
    from ``status.initialization.provisioned``; plus the v1beta1 InfrastructureReady."""
    mirrored = ready_of(infra)
    if mirrored is not None and not (provisioned_wins and provisioned and mirrored[0] != "True"):
        set_condition(obj, capi.INFRASTRUCTURE_READY_CONDITION, mirrored[0],
                      mirrored[1] or ("Ready" if mirrored[0] == "True" else "NotReady"),
                      mirrored[2])
    else:
        set_condition(
            obj, capi.INFRASTRUCTURE_READY_CONDITION, "True" if provisioned else "False",
            "Ready" if provisioned else "NotReady",
            "" if provisioned
            else f"{infra.get('kind')} status.initialization.provisioned is not true")
    set_v1beta1_condition(obj, capi.V1BETA1_INFRASTRUCTURE_READY_CONDITION,
                          "True" if provisioned else "False", "WaitingForInfrastructure",
                          severity=capi.CONDITION_SEVERITY_INFO)
