"""What kube-apiserver's Pod and PodDisruptionBudget strategies do beyond their schemas.

`builtins` declares both kinds (schema, printer, field labels); this module holds the rules the
schema cannot say, as pure functions on plain dicts:

- `admit_pod` (pkg/registry/core/pod/strategy.go, pkg/apis/core/validation): a created Pod starts
  ``Pending`` with a QoS class whatever status the client sent; ``spec.containers`` is required,
  each container needs a DNS-label ``name`` (unique across containers and init containers) and an
  ``image``. Errors come back as StatusCauses with kube's field paths and words.
- `admit_pdb` (pkg/apis/policy/validation): ``minAvailable`` and ``maxUnavailable`` exclude each
  other and must be non-negative integers or percentages.
- `disruption_status` (pkg/controller/disruption): the status kube-controller-manager's disruption
  controller would compute for a PDB over the Pods it selects. Shipyard runs no controller
  manager, so the API server computes it itself (`disruption.DisruptionController`, and fresh on
  every eviction in `eviction`).

Deliberate simplifications, documented in docs/differences.md: percentages and
``maxUnavailable`` are scaled against the number of selected Pods rather than their controllers'
``spec.replicas``; Pod updates are not restricted to the mutable fields.
"""

from __future__ import annotations

import math
import re
from typing import Any

from shipyard.apimachinery.errors import StatusCause
from shipyard.apimachinery.selectors import label_selector_from_dict
from shipyard.apimachinery.validation import field_invalid, field_required, is_dns1123_label

Obj = dict[str, Any]

_PERCENT = re.compile(r"^([0-9]+)%$")


# ---------------------------------------------------------------------------------------------
# Pods


def pod_ready(pod: Obj) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def pod_phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _qos_class(spec: Obj) -> str:
    """GetPodQOS, reduced to what the requests/limits maps say."""
    containers = [c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
                  if isinstance(c, dict)]
    requests_seen = limits_seen = False
    guaranteed = bool(containers)
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        requests_seen = requests_seen or bool(requests) or bool(limits)
        limits_seen = limits_seen or bool(limits)
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                guaranteed = False
    if not requests_seen:
        return "BestEffort"
    return "Guaranteed" if guaranteed and limits_seen else "Burstable"


def _container_causes(spec: Obj) -> list[StatusCause]:
    causes: list[StatusCause] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(field_required("spec.containers"))
    seen: set[str] = set()
    for field, items in (("spec.initContainers", spec.get("initContainers")),
                         ("spec.containers", containers)):
        for i, container in enumerate(items if isinstance(items, list) else []):
            path = f"{field}[{i}]"
            if not isinstance(container, dict):
                continue
            name = container.get("name")
            if not name:
                causes.append(field_required(f"{path}.name"))
            elif isinstance(name, str):
                problems = is_dns1123_label(name)
                if problems:
                    causes.append(field_invalid(f"{path}.name", name, problems[0]))
                elif name in seen:
                    causes.append({"reason": "FieldValueDuplicate", "field": f"{path}.name",
                                   "message": f'Duplicate value: "{name}"'})
                seen.add(name)
            if not container.get("image"):
                causes.append(field_required(f"{path}.image"))
    return causes


