"""Pure helpers shared by the MachineSet, MachineDeployment and MachineHealthCheck controllers:
machine predicates, MachineSet deletion order, machine names, the template hash, and small
condition helpers on plain dicts.

Why pure and separate: which machine a scale-down removes and when two templates count as "the
same" (no rollout) are the user-visible decisions of these controllers; they are tested here
without any API.

Contract:
- `delete_priority(machine, order, now)` is upstream's deletion priority (machineset deletion
  order): 100 for a machine already deleting, 75 for the `cluster.x-k8s.io/delete-machine`
  annotation, 50 for an unhealthy machine (no nodeRef, NodeHealthy False or
  HealthCheckSucceeded False), then by order: Random a flat 20, Oldest 50·(1−e^(−age/10d)),
  Newest the inverse. `machines_to_delete(machines, n, order)` picks the n highest.
- `template_hash(template)` hashes the rollout-relevant part of a MachineTemplateSpec (its spec
  without fields that change in place); `templates_equal` compares the same projection.
- `machine_name(ms_name, naming_template)`: `machineNaming.template` with `{{ .machineSet.name }}`
  and `{{ .random }}`, default `<ms-name>-<random5>`.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from shipyard.api.core.constants import (
    CLUSTER_NAME_LABEL,
    DELETE_MACHINE_ANNOTATION,
    MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION,
    MACHINE_NODE_HEALTHY_CONDITION,
)
from shipyard.client.interfaces import Object

MUST_DELETE = 100.0
SHOULD_DELETE = 75.0
BETTER_DELETE = 50.0
COULD_DELETE = 20.0
MUST_NOT_DELETE = 0.0
SECONDS_PER_TEN_DAYS = 864000.0

# Fields of a Machine spec that change in place on existing machines, never forcing a rollout
# (upstream's MachineTemplateUpToDate ignores them and propagates them instead).
IN_PLACE_SPEC_FIELDS = ("deletion", "minReadySeconds", "readinessGates", "taints")
_RANDOM_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's util/rand alphabet


# ----------------------------------------------------------------------------- time & conditions

def now() -> datetime:
    return datetime.now(UTC)


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def get_condition(obj: Object, type_: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == type_:
            return dict(c)
    return None


def condition_status(obj: Object, type_: str) -> str | None:
    c = get_condition(obj, type_)
    return None if c is None else str(c.get("status"))


def set_condition(obj: Object, type_: str, status: str, reason: str, message: str = "",
                  at: datetime | None = None) -> bool:
    """Upsert a v1beta2 condition; lastTransitionTime moves only when the status flips."""
    conditions: list[dict[str, Any]] = obj.setdefault("status", {}).setdefault("conditions", [])
    generation = (obj.get("metadata") or {}).get("generation")
    for c in conditions:
        if c.get("type") == type_:
            changed = (c.get("status"), c.get("reason"), c.get("message")) != (
                status, reason, message)
            if c.get("status") != status:
                c["lastTransitionTime"] = format_time(at or now())
            c.update(status=status, reason=reason, message=message)
            if generation:
                changed = changed or c.get("observedGeneration") != generation
                c["observedGeneration"] = generation
            return changed
    new: dict[str, Any] = {"type": type_, "status": status, "reason": reason,
                           "message": message, "lastTransitionTime": format_time(at or now())}
    if generation:
        new["observedGeneration"] = generation
    conditions.append(new)
    return True


# ----------------------------------------------------------------------------- machine predicates

def is_deleting(obj: Object) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_available(machine: Object) -> bool:
    return condition_status(machine, "Available") == "True"


def is_ready(machine: Object) -> bool:
    return condition_status(machine, "Ready") == "True"


def is_up_to_date(machine: Object) -> bool:
    return condition_status(machine, "UpToDate") == "True"


def is_healthy(machine: Object) -> bool:
    """upstream isMachineHealthy: a Node, and neither NodeHealthy nor the MHC said False."""
    if not ((machine.get("status") or {}).get("nodeRef")):
        return False
    return (condition_status(machine, MACHINE_NODE_HEALTHY_CONDITION) != "False"
            and condition_status(machine, MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION) != "False")


# ----------------------------------------------------------------------------- deletion order

def delete_priority(machine: Object, order: str = "Random",
                    at: datetime | None = None) -> float:
    meta = machine.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return MUST_DELETE
    if DELETE_MACHINE_ANNOTATION in (meta.get("annotations") or {}):
        return SHOULD_DELETE
    if not is_healthy(machine):
        return BETTER_DELETE
    if order == "Random":
        return COULD_DELETE
    created = parse_time(meta.get("creationTimestamp"))
    if created is None:
        return MUST_NOT_DELETE
    age = ((at or now()) - created).total_seconds()
    if age < 0:
        return MUST_NOT_DELETE
    oldest = BETTER_DELETE * (1.0 - math.exp(-age / SECONDS_PER_TEN_DAYS))
    if order == "Oldest":
        return oldest
    if order == "Newest":
        return BETTER_DELETE - oldest
    raise ValueError(f"unsupported deletion order {order!r}")


def machines_to_delete(machines: Sequence[Object], count: int, order: str = "Random",
                       at: datetime | None = None,
                       rng: random.Random | None = None) -> list[Object]:
    """The `count` machines to delete first; ties are broken randomly under Random, by name
    otherwise (so Oldest/Newest are deterministic)."""
    if count <= 0:
        return []
    chooser = rng or random.Random()
    keyed = [(delete_priority(m, order, at),
              chooser.random() if order == "Random" else 0.0,
              str(m["metadata"]["name"]), m) for m in machines]
    keyed.sort(key=lambda k: (-k[0], k[1], k[2]))
    return [k[3] for k in keyed[:count]]


# ----------------------------------------------------------------------------- naming & hashing

def random_suffix(n: int = 5, rng: random.Random | None = None) -> str:
    chooser = rng or random.Random()
    return "".join(chooser.choice(_RANDOM_ALPHABET) for _ in range(n))


_NAMING_VAR = re.compile(r"\{\{\s*\.(machineSet\.name|random|cluster\.name)\s*\}\}")


def machine_name(ms_name: str, naming_template: str | None = None, cluster_name: str = "",
                 rng: random.Random | None = None) -> str:
    if not naming_template:
        return f"{ms_name}-{random_suffix(rng=rng)}"

    def substitute(match: re.Match[str]) -> str:
        var = match.group(1)
        if var == "machineSet.name":
            return ms_name
        if var == "cluster.name":
            return cluster_name
        return random_suffix(rng=rng)

    return _NAMING_VAR.sub(substitute, naming_template)


def rollout_projection(template: Object) -> Object:
    """The part of a MachineTemplateSpec whose change needs new machines."""
    spec = copy.deepcopy(template.get("spec") or {})
    for field in IN_PLACE_SPEC_FIELDS:
        spec.pop(field, None)
    return spec


def template_hash(template: Object) -> str:
    digest = hashlib.sha256(orjson.dumps(rollout_projection(template),
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()
    # A short, label-safe, stable value; the random part is appended by the caller.
    return str(int(digest[:8], 16))


def templates_equal(a: Object, b: Object) -> bool:
    return rollout_projection(a) == rollout_projection(b)


def names(objs: Iterable[Object]) -> list[str]:
    return [str(o["metadata"]["name"]) for o in objs]


def default_selector(obj: Object, name_label: str) -> bool:
    """What upstream's defaulting webhook and controller make of a MachineDeployment's (or
    MachineSet's) selector, which Shipyard has no defaulting webhook for: an empty selector
    selects by the object's own name label, and selector and template labels always carry the
    cluster-name label. Manifests written for upstream (CAPD's quick start has
    ``selector: {matchLabels: null}``) then work unchanged. True if it changed `obj`."""
    spec = obj.setdefault("spec", {})
    selector = spec.get("selector") or {}
    match = dict(selector.get("matchLabels") or {})
    template_meta = (spec.setdefault("template", {})).setdefault("metadata", {})
    labels = dict(template_meta.get("labels") or {})
    wanted = {CLUSTER_NAME_LABEL: str(spec.get("clusterName", ""))}
    if not match and not selector.get("matchExpressions"):
        wanted[name_label] = str(obj["metadata"]["name"])
    if all(match.get(k) == v and labels.get(k) == v for k, v in wanted.items()):
        return False
    spec["selector"] = {**selector, "matchLabels": {**match, **wanted}}
    template_meta["labels"] = {**labels, **wanted}
    return True
