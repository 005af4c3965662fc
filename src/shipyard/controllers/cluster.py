"""The Cluster controller (upstream `internal/controllers/cluster`).

Contract, per reconcile of a Cluster (v1beta2, plain dicts):

- paused (`spec.paused` or the `cluster.x-k8s.io/paused` annotation): only the `Paused`
  condition is kept up to date; nothing else, deletion included.
- the finalizer `cluster.cluster.x-k8s.io` is added first.
- `spec.infrastructureRef` and `spec.controlPlaneRef` are adopted: each gets a controller
  ownerReference to the Cluster and the cluster-name label; their kinds are watched. The infra
  cluster's `status.initialization.provisioned` (v1beta1: `status.ready`) becomes
  `status.initialization.infrastructureProvisioned`; its `spec.controlPlaneEndpoint` and
  `status.failureDomains` (map or list) are copied when the Cluster has none. Without an
  infrastructureRef the infrastructure counts as provisioned, as upstream.
- control plane initialized: from the control plane object
  (`status.initialization.controlPlaneInitialized`, v1beta1 `status.initialized`), or, without a
  controlPlaneRef, once any control-plane Machine (label `cluster.x-k8s.io/control-plane`)
  has a nodeRef. It never goes back to false.
- phase: Pending → Provisioning (a ref is set) → Provisioned (infrastructure provisioned and a
  valid control-plane endpoint) → Deleting.
- conditions (v1beta2): InfrastructureReady, ControlPlaneInitialized, ControlPlaneAvailable,
  WorkersAvailable, ControlPlaneMachinesReady, WorkerMachinesReady, Deleting, Paused, and the
  summaries Available and Ready; v1beta1 Ready/InfrastructureReady/ControlPlaneReady/
  ControlPlaneInitialized under status.deprecated.v1beta1. Replica counters: status.controlPlane
  from the control plane object's spec/status replicas (or, without one, from the control-plane
  Machines) and status.workers from the other Machines.
- deletion: delete the MachineDeployments, MachineSets and Machines the Cluster owns, wait until
  no MachineDeployment, MachineSet or Machine of the cluster is left, then delete the control
  plane and wait for it, then the infrastructure cluster and wait for it, then drop the finalizer.
"""

from __future__ import annotations

from typing import Any

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound
from shipyard.client.interfaces import GVK, Object, ReaderWriter
from shipyard.controllers import conditions, ownership, pausing
from shipyard.controllers.external import ContractVersionNotFound, ExternalObjects, ExternalTracker
from shipyard.controllers.kinds import CLUSTER, MACHINE, MACHINE_DEPLOYMENT, MACHINE_SET
from shipyard.controllers.patching import add_finalizer, patch, remove_finalizer, snapshot
from shipyard.controllers.predicates import machine_update_relevant_to_cluster
from shipyard.controllers.setup import Options
from shipyard.runtime import Manager, Request, Result, for_owner, logs

log = logs.get_logger(__name__)

DELETE_REQUEUE = 5.0
"""Safety net while waiting for descendants to go (their delete events wake us anyway)."""


def map_to_cluster(obj: Object) -> list[Request]:
    """Objects labelled with a cluster name wake that Cluster."""
    name = ownership.cluster_name_of(obj)
    return [Request(str(obj["metadata"].get("namespace") or ""), name)] if name else []


def _is_deleting(obj: Object) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _endpoint_valid(endpoint: Any) -> bool:
    return bool(endpoint) and bool(endpoint.get("host")) and bool(endpoint.get("port"))


def _failure_domains(raw: Any) -> list[dict[str, Any]] | None:
    """v1beta1 providers report a map name → {controlPlane, attributes}; v1beta2 a list."""
    if isinstance(raw, dict) and raw:
        return [{"name": name, **(fd or {})} for name, fd in sorted(raw.items())]
    if isinstance(raw, list) and raw:
        return sorted((dict(fd) for fd in raw), key=lambda fd: str(fd.get("name")))
    return None


def provisioned(obj: Object) -> bool:
    """An infrastructure object's contract "provisioned" (v1beta2 or v1beta1 field)."""
    status = obj.get("status") or {}
    return bool((status.get("initialization") or {}).get("provisioned") or status.get("ready"))