def admit_pod(obj: Obj, old: Obj | None) -> list[StatusCause]:
    """Default a created Pod's status and validate its containers (create and update)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    if old is None:
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}
    return _container_causes(spec)


# ---------------------------------------------------------------------------------------------
# PodDisruptionBudgets


def _int_or_percent_causes(field: str, value: Any) -> list[StatusCause]:
    if value is None:
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            return [field_invalid(field, value, "must be greater than or equal to 0")]
        return []
    if isinstance(value, str):
        m = _PERCENT.match(value)
        if m is None:
            return [field_invalid(field, value,
                                  "a valid percent string must be a numeric string followed by "
                                  "an ending '%' (e.g. '1%',  or '93%', regex used for validation"
                                  " is '[0-9]+%')")]
        if int(m.group(1)) > 100:
            return [field_invalid(field, value, "must not be greater than 100%")]
    return []


def admit_pdb(obj: Obj, old: Obj | None) -> list[StatusCause]:
    spec = obj.get("spec") or {}
    causes: list[StatusCause] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append({"reason": "FieldValueInvalid", "field": "spec",
                       "message": f"Invalid value: {_go_spec(spec)}: minAvailable and "
                                  "maxUnavailable cannot be both set"})
    causes += _int_or_percent_causes("spec.minAvailable", spec.get("minAvailable"))
    causes += _int_or_percent_causes("spec.maxUnavailable", spec.get("maxUnavailable"))
    return causes


def _go_spec(spec: Obj) -> str:
    """A terse stand-in for Go's %v of the spec struct (the value is not compared by clients)."""
    parts = [f"{k}:{spec[k]}" for k in ("minAvailable", "maxUnavailable") if k in spec]
    return "{" + " ".join(parts) + "}"


def scaled(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, str):
        m = _PERCENT.match(value)
        if m is None:
            return 0
        exact = int(m.group(1)) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def pdb_selects(pdb: Obj, pod: Obj) -> bool:
    """The eviction subresource's reading of a PDB's selector: nil or empty matches nothing."""
    selector = (pdb.get("spec") or {}).get("selector")
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    try:
        parsed = label_selector_from_dict(selector)
    except Exception:
        return False  # an invalid selector matches no pod
    return parsed.matches((pod.get("metadata") or {}).get("labels") or {})


def _controller_selects(pdb: Obj, pod: Obj) -> bool:
    """The disruption controller's reading: in policy/v1 an empty selector selects every Pod of
    the namespace, a nil one none."""
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return False
    try:
        parsed = label_selector_from_dict(selector)
    except Exception:
        return False
    return parsed.matches((pod.get("metadata") or {}).get("labels") or {})


def disruption_status(pdb: Obj, pods: list[Obj], now: str) -> Obj:
    """The PDB's status over ``pods`` (its namespace's Pods); keeps its conditions' transition
    time when the condition does not change."""
    spec = pdb.get("spec") or {}
    selected = [p for p in pods if _controller_selects(pdb, p)]
    expected = len(selected)
    healthy = sum(1 for p in selected
                  if not (p.get("metadata") or {}).get("deletionTimestamp") and pod_ready(p))
    if spec.get("maxUnavailable") is not None:
        desired = max(expected - scaled(spec["maxUnavailable"], expected, True), 0)
    elif isinstance(spec.get("minAvailable"), str):
        desired = scaled(spec["minAvailable"], expected, True)
    else:
        desired = int(spec.get("minAvailable") or 0)
    allowed = max(healthy - desired, 0) if expected > 0 else 0
    old = pdb.get("status") or {}
    generation = (pdb.get("metadata") or {}).get("generation", 1)
    status: Obj = {
        "observedGeneration": generation,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [_allowed_condition(allowed, old, now, generation)],
    }
    return status


def _allowed_condition(allowed: int, old: Obj, now: str, generation: int) -> Obj:
    status, reason = ("True", "SufficientPods") if allowed > 0 else ("False", "InsufficientPods")
    previous = next((c for c in old.get("conditions") or []
                     if isinstance(c, dict) and c.get("type") == "DisruptionAllowed"), None)
    since = now
    if previous is not None and previous.get("status") == status \
            and previous.get("lastTransitionTime"):
        since = str(previous["lastTransitionTime"])
    return {"type": "DisruptionAllowed", "status": status, "reason": reason, "message": "",
            "lastTransitionTime": since,
            "observedGeneration": generation}


def unready_pod_may_go(pdb: Obj, status: Obj) -> bool:
    """An unready Pod does not count as healthy: evicting it spends no disruption when the
    budget is met without it, or when the budget says unhealthy Pods may always go."""
    if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    desired = int(status.get("desiredHealthy") or 0)
    return desired > 0 and int(status.get("currentHealthy") or 0) >= desired
