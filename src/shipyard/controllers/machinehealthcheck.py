"""The MachineHealthCheck controller: find unhealthy Machines and hand them to their owner.

Why: a machine whose Node never joins or stops being Ready must be replaced, but replacing too
many at once (a network partition makes *every* node look dead) would make things worse. The
MHC only judges; the owner (MachineSet, KubeadmControlPlane) deletes. The contract, as upstream
Cluster API v1beta2 (`internal/controllers/machinehealthcheck`):

- Targets: the Machines in the MHC's namespace matching `spec.selector` and labelled with the
  MHC's cluster, not being deleted.
- A target is unhealthy (`health_of`) when it carries the `cluster.x-k8s.io/remediate-machine`
  annotation; when its Node is gone (nodeRef set, Node not found); when it has no Node after
  `checks.nodeStartupTimeoutSeconds` (default 600; 0 disables) counted from the latest of the
  Cluster's InfrastructureReady/ControlPlaneInitialized transitions, the Machine's
  InfrastructureReady transition and its creation; or when a Node condition of
  `unhealthyNodeConditions` (or a Machine condition of `unhealthyMachineConditions`) has had the
  given status for longer than its timeoutSeconds. Otherwise it is healthy, possibly with a
  time at which to check again.
- Remediation is allowed when the unhealthy count is within `remediation.triggerIf`
  (`unhealthyLessThanOrEqualTo`, int or percent of targets rounding down, default 100%; or
  `unhealthyInRange` "[a-b]"). Allowed: unhealthy machines get `HealthCheckSucceeded=False`
  and `OwnerRemediated=False` (unless annotated `cluster.x-k8s.io/skip-remediation` or paused).
  Not allowed: only HealthCheckSucceeded=False, and the MHC's `RemediationAllowed` condition is
  False (reason TooManyUnhealthy). Healthy machines get `HealthCheckSucceeded=True`.
- Status: expectedMachines, currentHealthy, remediationsAllowed, targets, observedGeneration.
- The next check is requeued for the earliest pending timeout; any Node event in the workload
  cluster wakes the cluster's checks at once (a Node informer per workload cluster, as upstream
  watches Nodes through its ClusterCache), so nothing is polled while the cluster is reachable.

Nodes are read from that informer's cache, reached through the workload cluster's
`<cluster>-kubeconfig` Secret (`RemoteClusters`). A Node the cache does not have yet is looked up
live before the Machine is judged to have lost it: two informers on one server can lag each other,
and a false "Node deleted" would remediate a healthy machine.
Machines' status is written with update_status (optimistic concurrency), so conditions the
Machine controller writes concurrently are never overwritten blindly.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shipyard.api.core.constants import (
    CLUSTER_NAME_LABEL,
    MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION,
    MACHINE_OWNER_REMEDIATED_CONDITION,
    PAUSED_ANNOTATION,
    REMEDIATE_MACHINE_ANNOTATION,
    SKIP_REMEDIATION_ANNOTATION,
)
from shipyard.apimachinery.errors import Conflict, NotFound
from shipyard.apimachinery.selectors import label_selector_from_dict, label_selector_to_string
from shipyard.client.interfaces import Object, Reader, ReaderWriter
from shipyard.controllers import conditions, msutil, pausing, rollout
from shipyard.controllers.machineset import CLUSTER, MACHINE
from shipyard.controllers.ownership import ensure_owner_reference, owner_reference
from shipyard.controllers.remote import Factory, RemoteClusters, RemoteUnavailable
from shipyard.controllers.setup import Options
from shipyard.runtime import Cache, Controller, EnqueueHandler, Manager, Request, Result, logs

MHC = ("cluster.x-k8s.io/v1beta2", "MachineHealthCheck")
NODE = ("v1", "Node")
DEFAULT_NODE_STARTUP_TIMEOUT = 600
REMEDIATION_ALLOWED_CONDITION = "RemediationAllowed"
UNREACHABLE_RECHECK = 30.0
"""Seconds between checks while the workload cluster cannot be reached."""
"""Seconds between looks at the Nodes of healthy targets. Upstream watches workload-cluster
Nodes through its cluster cache; Shipyard has no cross-cluster watches yet, so it polls."""
_RANGE = re.compile(r"^\[([0-9]+)-([0-9]+)\]$")

log = logs.get_logger(__name__)


@dataclass(frozen=True)
class Health:
    healthy: bool
    reason: str = ""
    message: str = ""
    recheck_after: float | None = None
    """Seconds until a pending timeout would expire (healthy targets only)."""


def _transition(obj: Object | None, type_: str) -> datetime | None:
    if obj is None:
        return None
    c = msutil.get_condition(obj, type_)
    if c is None or c.get("status") != "True":
        return None
    return msutil.parse_time(c.get("lastTransitionTime"))


def _duration(seconds: int) -> str:
    return str(timedelta(seconds=seconds))


def _condition_timeouts(observed: Object, wanted: list[Mapping[str, Any]], what: str,
                        at: datetime) -> tuple[Health | None, float | None]:
    """An unhealthy verdict if a condition matched too long, else the earliest recheck."""
    recheck: float | None = None
    for want in wanted:
        c = msutil.get_condition(observed, str(want.get("type")))
        if c is None or c.get("status") != want.get("status"):
            continue
        since = msutil.parse_time(c.get("lastTransitionTime")) or at
        timeout = int(want.get("timeoutSeconds") or 0)
        left = (since + timedelta(seconds=timeout) - at).total_seconds()
        if left <= 0:
            reason = "UnhealthyNode" if what == "Node" else "UnhealthyMachine"
            return Health(False, reason, (
                f"Health check failed: Condition {want.get('type')} on {what} is reporting "
                f"status {want.get('status')} for more than {_duration(timeout)}")), None
        recheck = left if recheck is None else min(recheck, left)
    return None, recheck


def health_of(machine: Object, node: Object | None, node_missing: bool,
              checks: Mapping[str, Any], cluster: Object | None, at: datetime) -> Health:
    """The verdict on one target (pure: Node and Cluster already read)."""
    meta = machine.get("metadata") or {}
    if REMEDIATE_MACHINE_ANNOTATION in (meta.get("annotations") or {}):
        return Health(False, "HasRemediateAnnotation",
                      "Health check failed: marked for remediation via the "
                      f"{REMEDIATE_MACHINE_ANNOTATION} annotation")
    status = machine.get("status") or {}
    if node_missing:
        return Health(False, "NodeDeleted", "Health check failed: Node "
                      f"{(status.get('nodeRef') or {}).get('name')} has been deleted")
    verdict, recheck = _condition_timeouts(machine, list(
        checks.get("unhealthyMachineConditions") or []), "Machine", at)
    if verdict is not None:
        return verdict
    if node is None:
        timeout = checks.get("nodeStartupTimeoutSeconds")
        timeout = DEFAULT_NODE_STARTUP_TIMEOUT if timeout is None else int(timeout)
        if timeout == 0:
            return Health(True, recheck_after=recheck)
        candidates = [msutil.parse_time(meta.get("creationTimestamp")),
                      _transition(cluster, "InfrastructureReady"),
                      _transition(cluster, "ControlPlaneInitialized"),
                      _transition(machine, "InfrastructureReady")]
        start = max((t for t in candidates if t is not None), default=at)
        left = (start + timedelta(seconds=timeout) - at).total_seconds()
        if left <= 0:
            return Health(False, "NodeStartupTimeout", "Health check failed: Node failed to "
                          f"report startup in {_duration(timeout)}")
        return Health(True, recheck_after=left if recheck is None else min(left, recheck))
    verdict, node_recheck = _condition_timeouts(node, list(
        checks.get("unhealthyNodeConditions") or []), "Node", at)
    if verdict is not None:
        return verdict
    waits = [t for t in (recheck, node_recheck) if t is not None]
    return Health(True, recheck_after=min(waits) if waits else None)


def remediation_allowed(remediation: Mapping[str, Any], total: int,
                        unhealthy: int) -> tuple[bool, int, str]:
    """(allowed, remediationsAllowed, message when refused) for `remediation.triggerIf`."""
    trigger = remediation.get("triggerIf") or {}
    in_range = trigger.get("unhealthyInRange")
    if in_range:
        match = _RANGE.match(str(in_range).strip())
        if match is None:
            return False, 0, f"invalid unhealthyInRange {in_range!r}"
        low, high = int(match.group(1)), int(match.group(2))
        if low <= unhealthy <= high:
            return True, high - unhealthy, ""
        return False, 0, (f"Remediation is not allowed, the number of not started or unhealthy "
                          f"machines does not fall within the range (total: {total}, "
                          f"unhealthy: {unhealthy}, unhealthyRange: {in_range})")
    limit_value = trigger.get("unhealthyLessThanOrEqualTo")
    limit = total if limit_value is None else rollout.scaled_value(limit_value, total, False)
    if unhealthy <= limit:
        return True, limit - unhealthy, ""
    return False, 0, (f"Remediation is not allowed, the number of not started or unhealthy "
                      f"machines exceeds maxUnhealthy (total: {total}, unhealthy: {unhealthy}, "
                      f"maxUnhealthy: {limit_value})")


@dataclass
class _Nodes:
    live: Reader
    cache: Cache


class MachineHealthCheckReconciler:
    def __init__(self, client: ReaderWriter, remote: RemoteClusters | None = None) -> None:
        self.client = client
        self.remote = remote or RemoteClusters(client)
        self.checks: Cache | None = None
        """The MachineHealthCheck cache, to map Node events to the checks of their cluster."""
        self.controller: Controller | None = None

    def node_handler(self, namespace: str, cluster_name: str) -> EnqueueHandler:
        """Node events of one workload cluster wake every check of that cluster."""
        def to_checks(_node: Object) -> list[Request]:
            if self.checks is None:
                return []
            return [Request(namespace, str(m["metadata"]["name"]))
                    for m in self.checks.list(namespace)
                    if (m.get("spec") or {}).get("clusterName") == cluster_name]

        assert self.controller is not None, "setup() wires the controller before any reconcile"
        return EnqueueHandler(self.controller.queue, to_checks)

    async def reconcile(self, req: Request) -> Result:
        try:
            mhc = await self.client.get(*MHC, req.name, req.namespace)
        except NotFound:
            return Result()
        spec = mhc.get("spec") or {}
        cluster_name = str(spec.get("clusterName", ""))
        try:
            cluster: Object | None = await self.client.get(*CLUSTER, cluster_name, req.namespace)
        except NotFound:
            cluster = None
        status = copy.deepcopy(mhc.get("status") or {})
        holder: Object = {"metadata": mhc["metadata"], "status": status}
        if pausing.is_paused(cluster, mhc) or msutil.is_deleting(mhc):
            if pausing.set_paused_condition(cluster, holder):
                await self._patch_status(mhc, status)
            return Result()
        if cluster is not None:
            changed = ensure_owner_reference(mhc, owner_reference(cluster))
            labels = mhc["metadata"].setdefault("labels", {})
            if labels.get(CLUSTER_NAME_LABEL) != cluster_name:
                labels[CLUSTER_NAME_LABEL] = cluster_name
                changed = True
            if changed:
                mhc = await self.client.update(mhc)
                holder["metadata"] = mhc["metadata"]

        targets = await self._targets(mhc)
        nodes: _Nodes | None = None
        try:
            nodes = _Nodes(await self.remote.client(req.namespace, cluster_name),
                           (await self.remote.nodes(req.namespace, cluster_name)).cache)
        except RemoteUnavailable as e:
            log.info("workload cluster %s not reachable yet: %s", cluster_name, e)
        at = msutil.now()
        verdicts: list[tuple[Object, Health]] = []
        for machine in targets:
            node, missing = await self._node(nodes, machine)
            verdicts.append((machine, health_of(machine, node, missing, spec.get("checks") or {},
                                                cluster, at)))
        unhealthy = [(m, h) for m, h in verdicts if not h.healthy]
        allowed, remaining, refusal = remediation_allowed(spec.get("remediation") or {},
                                                          len(targets), len(unhealthy))
        for machine, health in verdicts:
            await self._mark(machine, health, allowed)

        status.update(expectedMachines=len(targets), currentHealthy=len(verdicts) - len(
            unhealthy), remediationsAllowed=remaining,
            targets=sorted(str(m["metadata"]["name"]) for m in targets))
        if mhc["metadata"].get("generation"):
            status["observedGeneration"] = mhc["metadata"]["generation"]
        if allowed:
            conditions.set_condition(holder, REMEDIATION_ALLOWED_CONDITION, "True",
                                     "RemediationAllowed")
            conditions.set_v1beta1_condition(holder, REMEDIATION_ALLOWED_CONDITION, "True")
        else:
            conditions.set_condition(holder, REMEDIATION_ALLOWED_CONDITION, "False",
                                     "TooManyUnhealthy", refusal)
            conditions.set_v1beta1_condition(holder, REMEDIATION_ALLOWED_CONDITION, "False",
                                             "TooManyUnhealthy", refusal, "Warning")
        pausing.set_paused_condition(cluster, holder)
        if status != mhc.get("status"):
            await self._patch_status(mhc, status)
        waits = [h.recheck_after for _, h in verdicts if h.recheck_after is not None]
        if nodes is None and targets:
            waits.append(UNREACHABLE_RECHECK)
        return Result(requeue_after=max(min(waits), 1.0)) if waits else Result()

    async def _patch_status(self, mhc: Object, status: dict[str, Any]) -> None:
        await self.client.patch(*MHC, mhc["metadata"]["name"], {"status": status},
                                mhc["metadata"]["namespace"], subresource="status")

    async def _targets(self, mhc: Object) -> list[Object]:
        spec = mhc.get("spec") or {}
        selector = label_selector_to_string(spec.get("selector") or {})
        cluster_term = f"{CLUSTER_NAME_LABEL}={spec.get('clusterName', '')}"
        found = await self.client.list(*MACHINE, mhc["metadata"]["namespace"],
                                       label_selector=",".join(
                                           t for t in (selector, cluster_term) if t))
        match = label_selector_from_dict(spec.get("selector") or {})
        return [m for m in found["items"] if not msutil.is_deleting(m)
                and match.matches((m.get("metadata") or {}).get("labels"))]

    async def _node(self, nodes: _Nodes | None, machine: Object) -> tuple[Object | None, bool]:
        ref = (machine.get("status") or {}).get("nodeRef")
        if not ref or nodes is None:
            return None, False
        name = str(ref["name"])
        cached = nodes.cache.get(name)
        if cached is not None:
            return cached, False
        try:
            return await nodes.live.get(*NODE, name), False
        except NotFound:
            return None, True

    async def _mark(self, machine: Object, health: Health, allowed: bool) -> None:
        """Write HealthCheckSucceeded (and OwnerRemediated) on the machine if they change."""
        updated = copy.deepcopy(machine)
        annotations = (machine.get("metadata") or {}).get("annotations") or {}
        if health.healthy:
            conditions.set_condition(updated, MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION, "True",
                                     "HealthCheckSucceeded")
        else:
            conditions.set_condition(updated, MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION, "False",
                                     health.reason, health.message)
            conditions.set_v1beta1_condition(updated, MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION,
                                             "False", health.reason, health.message, "Warning")
            skip = (SKIP_REMEDIATION_ANNOTATION in annotations
                    or PAUSED_ANNOTATION in annotations)
            if allowed and not skip and msutil.condition_status(
                    updated, MACHINE_OWNER_REMEDIATED_CONDITION) is None:
                conditions.set_condition(updated, MACHINE_OWNER_REMEDIATED_CONDITION, "False",
                                         "WaitingForRemediation", "Waiting for remediation")
                conditions.set_v1beta1_condition(updated, MACHINE_OWNER_REMEDIATED_CONDITION,
                                                 "False", "WaitingForRemediation",
                                                 "Waiting for remediation", "Warning")
        if updated.get("status") == machine.get("status"):
            return
        try:
            await self.client.update_status(updated)
        except NotFound:
            pass
        except Conflict:
            raise  # the Machine changed under us: retry the whole check on fresh state


async def setup(mgr: Manager, options: Options) -> None:
    """Register the MachineHealthCheck controller (setup registry signature)."""
    informer = mgr.informer(MHC)
    reconciler = MachineHealthCheckReconciler(mgr.client)
    reconciler.checks = informer.cache
    reconciler.remote = RemoteClusters(mgr.client, options.remote_client_factory,
                                       node_handlers=reconciler.node_handler)
    options.closers.append(reconciler.remote.aclose)

    def checks_of_machine(machine: Object) -> list[Request]:
        meta = machine.get("metadata") or {}
        labels = meta.get("labels") or {}
        out = []
        for mhc in informer.cache.list(meta.get("namespace")):
            spec = mhc.get("spec") or {}
            if labels.get(CLUSTER_NAME_LABEL) != spec.get("clusterName"):
                continue
            if label_selector_from_dict(spec.get("selector") or {}).matches(labels):
                out.append(Request(str(mhc["metadata"]["namespace"]),
                                   str(mhc["metadata"]["name"])))
        return out

    def checks_of_cluster(cluster: Object) -> list[Request]:
        meta = cluster.get("metadata") or {}
        return [Request(str(m["metadata"]["namespace"]), str(m["metadata"]["name"]))
                for m in informer.cache.list(meta.get("namespace"))
                if (m.get("spec") or {}).get("clusterName") == meta.get("name")]

    concurrency = options.concurrency.get("machinehealthcheck", 10)
    reconciler.controller = await mgr.new_controller(
        "machinehealthcheck", reconciler, for_=MHC,
        watches=[(MACHINE, checks_of_machine), (CLUSTER, checks_of_cluster)],
        max_concurrent_reconciles=concurrency)


__all__ = ["Factory", "Health", "MachineHealthCheckReconciler", "health_of",
           "remediation_allowed", "setup"]
