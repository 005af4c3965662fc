"""The KubeadmControlPlane controller (upstream's `KubeadmControlPlaneReconciler`).

Contract, per reconcile of a KCP (plain dicts, one patch at the end):
- Acts once the Cluster controller has adopted it (ownerReference to a Cluster); honours pause;
  adds the finalizer `kubeadm.controlplane.cluster.x-k8s.io`.
- Waits for the Cluster's `status.initialization.infrastructureProvisioned` and
  `spec.controlPlaneEndpoint`; then finds or generates the cluster certificates (`<cluster>-ca`,
  `-etcd`, `-proxy`, `-sa`, controller-owned by the KCP) and creates `<cluster>-kubeconfig` if
  it is missing (rotating its client certificate only when the KCP owns it: an infrastructure
  provider that writes its own is left alone).
- Owned Machines (controller ownerReference) carry the labels `cluster.x-k8s.io/cluster-name`,
  `cluster.x-k8s.io/control-plane`, `cluster.x-k8s.io/control-plane-name`, the pre-terminate
  hook `pre-terminate.delete.hook.machine.cluster.x-k8s.io/kcp-cleanup`, `spec.version`, a
  KubeadmConfig (the first machine: `initConfiguration` + `clusterConfiguration`; later ones
  `joinConfiguration.controlPlane`) and an infrastructure machine cloned from
  `machineTemplate.spec.infrastructureRef`, spread over the Cluster's control-plane failure
  domains.
- One operation at a time: nothing is created or deleted while a Machine is deleting, and a
  Machine is added only when every existing one has a Ready Node in the workload cluster
  (read through `RemoteClusters`; Node events wake the KCP) and, with stacked etcd, etcd
  answers, has a leader and every member has started.
- Order per reconcile: release pre-terminate hooks of deleting Machines (move etcd leadership
  off, remove the etcd member when quorum survives), remediate, then roll out (outdated
  Machines, `machines.outdated_reasons`: with maxSurge 1 scale up to replicas+1 then remove an
  outdated one; with maxSurge 0 remove first), else scale up or down by one. Etcd members
  that belong to no Machine are removed once every Machine has its Node (quorum permitting).
- Scale down / remediation never delete a Machine whose etcd member's removal would break
  quorum, and move etcd leadership off it first.
- Remediation (machines with HealthCheckSucceeded=False and OwnerRemediated=False) within
  upstream's safeguards: more than one replica, no other Machine deleting or provisioning, etcd
  quorum preserved, `remediation.maxRetry` / `retryPeriodSeconds` / `minHealthyPeriodSeconds`
  (retries tracked in the annotations `controlplane.cluster.x-k8s.io/remediation-in-progress`
  on the KCP and `controlplane.cluster.x-k8s.io/remediation-for` on the replacement).
- Status: selector, replicas, readyReplicas, availableReplicas, upToDateReplicas, versions
  (replicas per version), version (the lowest), initialization.controlPlaneInitialized (once a
  Machine's Node is Ready), lastRemediation, observedGeneration; conditions Available,
  Initialized, CertificatesAvailable, EtcdClusterHealthy, MachinesReady, MachinesUpToDate,
  RollingOut, ScalingUp, ScalingDown, Remediating, Deleting, Paused.
- Deletion: waits for the Cluster's worker Machines to go, deletes the control-plane Machines
  (dropping their etcd hooks: the whole cluster goes), then drops the finalizer.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import AlreadyExists, NotFound
from shipyard.bootstrap.kubeadm import certs, kubeconfig
from shipyard.bootstrap.kubeadm import types as bootstrap
from shipyard.client.interfaces import GVK, Object, ReaderWriter
from shipyard.controllers import conditions, ownership, pausing
from shipyard.controllers.external import ExternalObjects
from shipyard.controllers.kinds import API_VERSION, CLUSTER, MACHINE, SECRET
from shipyard.controllers.patching import add_finalizer, patch, remove_finalizer, snapshot
from shipyard.controllers.remote import RemoteClusters, RemoteUnavailable
from shipyard.runtime import Controller, EnqueueHandler, Manager, Request, Result, logs

from . import machines as m
from . import types
from .etcd import (
    EtcdClientCertificates,
    EtcdEndpoints,
    EtcdMembership,
    EtcdTarget,
    EtcdUnavailable,
    GatewayEtcdMembership,
    can_remove,
)
from .state import (
    State,
    external_etcd,
    initialized,
    max_surge,
    node_name,
    owner_cluster,
)
from .status import update_status

log = logs.get_logger(__name__)

WAIT = 5.0
"""Seconds before looking again while waiting on something no watch reports (etcd)."""
_RANDOM = "bcdfghjklmnpqrstvwxz2456789"


@dataclass
class KubeadmControlPlaneOptions:
    etcd: EtcdMembership | None = None
    """Default: `GatewayEtcdMembership` with the cluster's etcd client certificates
    (`EtcdClientCertificates`) at the machines' `EtcdEndpoints`."""
    endpoints: EtcdEndpoints = field(default_factory=EtcdEndpoints)
    remote_factory: Any = None
    """kubeconfig text → workload client (default `shipyard.client.Client`)."""
    concurrency: int = 10