class ClusterReconciler:
    def __init__(self, mgr: Manager, options: Options) -> None:
        self.client: ReaderWriter = mgr.client
        self.mgr = mgr
        self.options = options
        self.clusters = mgr.informer(CLUSTER).cache
        self.machines = mgr.informer(MACHINE).cache
        self.machine_sets = mgr.informer(MACHINE_SET).cache
        self.machine_deployments = mgr.informer(MACHINE_DEPLOYMENT).cache
        self.external = ExternalObjects(mgr.client)
        self.tracker: ExternalTracker | None = None

    async def reconcile(self, req: Request) -> Result:
        cached = self.clusters.get(req.name, req.namespace)
        if cached is None:
            return Result()
        before = snapshot(cached)
        cluster = snapshot(cached)
        if pausing.is_paused(cluster, cluster):
            pausing.set_paused_condition(cluster, cluster)
            await patch(self.client, before, cluster)
            return Result()
        pausing.set_paused_condition(cluster, cluster)
        if _is_deleting(cluster):
            return await self._reconcile_delete(before, cluster)
        if add_finalizer(cluster, c.CLUSTER_FINALIZER):
            await patch(self.client, before, cluster)
            return Result()  # the update event brings us back with the finalizer in place
        await self._reconcile_infrastructure(cluster)
        await self._reconcile_control_plane(cluster)
        self._reconcile_machines(cluster)
        self._set_phase(cluster)
        self._summarise(cluster)
        cluster.setdefault("status", {})["observedGeneration"] = cluster["metadata"].get(
            "generation")
        await patch(self.client, before, cluster)
        return Result()

    # ----------------------------------------------------------------- references

    async def _adopt(self, cluster: Object, ref: dict[str, Any]) -> Object | None:
        namespace = cluster["metadata"]["namespace"]
        gvk = await self.external.gvk(ref)
        if self.tracker is not None:
            self.tracker.watch(gvk)
        obj = await self.external.get_or_none(ref, namespace)
        if obj is None:
            return None
        changed = ownership.ensure_owner_reference(
            obj, ownership.owner_reference(cluster, controller=True))
        changed = ownership.ensure_cluster_label(obj, cluster["metadata"]["name"]) or changed
        if changed:
            meta = obj["metadata"]
            obj = await self.client.patch(*gvk, meta["name"], {"metadata": {
                "ownerReferences": meta["ownerReferences"], "labels": meta["labels"],
                "resourceVersion": meta["resourceVersion"]}}, namespace)
        return obj

    async def _reconcile_infrastructure(self, cluster: Object) -> None:
        spec = cluster.get("spec") or {}
        status = cluster.setdefault("status", {})
        init = status.setdefault("initialization", {})
        ref = spec.get("infrastructureRef")
        if not ref:
            init["infrastructureProvisioned"] = True
            conditions.set_condition(cluster, c.INFRASTRUCTURE_READY_CONDITION, "True",
                                     "NoInfrastructure")
            return
        try:
            infra = await self._adopt(cluster, ref)
        except ContractVersionNotFound as e:
            conditions.set_condition(cluster, c.INFRASTRUCTURE_READY_CONDITION, "Unknown",
                                     "InvalidInfrastructureRef", str(e))
            init.setdefault("infrastructureProvisioned", False)
            return
        if infra is None:
            reason = ("InfrastructureDeleted" if init.get("infrastructureProvisioned")
                      else "InfrastructureDoesNotExist")
            conditions.set_condition(cluster, c.INFRASTRUCTURE_READY_CONDITION, "False", reason,
                                     f"{ref['kind']} {ref['name']} does not exist")
            init.setdefault("infrastructureProvisioned", False)
            return
        ready = provisioned(infra)
        init["infrastructureProvisioned"] = bool(init.get("infrastructureProvisioned")) or ready
        conditions.mirror_infrastructure_ready(cluster, infra, ready)
        if not ready:
            return
        endpoint: dict[str, Any] = (infra.get("spec") or {}).get("controlPlaneEndpoint") or {}
        if not _endpoint_valid(spec.get("controlPlaneEndpoint")) and _endpoint_valid(endpoint):
            cluster["spec"]["controlPlaneEndpoint"] = {"host": endpoint["host"],
                                                       "port": endpoint["port"]}
        domains = _failure_domains((infra.get("status") or {}).get("failureDomains"))
        if domains is not None:
            status["failureDomains"] = domains

    async def _reconcile_control_plane(self, cluster: Object) -> None:
        spec = cluster.get("spec") or {}
        init = cluster.setdefault("status", {}).setdefault("initialization", {})
        ref = spec.get("controlPlaneRef")
        already = bool(init.get("controlPlaneInitialized"))
        available: tuple[str, str, str]
        if ref:
            try:
                cp = await self._adopt(cluster, ref)
            except ContractVersionNotFound as e:
                cp, message = None, str(e)
            else:
                message = f"{ref['kind']} {ref['name']} does not exist"
            if cp is None:
                initialized = already
                available = ("False", "ControlPlaneDoesNotExist", message)
            else:
                cp_status = cp.get("status") or {}
                counters = {k: cp_status[k] for k in (
                    "replicas", "readyReplicas", "availableReplicas", "upToDateReplicas")
                    if isinstance(cp_status.get(k), int)}
                desired = (cp.get("spec") or {}).get("replicas")
                if isinstance(desired, int):
                    counters["desiredReplicas"] = desired
                if counters:
                    cluster["status"]["controlPlane"] = counters
                initialized = already or bool(
                    (cp_status.get("initialization") or {}).get("controlPlaneInitialized")
                    or cp_status.get("initialized"))
                endpoint: dict[str, Any] = (
                    (cp.get("spec") or {}).get("controlPlaneEndpoint") or {})
                if (not _endpoint_valid(spec.get("controlPlaneEndpoint"))
                        and _endpoint_valid(endpoint)):
                    cluster["spec"]["controlPlaneEndpoint"] = dict(endpoint)
                cp_available = conditions.get_condition(cp, c.AVAILABLE_CONDITION)
                if cp_available is not None:
                    available = (str(cp_available.get("status")),
                                 str(cp_available.get("reason") or "Available"),
                                 str(cp_available.get("message") or ""))
                else:
                    ready = conditions.ready_of(cp)
                    available = ready or ("Unknown", "AvailableUnknown",
                                          f"{ref['kind']} does not report Available")
        else:
            initialized = already or any(
                (m.get("status") or {}).get("nodeRef")
                for m in self._machines_of(cluster) if _is_control_plane(m))
            available = (("True", "Available", "") if initialized
                         else ("False", "NotAvailable", "No control-plane Machine has a Node"))
        init["controlPlaneInitialized"] = initialized
        conditions.set_condition(
            cluster, c.CLUSTER_CONTROL_PLANE_INITIALIZED_CONDITION,
            "True" if initialized else "False",
            "Initialized" if initialized else "NotInitialized",
            "" if initialized else "Control plane not yet initialized")
        conditions.set_condition(cluster, c.CLUSTER_CONTROL_PLANE_AVAILABLE_CONDITION,
                                 available[0], available[1], available[2])  # type: ignore[arg-type]
        conditions.set_v1beta1_condition(
            cluster, c.V1BETA1_CONTROL_PLANE_INITIALIZED_CONDITION,
            "True" if initialized else "False", "WaitingForControlPlaneProviderInitialized",
            severity=c.CONDITION_SEVERITY_INFO)
        conditions.set_v1beta1_condition(
            cluster, c.V1BETA1_CONTROL_PLANE_READY_CONDITION, available[0],  # type: ignore[arg-type]
            "WaitingForControlPlane", severity=c.CONDITION_SEVERITY_INFO)

    # ----------------------------------------------------------------- machines

    def _machines_of(self, cluster: Object) -> list[Object]:
        return self.machines.list(
            cluster["metadata"]["namespace"],
            f"{c.CLUSTER_NAME_LABEL}={cluster['metadata']['name']}")

    def _reconcile_machines(self, cluster: Object) -> None:
        status = cluster.setdefault("status", {})
        # One pass over the machines, each machine's conditions read once: this runs on every
        # Machine event, over all machines of the cluster (O(N) per event).
        control_plane: list[tuple[str, dict[str, Any]]] = []
        workers: list[tuple[str, dict[str, Any]]] = []
        for m in self._machines_of(cluster):
            entry = (str(m["metadata"]["name"]), _condition_statuses(m))
            (control_plane if _is_control_plane(m) else workers).append(entry)
        if not (cluster.get("spec") or {}).get("controlPlaneRef"):
            status["controlPlane"] = _counters(control_plane)
        status["workers"] = _counters(workers)
        for type_, group in ((c.CLUSTER_CONTROL_PLANE_MACHINES_READY_CONDITION, control_plane),
                             (c.CLUSTER_WORKER_MACHINES_READY_CONDITION, workers)):
            not_ready = sorted(name for name, statuses in group
                               if statuses.get(c.READY_CONDITION) != "True")
            if not group:
                conditions.set_condition(cluster, type_, "True", "NoReplicas")
            elif not_ready:
                conditions.set_condition(cluster, type_, "False", "NotReady",
                                         "Machines not ready: " + ", ".join(not_ready[:10]))
            else:
                conditions.set_condition(cluster, type_, "True", "Ready")
        deployments = self.machine_deployments.list(
            cluster["metadata"]["namespace"],
            f"{c.CLUSTER_NAME_LABEL}={cluster['metadata']['name']}")
        unavailable = sorted(d["metadata"]["name"] for d in deployments
                             if not conditions.is_true(d, c.AVAILABLE_CONDITION))
        if unavailable:
            conditions.set_condition(cluster, c.CLUSTER_WORKERS_AVAILABLE_CONDITION, "False",
                                     "NotAvailable",
                                     "MachineDeployments not available: "
                                     + ", ".join(unavailable[:10]))
        else:
            conditions.set_condition(cluster, c.CLUSTER_WORKERS_AVAILABLE_CONDITION, "True",
                                     "Available" if deployments else "NoWorkers")

    # ----------------------------------------------------------------- summary

    def _set_phase(self, cluster: Object) -> None:
        spec = cluster.get("spec") or {}
        status = cluster.setdefault("status", {})
        phase = status.get("phase") or "Pending"
        if spec.get("infrastructureRef") or spec.get("controlPlaneRef"):
            phase = "Provisioning"
        if ((status.get("initialization") or {}).get("infrastructureProvisioned")
                and _endpoint_valid(spec.get("controlPlaneEndpoint"))):
            phase = "Provisioned"
        if _is_deleting(cluster):
            phase = "Deleting"
        status["phase"] = phase

    def _summarise(self, cluster: Object) -> None:
        conditions.set_condition(cluster, c.DELETING_CONDITION, "False", c.NOT_DELETING_REASON)
        gates = [g["conditionType"] for g in (cluster.get("spec") or {}).get(
            "availabilityGates") or []]
        available_from = [c.INFRASTRUCTURE_READY_CONDITION,
                          c.CLUSTER_CONTROL_PLANE_AVAILABLE_CONDITION,
                          c.CLUSTER_WORKERS_AVAILABLE_CONDITION, *gates]
        _summary(cluster, c.AVAILABLE_CONDITION, available_from, "Available", "NotAvailable")
        _summary(cluster, c.READY_CONDITION,
                 [*available_from, c.CLUSTER_CONTROL_PLANE_MACHINES_READY_CONDITION,
                  c.CLUSTER_WORKER_MACHINES_READY_CONDITION], "Ready", "NotReady")
        ready = conditions.is_true(cluster, c.READY_CONDITION)
        conditions.set_v1beta1_condition(cluster, c.V1BETA1_READY_CONDITION,
                                         "True" if ready else "False", "NotReady",
                                         severity=c.CONDITION_SEVERITY_INFO)

    # ----------------------------------------------------------------- deletion

    async def _reconcile_delete(self, before: Object, cluster: Object) -> Result:
        cluster.setdefault("status", {})["phase"] = "Deleting"
        namespace, name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
        selector = f"{c.CLUSTER_NAME_LABEL}={name}"
        descendants = [
            *(self.machine_deployments.list(namespace, selector)),
            *(self.machine_sets.list(namespace, selector)),
            *[m for m in self.machines.list(namespace, selector) if not _is_control_plane(m)],
        ]
        if not (cluster.get("spec") or {}).get("controlPlaneRef"):
            # With a control-plane object, its Machines are its own to delete (upstream's
            # objectsPendingDeleteCount): waiting for them here would never end, since the
            # control plane is only deleted once the descendants are gone.
            descendants += [m for m in self.machines.list(namespace, selector)
                            if _is_control_plane(m)]
        uid = cluster["metadata"]["uid"]
        owned = [d for d in descendants
                 if any(r.get("uid") == uid for r in d["metadata"].get("ownerReferences") or [])]
        for child in owned:
            if not _is_deleting(child):
                try:
                    await self.client.delete(child["apiVersion"], child["kind"],
                                             child["metadata"]["name"], namespace,
                                             propagation_policy="Background")
                except NotFound:
                    pass
        if descendants:
            kinds = sorted({d["kind"] for d in descendants})
            await self._deleting(before, cluster, "WaitingForWorkersDeletion",
                                 f"{len(descendants)} objects still deleting ({', '.join(kinds)})")
            return Result(requeue_after=DELETE_REQUEUE)
        for ref_field, reason in (("controlPlaneRef", "WaitingForControlPlaneDeletion"),
                                  ("infrastructureRef", "WaitingForInfrastructureDeletion")):
            ref = (cluster.get("spec") or {}).get(ref_field)
            if not ref:
                continue
            try:
                gone = await self.external.delete(ref, namespace)
            except ContractVersionNotFound:
                gone = True  # nobody serves the kind any more: nothing to wait for
            if not gone:
                await self._deleting(before, cluster, reason,
                                     f"Waiting for {ref['kind']} {ref['name']} to be deleted")
                return Result(requeue_after=DELETE_REQUEUE)
        conditions.set_condition(cluster, c.DELETING_CONDITION, "True",
                                 c.DELETION_COMPLETED_REASON)
        remove_finalizer(cluster, c.CLUSTER_FINALIZER)
        try:
            await patch(self.client, before, cluster)
        except NotFound:
            pass
        log.info("cluster deleted")
        return Result()

    async def _deleting(self, before: Object, cluster: Object, reason: str, message: str) -> None:
        conditions.set_condition(cluster, c.DELETING_CONDITION, "True", reason, message)
        await patch(self.client, before, cluster)


