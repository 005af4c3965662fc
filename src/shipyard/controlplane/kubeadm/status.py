"""The KubeadmControlPlane's status, computed from what a reconcile observed (no I/O).

Contract (upstream's v1beta2 fields and reasons): `selector` (the cluster's control-plane
Machines), `replicas`, `readyReplicas` (Machine Ready), `availableReplicas` (Machine Available),
`upToDateReplicas`, `versions` and `version` (the lowest), `initialization.
controlPlaneInitialized`, `observedGeneration`; conditions Initialized, EtcdClusterHealthy
(Healthy / NotHealthy / HealthUnknown / ConnectionDown), Available (initialized, a Ready Node and
a leader with a healthy etcd majority), MachinesReady and MachinesUpToDate (NoReplicas without
Machines), RollingOut, ScalingUp / ScalingDown (with the reason a step is blocked), Remediating,
Deleting.
"""

from __future__ import annotations

from shipyard.api.core import constants as c
from shipyard.client.interfaces import Object
from shipyard.controllers import conditions

from . import types
from .etcd import quorum
from .state import State, external_etcd, initialized, version_key


def update_status(s: State) -> None:
    """Every status field and condition from what the reconcile observed (no I/O)."""
    kcp, ms = s.kcp, s.machines
    status = kcp.setdefault("status", {})
    desired = int((kcp.get("spec") or {}).get("replicas", 1))
    status["selector"] = (f"{c.CLUSTER_NAME_LABEL}={s.cluster_name},"
                          f"{c.MACHINE_CONTROL_PLANE_LABEL}")
    status["replicas"] = len(ms)
    status["readyReplicas"] = sum(conditions.is_true(x, c.READY_CONDITION) for x in ms)
    status["availableReplicas"] = sum(conditions.is_true(x, c.AVAILABLE_CONDITION)
                                      for x in ms)
    status["upToDateReplicas"] = sum(x["metadata"]["name"] not in s.outdated for x in ms)
    versions = [str(x["spec"]["version"]) for x in ms if (x.get("spec") or {}).get("version")]
    if versions:
        status["version"] = min(versions, key=version_key)
    status["versions"] = [{"version": v, "replicas": versions.count(v)}
                          for v in sorted(set(versions), key=version_key)]
    if kcp["metadata"].get("generation"):
        status["observedGeneration"] = kcp["metadata"]["generation"]
    is_initialized = initialized(s)
    status.setdefault("initialization", {})["controlPlaneInitialized"] = is_initialized
    conditions.set_condition(kcp, types.INITIALIZED_CONDITION,
                             "True" if is_initialized else "False",
                             types.INITIALIZED_REASON if is_initialized
                             else types.NOT_INITIALIZED_REASON,
                             "" if is_initialized else "Control plane not yet initialized")
    etcd_condition(s)
    healthy = bool(s.node_ready) and (external_etcd(kcp) or etcd_has_quorum(s))
    conditions.set_condition(kcp, c.AVAILABLE_CONDITION,
                             "True" if is_initialized and healthy else "False",
                             c.AVAILABLE_REASON if is_initialized and healthy
                             else c.NOT_AVAILABLE_REASON,
                             "" if is_initialized and healthy else
                             (s.waiting or s.etcd_error or "Control plane not available"))
    aggregate(kcp, ms, c.MACHINES_READY_CONDITION, c.READY_CONDITION,
              (c.READY_REASON, c.NOT_READY_REASON, c.READY_UNKNOWN_REASON))
    outdated = sorted(s.outdated)
    if not ms:
        conditions.set_condition(kcp, c.MACHINES_UP_TO_DATE_CONDITION, "True",
                                 c.NO_REPLICAS_REASON)
    elif outdated:
        conditions.set_condition(kcp, c.MACHINES_UP_TO_DATE_CONDITION, "False",
                                 c.NOT_UP_TO_DATE_REASON,
                                 "Machines not up-to-date: " + ", ".join(outdated))
    else:
        conditions.set_condition(kcp, c.MACHINES_UP_TO_DATE_CONDITION, "True",
                                 c.UP_TO_DATE_REASON)
    if outdated:
        reasons = sorted({r for rs in s.outdated.values() for r in rs})
        conditions.set_condition(kcp, c.ROLLING_OUT_CONDITION, "True", c.ROLLING_OUT_REASON,
                                 f"Rolling out {len(outdated)} not up-to-date replicas: "
                                 + "; ".join(reasons))
    else:
        conditions.set_condition(kcp, c.ROLLING_OUT_CONDITION, "False",
                                 c.NOT_ROLLING_OUT_REASON)
    up, down = len(ms) < desired, len(ms) > desired
    conditions.set_condition(
        kcp, c.SCALING_UP_CONDITION, "True" if up else "False",
        c.SCALING_UP_REASON if up else c.NOT_SCALING_UP_REASON,
        (f"Scaling up from {len(ms)} to {desired} replicas" +
         (f" is blocked because: {s.waiting}" if s.waiting else "")) if up else "")
    conditions.set_condition(
        kcp, c.SCALING_DOWN_CONDITION, "True" if down else "False",
        c.SCALING_DOWN_REASON if down else c.NOT_SCALING_DOWN_REASON,
        (f"Scaling down from {len(ms)} to {desired} replicas" +
         (f" is blocked because: {s.waiting}" if s.waiting else "")) if down else "")
    remediating = sorted(x["metadata"]["name"] for x in ms if conditions.is_false(
        x, c.MACHINE_OWNER_REMEDIATED_CONDITION))
    conditions.set_condition(
        kcp, c.REMEDIATING_CONDITION, "True" if remediating else "False",
        c.REMEDIATING_REASON if remediating else c.NOT_REMEDIATING_REASON,
        ("Remediating " + ", ".join(remediating)) if remediating else "")
    conditions.set_condition(kcp, types.DELETING_CONDITION, "False", c.NOT_DELETING_REASON)