class NoLeaderCandidate(EtcdUnavailable):
    """The machine leads etcd and no other healthy member can take over."""


class KubeadmControlPlaneReconciler:
    def __init__(self, mgr: Manager, options: KubeadmControlPlaneOptions) -> None:
        self.client: ReaderWriter = mgr.client
        self.kcps = mgr.informer(types.CONTROL_PLANE).cache
        self.machines = mgr.informer(MACHINE).cache
        self.clusters = mgr.informer(CLUSTER).cache
        self.configs = mgr.informer(bootstrap.CONFIG).cache
        self.external = ExternalObjects(mgr.client)
        self.owns_etcd = options.etcd is None
        self.etcd: EtcdMembership = options.etcd or GatewayEtcdMembership(
            EtcdClientCertificates(mgr.client))
        self.endpoints = options.endpoints
        self.remote = RemoteClusters(mgr.client, options.remote_factory,
                                     node_handlers=self._node_handler)
        self.controller: Controller | None = None
        self.rng = random.Random()

    # ------------------------------------------------------------------ mapping

    def map_cluster(self, cluster: Object) -> list[Request]:
        ref = (cluster.get("spec") or {}).get("controlPlaneRef") or {}
        if ref.get("kind") == types.CONTROL_PLANE.kind and ref.get("apiGroup") == types.GROUP:
            return [Request(cluster["metadata"]["namespace"], str(ref["name"]))]
        return []

    def _node_handler(self, namespace: str, cluster_name: str) -> EnqueueHandler:
        def to_kcp(_node: Object) -> list[Request]:
            cluster = self.clusters.get(cluster_name, namespace)
            return self.map_cluster(cluster) if cluster is not None else []
        assert self.controller is not None
        return EnqueueHandler(self.controller.queue, to_kcp)

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, req: Request) -> Result:
        cached = self.kcps.get(req.name, req.namespace)
        if cached is None:
            return Result()
        before, kcp = snapshot(cached), snapshot(cached)
        cluster_name = owner_cluster(kcp)
        cluster = self.clusters.get(cluster_name, req.namespace) if cluster_name else None
        if cluster is None:
            if m.is_deleting(kcp) and remove_finalizer(kcp, types.FINALIZER):
                await patch(self.client, before, kcp)
            return Result()  # the Cluster controller adopts us, and that wakes us
        ownership.ensure_cluster_label(kcp, str(cluster_name))
        pausing.set_paused_condition(cluster, kcp)
        if pausing.is_paused(cluster, kcp):
            await patch(self.client, before, kcp)
            return Result()
        machines = m.owned(self.machines.list(
            req.namespace, f"{c.CLUSTER_NAME_LABEL}={cluster_name}"), kcp)
        state = State(kcp, cluster, machines)
        if m.is_deleting(kcp):
            try:
                return await self._reconcile_delete(state)
            finally:
                await self._patch_if_present(before, kcp)
        if add_finalizer(kcp, types.FINALIZER):
            await patch(self.client, before, kcp)
            return Result()
        try:
            result = await self._reconcile(state)
        finally:
            update_status(state)
            await patch(self.client, before, kcp)
        await self._mark_up_to_date(state)  # only from a complete observation
        return result

    async def _mark_up_to_date(self, s: State) -> None:
        """Each Machine's UpToDate condition, which the owner judges (upstream's KCP sets it
        from the same reasons that make a Machine a rollout candidate)."""
        for machine in s.machines:
            if machine["metadata"].get("deletionTimestamp"):
                continue
            reasons = s.outdated.get(machine["metadata"]["name"])
            after = snapshot(machine)
            if reasons:
                changed = conditions.set_condition(
                    after, c.MACHINE_UP_TO_DATE_CONDITION, "False", "NotUpToDate",
                    "; ".join(reasons))
            else:
                changed = conditions.set_condition(after, c.MACHINE_UP_TO_DATE_CONDITION,
                                                   "True", c.UP_TO_DATE_REASON)
            if changed:
                try:
                    await patch(self.client, machine, after)
                except NotFound:
                    pass

    async def _patch_if_present(self, before: Object, kcp: Object) -> None:
        try:
            await patch(self.client, before, kcp)
        except NotFound:
            pass

    async def _reconcile(self, s: State) -> Result:
        cluster_status = s.cluster.get("status") or {}
        if not (cluster_status.get("initialization") or {}).get("infrastructureProvisioned"):
            s.waiting = "Waiting for Cluster status.initialization.infrastructureProvisioned"
            return Result()
        endpoint = (s.cluster.get("spec") or {}).get("controlPlaneEndpoint") or {}
        if not endpoint.get("host") or not endpoint.get("port"):
            s.waiting = "Waiting for Cluster spec.controlPlaneEndpoint"
            return Result()
        await self._certificates(s)
        await self._kubeconfig(s)
        await self._observe(s)
        await self._forget_stale_members(s)
        result = await self._release_hooks(s)
        if result is not None:
            return result
        result = await self._remediate(s)
        if result is not None:
            return result
        return await self._scale(s)

    # ------------------------------------------------------------------ certificates

    async def _certificates(self, s: State) -> None:
        spec = (s.kcp.get("spec") or {}).get("kubeadmConfigSpec") or {}
        days = int((spec.get("clusterConfiguration") or {}).get(
            "caCertificateValidityPeriodDays") or certs.DEFAULT_CA_VALIDITY_DAYS)
        try:
            await certs.lookup_or_generate(
                self.client, s.namespace, s.cluster_name,
                ownership.owner_reference(s.kcp, controller=True), ca_validity_days=days)
        except Exception as e:
            conditions.set_condition(s.kcp, types.CERTIFICATES_AVAILABLE_CONDITION, "Unknown",
                                     c.INTERNAL_ERROR_REASON, str(e))
            raise
        conditions.set_condition(s.kcp, types.CERTIFICATES_AVAILABLE_CONDITION, "True",
                                 c.AVAILABLE_REASON)

    async def _kubeconfig(self, s: State) -> None:
        name = c.kubeconfig_secret_name(s.cluster_name)
        try:
            secret = await self.client.get(*SECRET, name, s.namespace)
        except NotFound:
            try:
                await kubeconfig.create_secret(
                    self.client, s.cluster,
                    owner=ownership.owner_reference(s.kcp, controller=True))
            except AlreadyExists:
                pass
            return
        if ownership.is_controlled_by(secret, s.kcp):
            await kubeconfig.rotate_if_needed(self.client, s.cluster_name, s.namespace)

    # ------------------------------------------------------------------ observation

    async def _observe(self, s: State) -> None:
        """Outdated machines, Nodes Ready in the workload cluster, etcd members and leader."""
        now = datetime.now(UTC)
        for machine in s.machines:
            spec = machine.get("spec") or {}
            infra_ref = spec.get("infrastructureRef")
            infra = await self.external.get_or_none(infra_ref, s.namespace) if infra_ref else None
            config_ref = (spec.get("bootstrap") or {}).get("configRef") or {}
            config = self.configs.get(str(config_ref.get("name")), s.namespace) \
                if config_ref.get("kind") == bootstrap.CONFIG.kind else None
            reasons = m.outdated_reasons(machine, s.kcp, infra, config, now)
            if reasons:
                s.outdated[machine["metadata"]["name"]] = reasons
        if any(node_name(x) for x in s.machines):
            try:
                nodes = await self.remote.nodes(s.namespace, s.cluster_name)
            except RemoteUnavailable as e:
                s.etcd_error = f"workload cluster unreachable: {e}"
            else:
                for machine in s.machines:
                    node = nodes.cache.get(node_name(machine)) if node_name(machine) else None
                    if node is not None and any(
                            x.get("type") == "Ready" and x.get("status") == "True"
                            for x in (node.get("status") or {}).get("conditions") or []):
                        s.node_ready.add(machine["metadata"]["name"])
        if s.node_ready:
            s.kcp.setdefault("status", {}).setdefault("initialization", {})[
                "controlPlaneInitialized"] = True
        if external_etcd(s.kcp):
            return
        endpoints = {}
        for machine in s.machines:
            url = self.endpoints.client_url(machine)
            if node_name(machine) and url:
                endpoints[node_name(machine)] = url
        s.target = EtcdTarget(s.namespace, s.cluster_name, endpoints)
        if not endpoints:
            return
        try:
            s.members = await self.etcd.members(s.target)
            s.leader = await self.etcd.leader(s.target)
        except EtcdUnavailable as e:
            s.members, s.etcd_error = None, str(e)

    async def _forget_stale_members(self, s: State) -> None:
        """Upstream's `reconcileEtcdMembers`: once every Machine has its Node and none is
        deleting, an etcd member that belongs to no Machine (a machine lost without its
        pre-terminate hook running) is removed, if quorum survives its removal."""
        if s.members is None or s.target is None or not s.machines or any(
                m.is_deleting(x) or not node_name(x) for x in s.machines):
            return
        known = {node_name(x) for x in s.machines} | {x["metadata"]["name"] for x in s.machines}
        for member in list(s.members):
            if not member["name"] or member["name"] in known:
                continue  # unnamed: added by a joining machine that has not started yet
            ids = [x["id"] for x in s.members]
            if not can_remove(ids, s.healthy_members(), member["id"]):
                continue
            try:
                await self.etcd.remove_member(s.target, member["id"])
            except EtcdUnavailable as e:
                log.info("cannot remove stale etcd member %s yet: %s", member["name"], e)
                return
            s.members = [x for x in s.members if x["id"] != member["id"]]
            log.info("removed etcd member %s, which belongs to no Machine", member["name"])

    # ------------------------------------------------------------------ etcd

    async def _move_leader_off(self, s: State, machine: Object) -> None:
        member = s.member_of(machine)
        if member is None or s.target is None or s.leader != member["id"]:
            return
        healthy = s.healthy_members() - {member["id"]}
        candidates = sorted(
            (x for x in s.machines if x is not machine and (mm := s.member_of(x)) is not None
             and mm["id"] in healthy),
            key=lambda x: (x["metadata"]["name"] in s.outdated, -m.created(x).timestamp()))
        if not candidates:
            raise NoLeaderCandidate(f"no healthy etcd member to take over from "
                                    f"{machine['metadata']['name']}")
        to = s.member_of(candidates[0])
        assert to is not None
        await self.etcd.move_leader(s.target, to["id"])
        s.leader = to["id"]
        log.info("moved etcd leadership from %s to %s", machine["metadata"]["name"],
                 candidates[0]["metadata"]["name"])

    def _quorum_allows_removing(self, s: State, machine: Object) -> bool:
        if external_etcd(s.kcp):
            return True
        member = s.member_of(machine)
        if member is None:
            return s.members is not None or not node_name(machine)
        return can_remove([x["id"] for x in s.members or []], s.healthy_members(), member["id"])

    async def _release_hooks(self, s: State) -> Result | None:
        """The pre-terminate hook: the Machine is drained and about to lose its infrastructure;
        take its etcd member out first (leadership moved off, quorum kept)."""
        waiting = False
        for machine in s.machines:
            annotations = machine["metadata"].get("annotations") or {}
            if not m.is_deleting(machine) or \
                    types.PRE_TERMINATE_HOOK_CLEANUP_ANNOTATION not in annotations:
                continue
            deleting = conditions.get_condition(machine, c.DELETING_CONDITION) or {}
            if node_name(machine) and deleting.get("reason") != \
                    c.MACHINE_DELETING_WAITING_FOR_PRE_TERMINATE_HOOK_REASON:
                waiting = True  # still draining
                continue
            member = s.member_of(machine)
            if member is not None and s.target is not None:
                try:
                    await self._move_leader_off(s, machine)
                    await self.etcd.remove_member(s.target, member["id"])
                except EtcdUnavailable as e:
                    s.waiting = f"removing etcd member of {machine['metadata']['name']}: {e}"
                    return Result(requeue_after=WAIT)
                s.members = [x for x in s.members or [] if x["id"] != member["id"]]
                log.info("removed etcd member %s", member["name"])
            elif member is None and node_name(machine) and s.members is None \
                    and not external_etcd(s.kcp):
                s.waiting = f"cannot reach etcd to remove the member of " \
                            f"{machine['metadata']['name']}: {s.etcd_error}"
                return Result(requeue_after=WAIT)
            await self._drop_hook(machine)
        return Result() if waiting else None

    async def _drop_hook(self, machine: Object) -> None:
        try:
            await self.client.patch(*MACHINE, machine["metadata"]["name"], {"metadata": {
                "annotations": {types.PRE_TERMINATE_HOOK_CLEANUP_ANNOTATION: None}}},
                machine["metadata"]["namespace"])
        except NotFound:
            pass

    # ------------------------------------------------------------------ remediation

    async def _set_owner_remediated(self, machine: Object, reason: str, message: str) -> None:
        after = snapshot(machine)
        if conditions.set_condition(after, c.MACHINE_OWNER_REMEDIATED_CONDITION, "False",
                                    reason, message):
            try:
                await patch(self.client, machine, after)
            except NotFound:
                pass

    async def _retry_allowed(self, s: State, target: Object, now: datetime) -> int | None:
        """Upstream's `checkRetryLimits`: the retry count this remediation carries, or None
        (with OwnerRemediated saying why) when retryPeriod or maxRetry forbid it now."""
        previous = (target["metadata"].get("annotations") or {}).get(
            types.REMEDIATION_FOR_ANNOTATION)
        if not previous:
            return 0
        spec = (s.kcp.get("spec") or {}).get("remediation") or {}
        min_healthy = int(spec.get("minHealthyPeriodSeconds",
                                   types.DEFAULT_MIN_HEALTHY_PERIOD_SECONDS))
        period = int(spec.get("retryPeriodSeconds") or 0)
        data = json.loads(previous)
        last = m.parse_time(data.get("timestamp")) or \
            now - 2 * timedelta(seconds=max(min_healthy, period))
        if last + timedelta(seconds=min_healthy) <= now:
            return 0  # healthy long enough: a new problem, not a retry
        retry_count = int(data.get("retryCount", 0))
        if last + timedelta(seconds=period) > now:
            await self._set_owner_remediated(
                target, types.REMEDIATION_DEFERRED_REASON,
                "KubeadmControlPlane can't remediate this machine because the operation already "
                f"failed in the latest {period}s (RetryPeriod)")
            return None
        max_retry = spec.get("maxRetry")
        if max_retry is not None and retry_count >= int(max_retry):
            await self._set_owner_remediated(
                target, types.CANNOT_BE_REMEDIATED_REASON,
                "KubeadmControlPlane can't remediate this machine because the operation already "
                f"failed {max_retry} times (MaxRetry)")
            return None
        return retry_count + 1

    def _remediation_refusal(self, s: State, target: Object) -> tuple[str, str] | None:
        others = [x for x in s.machines if x is not target]
        if len(s.machines) <= 1:
            return (types.CANNOT_BE_REMEDIATED_REASON,
                    "KubeadmControlPlane can't remediate if current replicas are less or equal "
                    "to 1")
        if any(not node_name(x) and not m.is_deleting(x) and not conditions.is_false(
                x, c.MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION) for x in others):
            return (types.REMEDIATION_DEFERRED_REASON,
                    "KubeadmControlPlane waiting for control plane Machine provisioning to "
                    "complete before triggering remediation")
        if any(m.is_deleting(x) for x in others):
            return (types.REMEDIATION_DEFERRED_REASON,
                    "KubeadmControlPlane waiting for control plane Machine deletion to complete "
                    "before triggering remediation")
        if not self._quorum_allows_removing(s, target):
            return (types.CANNOT_BE_REMEDIATED_REASON,
                    "KubeadmControlPlane can't remediate this Machine because this could result "
                    "in etcd loosing quorum")
        return None

    async def _remediate(self, s: State) -> Result | None:
        """Upstream's `reconcileUnhealthyMachines`; None lets the reconcile go on."""
        unhealthy = [x for x in s.machines
                     if conditions.is_false(x, c.MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION)
                     and conditions.is_false(x, c.MACHINE_OWNER_REMEDIATED_CONDITION)]
        if not unhealthy:
            return None
        target = min(unhealthy, key=lambda x: (bool(node_name(x)), m.created(x),
                                               x["metadata"]["name"]))
        if m.is_deleting(target):
            return None
        annotations = s.kcp["metadata"].get("annotations") or {}
        in_progress = annotations.get(types.REMEDIATION_IN_PROGRESS_ANNOTATION)
        if in_progress:
            since = m.parse_time(json.loads(in_progress).get("timestamp"))
            if since is None or not any(m.created(x) > since for x in s.machines):
                return None  # the replacement is not created yet
            del annotations[types.REMEDIATION_IN_PROGRESS_ANNOTATION]  # stale
        now = datetime.now(UTC)
        retry_count = await self._retry_allowed(s, target, now)
        if retry_count is None:
            return None
        name = target["metadata"]["name"]
        if initialized(s):
            refusal = self._remediation_refusal(s, target)
            if refusal is not None:
                await self._set_owner_remediated(target, *refusal)
                return None
            try:
                await self._move_leader_off(s, target)
            except NoLeaderCandidate:
                await self._set_owner_remediated(
                    target, types.CANNOT_BE_REMEDIATED_REASON,
                    "KubeadmControlPlane can't remediate this Machine because there is no "
                    "healthy Machine to forward etcd leadership to")
                return None
            except EtcdUnavailable as e:
                await self._set_owner_remediated(target, c.INTERNAL_ERROR_REASON,
                                                 "Please check controller logs for errors")
                raise RuntimeError(f"moving etcd leadership off {name}: {e}") from e
        await self._delete_machine(target)
        await self._set_owner_remediated(target, types.MACHINE_DELETING_REASON,
                                         "Machine is deleting")
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        s.kcp["metadata"].setdefault("annotations", {})[
            types.REMEDIATION_IN_PROGRESS_ANNOTATION] = json.dumps(
                {"machine": name, "timestamp": stamp, "retryCount": retry_count})
        s.kcp.setdefault("status", {})["lastRemediation"] = {
            "machine": name, "time": stamp, "retryCount": retry_count}
        log.info("remediating unhealthy control-plane machine %s (retry %d)", name, retry_count)
        return Result()

    # ------------------------------------------------------------------ scaling

    async def _scale(self, s: State) -> Result:
        spec = s.kcp.get("spec") or {}
        desired = int(spec.get("replicas", 1))
        current = len(s.machines)
        if any(m.is_deleting(x) for x in s.machines):
            s.waiting = "Waiting for a control-plane Machine to be deleted"
            return Result()
        if current == 0:
            await self._create_machine(s, init=True)
            return Result()
        if not initialized(s):
            s.waiting = "Waiting for the control plane to be initialized"
            return Result()
        if s.outdated:
            if current < desired + max_surge(s.kcp):
                return await self._scale_up(s)
            return await self._scale_down(s, set(s.outdated))
        if current < desired:
            return await self._scale_up(s)
        if current > desired:
            return await self._scale_down(s, set())
        return Result()

    def _not_ready(self, s: State, exclude: Object | None = None) -> list[str]:
        return sorted(x["metadata"]["name"] for x in s.machines
                      if x is not exclude and x["metadata"]["name"] not in s.node_ready)

    async def _scale_up(self, s: State) -> Result:
        not_ready = self._not_ready(s)
        if not_ready:
            s.waiting = "Waiting for Machines to have a Ready Node: " + ", ".join(not_ready)
            return Result(requeue_after=WAIT)
        unstable = self._etcd_unstable(s)
        if unstable:
            s.waiting = unstable
            return Result(requeue_after=WAIT)
        await self._create_machine(s, init=False)
        return Result()

    def _etcd_unstable(self, s: State) -> str:
        """Upstream's preflight before a join: a stacked etcd must answer, have a leader and
        every member started (a member added by a joining machine has no name until its etcd
        runs), so the next machine's join does not meet a cluster still reconfiguring."""
        if external_etcd(s.kcp) or s.target is None or not s.target.endpoints:
            return ""
        if s.members is None:
            return f"Waiting for etcd to answer: {s.etcd_error}"
        if s.leader is None:
            return "Waiting for etcd to elect a leader"
        unstarted = [x["id"] for x in s.members if not x["name"]]
        if unstarted:
            return "Waiting for etcd members to start: " + ", ".join(unstarted)
        return ""

    async def _scale_down(self, s: State, outdated: set[str]) -> Result:
        victim = m.machine_to_delete(s.machines, outdated)
        if victim is None:
            return Result()
        not_ready = self._not_ready(s, exclude=victim)
        if not_ready:
            s.waiting = "Waiting for Machines to have a Ready Node: " + ", ".join(not_ready)
            return Result(requeue_after=WAIT)
        if not self._quorum_allows_removing(s, victim):
            s.waiting = (f"Cannot remove Machine {victim['metadata']['name']}: its etcd member's "
                         f"removal would break quorum {s.etcd_error}").strip()
            return Result(requeue_after=WAIT)
        try:
            await self._move_leader_off(s, victim)
        except EtcdUnavailable as e:
            s.waiting = f"Cannot move etcd leadership: {e}"
            return Result(requeue_after=WAIT)
        await self._delete_machine(victim)
        return Result()

    async def _delete_machine(self, machine: Object) -> None:
        try:
            await self.client.delete(*MACHINE, machine["metadata"]["name"],
                                     machine["metadata"]["namespace"])
        except NotFound:
            return
        log.info("deleting control-plane machine %s", machine["metadata"]["name"])

    def _machine_name(self, kcp: Object) -> str:
        return f"{kcp['metadata']['name']}-" + "".join(self.rng.choice(_RANDOM) for _ in range(5))

    async def _create_machine(self, s: State, *, init: bool) -> None:
        spec = s.kcp.get("spec") or {}
        template = spec.get("machineTemplate") or {}
        t_meta, t_spec = template.get("metadata") or {}, template.get("spec") or {}
        kcp_name, ns = str(s.kcp["metadata"]["name"]), s.namespace
        name = self._machine_name(s.kcp)
        labels = {**(t_meta.get("labels") or {}), c.CLUSTER_NAME_LABEL: s.cluster_name,
                  c.MACHINE_CONTROL_PLANE_LABEL: "",
                  c.MACHINE_CONTROL_PLANE_NAME_LABEL: kcp_name}
        annotations = {**(t_meta.get("annotations") or {}),
                       types.PRE_TERMINATE_HOOK_CLEANUP_ANNOTATION: ""}
        kcp_annotations = s.kcp["metadata"].get("annotations") or {}
        if types.REMEDIATION_IN_PROGRESS_ANNOTATION in kcp_annotations:
            annotations[types.REMEDIATION_FOR_ANNOTATION] = kcp_annotations.pop(
                types.REMEDIATION_IN_PROGRESS_ANNOTATION)
        owner = ownership.owner_reference(s.kcp)
        config_spec = copy.deepcopy(spec.get("kubeadmConfigSpec") or {})
        if init:
            config_spec.pop("joinConfiguration", None)
            config_spec.setdefault("initConfiguration", {})
        else:
            config_spec.pop("initConfiguration", None)
            join = config_spec.setdefault("joinConfiguration", {})
            join.setdefault("controlPlane", {})
        config: Object = {
            "apiVersion": bootstrap.API_VERSION, "kind": bootstrap.CONFIG.kind,
            "metadata": {"name": name, "namespace": ns, "labels": dict(labels),
                         "ownerReferences": [owner]},
            "spec": config_spec}
        created: list[tuple[dict[str, Any], str]] = []
        try:
            await self.client.create(config)
            created.append(({"apiGroup": bootstrap.GROUP, "kind": bootstrap.CONFIG.kind,
                             "name": name}, "config"))
            infra_ref = await self._clone_infrastructure(t_spec["infrastructureRef"], name, ns,
                                                         labels, owner)
            created.append((infra_ref, "infra"))
            machine_spec: dict[str, Any] = {
                "clusterName": s.cluster_name, "version": spec.get("version"),
                "bootstrap": {"configRef": created[0][0]}, "infrastructureRef": infra_ref}
            domain = m.failure_domain_for_new_machine(
                m.control_plane_failure_domains(s.cluster),
                [x for x in s.machines if x["metadata"]["name"] not in s.outdated])
            if domain:
                machine_spec["failureDomain"] = domain
            for key in ("deletion", "readinessGates", "taints"):
                if t_spec.get(key):
                    machine_spec[key] = copy.deepcopy(t_spec[key])
            await self.client.create({
                "apiVersion": API_VERSION, "kind": "Machine",
                "metadata": {"name": name, "namespace": ns, "labels": labels,
                             "annotations": annotations,
                             "ownerReferences": [ownership.owner_reference(s.kcp,
                                                                           controller=True)]},
                "spec": machine_spec})
        except Exception:
            for ref, _ in created:  # no orphans from a failed creation
                try:
                    await self.external.delete(ref, ns)
                except Exception:  # noqa: BLE001 - best effort; the original error matters
                    log.info("cleanup after failed creation of machine %s failed", name)
            raise
        log.info("created control-plane machine %s (%s)", name, "init" if init else "join")

    async def _clone_infrastructure(self, ref: dict[str, Any], name: str, ns: str,
                                    labels: dict[str, str], owner: Any) -> dict[str, Any]:
        template = await self.external.get(ref, ns)
        inner = (template.get("spec") or {}).get("template") or {}
        t_meta = inner.get("metadata") or {}
        kind = str(template["kind"]).removesuffix("Template")
        group = GVK.of(template).group
        await self.client.create({
            "apiVersion": template["apiVersion"], "kind": kind,
            "metadata": {"name": name, "namespace": ns,
                         "labels": {**(t_meta.get("labels") or {}), **labels},
                         "annotations": {
                             **(t_meta.get("annotations") or {}),
                             c.TEMPLATE_CLONED_FROM_NAME_ANNOTATION: str(
                                 template["metadata"]["name"]),
                             c.TEMPLATE_CLONED_FROM_GROUP_KIND_ANNOTATION: f"{template['kind']}."
                                                                           f"{group}"},
                         "ownerReferences": [owner]},
            "spec": copy.deepcopy(inner.get("spec") or {})})
        return {"apiGroup": group, "kind": kind, "name": name}

    # ------------------------------------------------------------------ deletion

    async def _reconcile_delete(self, s: State) -> Result:
        conditions.set_condition(s.kcp, types.DELETING_CONDITION, "True",
                                 types.WAITING_FOR_MACHINE_DELETION_REASON,
                                 f"Deleting {len(s.machines)} Machines")
        workers = [x for x in self.machines.list(
            s.namespace, f"{c.CLUSTER_NAME_LABEL}={s.cluster_name}")
            if c.MACHINE_CONTROL_PLANE_LABEL not in (x["metadata"].get("labels") or {})]
        if workers:
            conditions.set_condition(s.kcp, types.DELETING_CONDITION, "True",
                                     types.WAITING_FOR_WORKERS_DELETION_REASON,
                                     f"Waiting for {len(workers)} worker Machines to be deleted")
            return Result()
        for machine in s.machines:
            if types.PRE_TERMINATE_HOOK_CLEANUP_ANNOTATION in (
                    machine["metadata"].get("annotations") or {}):
                await self._drop_hook(machine)
            if not m.is_deleting(machine):
                await self._delete_machine(machine)
        if s.machines:
            return Result()
        await self.remote.forget(s.namespace, s.cluster_name)
        remove_finalizer(s.kcp, types.FINALIZER)
        return Result()

    # ------------------------------------------------------------------ status

    async def aclose(self) -> None:
        await self.remote.aclose()
        if self.owns_etcd and isinstance(self.etcd, GatewayEtcdMembership):
            await self.etcd.aclose()


async def setup(mgr: Manager, options: KubeadmControlPlaneOptions | None = None) -> \
        KubeadmControlPlaneReconciler:
    """Register the KubeadmControlPlane controller on `mgr`; `await reconciler.aclose()` after
    the manager stopped (it holds workload-cluster and etcd clients)."""
    opts = options or KubeadmControlPlaneOptions()
    reconciler = KubeadmControlPlaneReconciler(mgr, opts)
    controller = await mgr.new_controller(
        "kubeadmcontrolplane", reconciler, for_=types.CONTROL_PLANE, owns=[MACHINE],
        watches=[(CLUSTER, reconciler.map_cluster)],
        max_concurrent_reconciles=opts.concurrency)
    reconciler.controller = controller
    return reconciler