MACHINE_EVENT_DELAY = 0.5
"""Seconds Machine events wait before they wake their Cluster, so a burst coalesces."""


def _is_control_plane(machine: Object) -> bool:
    return c.MACHINE_CONTROL_PLANE_LABEL in ((machine.get("metadata") or {}).get("labels") or {})


def _condition_statuses(obj: Object) -> dict[str, Any]:
    """type → status of an object's conditions."""
    return {cond.get("type"): cond.get("status")
            for cond in (obj.get("status") or {}).get("conditions") or ()}


def _counters(machines: list[tuple[str, dict[str, Any]]]) -> dict[str, int]:
    """Replica counters from (name, condition statuses) of machines."""
    ready = available = up_to_date = 0
    for _, statuses in machines:
        ready += statuses.get(c.READY_CONDITION) == "True"
        available += statuses.get(c.AVAILABLE_CONDITION) == "True"
        up_to_date += statuses.get(c.MACHINE_UP_TO_DATE_CONDITION) == "True"
    return {
        "desiredReplicas": len(machines),
        "replicas": len(machines),
        "readyReplicas": ready,
        "availableReplicas": available,
        "upToDateReplicas": up_to_date,
    }


def _summary(obj: Object, type_: str, sources: list[str], ok: str, not_ok: str) -> None:
    """True when every source condition is True; otherwise the first non-true decides."""
    bad: list[str] = []
    worst = "True"
    for source in sources:
        cond = conditions.get_condition(obj, source)
        status = str(cond.get("status")) if cond else "Unknown"
        if status != "True":
            bad.append(f"{source}: {(cond or {}).get('message') or status}")
            if status == "False" or worst == "True":
                worst = status
    if not bad:
        conditions.set_condition(obj, type_, "True", ok)
    else:
        conditions.set_condition(obj, type_, worst, not_ok if worst == "False"  # type: ignore[arg-type]
                                 else f"{type_}Unknown", "; ".join(bad))


async def setup(mgr: Manager, options: Options) -> None:
    reconciler = ClusterReconciler(mgr, options)
    controller = await mgr.new_controller(
        "cluster", reconciler, for_=CLUSTER,
        watches=[(MACHINE_SET, map_to_cluster), (MACHINE_DEPLOYMENT, map_to_cluster)],
        max_concurrent_reconciles=options.concurrency.get("cluster", 10))
    # The reconcile summarises all of the cluster's machines (O(N)); while machines churn,
    # their events coalesce into at most one Cluster reconcile per MACHINE_EVENT_DELAY.
    controller.watch(mgr.informer(MACHINE), map_to_cluster,
                     update_predicate=machine_update_relevant_to_cluster,
                     delay=MACHINE_EVENT_DELAY)
    reconciler.tracker = ExternalTracker(mgr, controller, for_owner(GVK(*CLUSTER)))