def etcd_has_quorum(s: State) -> bool:
    """A leader and a healthy majority: the control plane serves even with a member down."""
    if s.members is None or s.leader is None:
        return False
    return len(s.healthy_members()) >= quorum(len(s.members))


def etcd_condition(s: State) -> None:
    if external_etcd(s.kcp):
        conditions.delete_condition(s.kcp, types.ETCD_CLUSTER_HEALTHY_CONDITION)
        return
    if s.members is None:
        reason = types.CONNECTION_DOWN_REASON if s.etcd_error else types.HEALTH_UNKNOWN_REASON
        conditions.set_condition(s.kcp, types.ETCD_CLUSTER_HEALTHY_CONDITION, "Unknown",
                                 reason, s.etcd_error or "No etcd member reported yet")
        return
    healthy = s.healthy_members()
    names = {mm["id"]: mm["name"] for mm in s.members}
    unhealthy = sorted(names[i] for i in names if i not in healthy)
    if unhealthy or s.leader is None:
        message = ("Members not healthy: " + ", ".join(unhealthy)) if unhealthy \
            else "etcd has no leader"
        conditions.set_condition(s.kcp, types.ETCD_CLUSTER_HEALTHY_CONDITION, "False",
                                 types.NOT_HEALTHY_REASON, message)
    else:
        conditions.set_condition(s.kcp, types.ETCD_CLUSTER_HEALTHY_CONDITION, "True",
                                 types.HEALTHY_REASON)

def aggregate(kcp: Object, ms: list[Object], type_: str, source: str,
               reasons: tuple[str, str, str]) -> None:
    if not ms:
        conditions.set_condition(kcp, type_, "True", c.NO_REPLICAS_REASON)
        return
    false = sorted(x["metadata"]["name"] for x in ms if conditions.is_false(x, source))
    true = [x for x in ms if conditions.is_true(x, source)]
    if false:
        conditions.set_condition(kcp, type_, "False", reasons[1],
                                 f"{source} is False on: " + ", ".join(false))
    elif len(true) == len(ms):
        conditions.set_condition(kcp, type_, "True", reasons[0])
    else:
        conditions.set_condition(kcp, type_, "Unknown", reasons[2],
                                 f"{source} not yet reported on some Machines")

