"""The Machine controller (upstream `internal/controllers/machine`).

Contract, per reconcile of a Machine (v1beta2, plain dicts):

- waits for its Cluster (`spec.clusterName`); paused (Cluster `spec.paused` or the paused
  annotation on the Machine) keeps only the `Paused` condition current.
- ensures the `cluster.x-k8s.io/cluster-name` label, an ownerReference to the Cluster when no
  MachineSet, control plane or Cluster owns it, and the finalizer `machine.cluster.x-k8s.io`.
- bootstrap: `spec.bootstrap.configRef` is adopted (controller ownerReference, cluster label,
  watched) and its `status.dataSecretName` copied to `spec.bootstrap.dataSecretName` once
  `status.initialization.dataSecretCreated` (v1beta1: `status.ready`) is true; a Machine with
  only `dataSecretName` is bootstrapped as given.
- infrastructure: `spec.infrastructureRef` is adopted the same way; once it is provisioned
  (`status.initialization.provisioned` / `status.ready`) its `spec.providerID`,
  `status.addresses` and `spec.failureDomain` are copied.
- node: with a providerID, the workload cluster is reached through the `<cluster>-kubeconfig`
  Secret (`remote.RemoteClusters`); the Node whose `spec.providerID` matches becomes
  `status.nodeRef`, gets the cluster/machine annotations, and its Ready condition becomes
  NodeReady/NodeHealthy. Each workload cluster's Nodes are watched by an informer
  (`RemoteClusters.nodes`) whose events wake the Machine with the Node's providerID; an
  unreachable cluster is retried every `NODE_POLL` seconds. The informer is dropped when the
  last Machine of a deleting (or vanished) Cluster is gone.
- phase Pending → Provisioning (bootstrap data) → Provisioned (infrastructure) → Running
  (nodeRef) → Deleting; conditions BootstrapConfigReady, InfrastructureReady, NodeReady,
  NodeHealthy, Deleting, Paused, UpToDate (standalone Machines), Ready and Available (Ready for
  `minReadySeconds`), plus v1beta1 Ready/BootstrapReady/InfrastructureReady/NodeHealthy.
- deletion: while a `pre-drain.delete.hook.machine.cluster.x-k8s.io/*` annotation is present,
  wait; drain the Node (`drain.Drainer`: cordon, evict its Pods through the Eviction API,
  requeue every `drain.DRAIN_RETRY_INTERVAL` seconds while Pods are left, reporting them on the
  Deleting condition, reason DrainingNode), skipped with the
  `machine.cluster.x-k8s.io/exclude-node-draining` annotation, for an unreachable workload
  cluster, and once `spec.deletion.nodeDrainTimeoutSeconds` (0: never) have passed since
  `status.deletion.nodeDrainStartTime`; while a
  `pre-terminate.delete.hook.machine.cluster.x-k8s.io/*` annotation is present, wait; delete the
  infrastructure machine and the bootstrap config and wait until both are gone; delete the Node
  in the workload cluster (skipped when the Cluster itself is being deleted, and given up after
  `spec.deletion.nodeDeletionTimeoutSeconds`, default 10, counted from the deletionTimestamp);
  then drop the finalizer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound, StatusError
from shipyard.client.interfaces import GVK, Object, ReaderWriter
from shipyard.controllers import conditions, drain, ownership, pausing
from shipyard.controllers.cluster import provisioned
from shipyard.controllers.external import ContractVersionNotFound, ExternalObjects, ExternalTracker
from shipyard.controllers.kinds import CLUSTER, MACHINE, NODE
from shipyard.controllers.patching import add_finalizer, patch, remove_finalizer, snapshot
from shipyard.controllers.predicates import cluster_update_relevant
from shipyard.controllers.remote import PROVIDER_ID_INDEX, RemoteClusters, RemoteUnavailable
from shipyard.controllers.setup import Options
from shipyard.runtime import (
    Cache,
    Controller,
    EnqueueHandler,
    Manager,
    Request,
    Result,
    for_owner,
    logs,
)

log = logs.get_logger(__name__)

NODE_POLL = 1.0
"""Seconds between retries while a workload cluster cannot be reached."""
MACHINE_PROVIDER_ID_INDEX = "machine.cluster.x-k8s.io/providerID"
DEFAULT_NODE_DELETION_TIMEOUT = 10


def _is_deleting(obj: Object | None) -> bool:
    return bool(obj and (obj.get("metadata") or {}).get("deletionTimestamp"))


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _hooks(machine: Object, prefix: str) -> list[str]:
    return sorted(k for k in (machine["metadata"].get("annotations") or {})
                  if k.startswith(prefix + "/"))


class MachineReconciler:
    def __init__(self, mgr: Manager, options: Options) -> None:
        self.client: ReaderWriter = mgr.client
        self.machines = mgr.informer(MACHINE).cache
        self.clusters = mgr.informer(CLUSTER).cache
        self.external = ExternalObjects(mgr.client)
        mgr.informer(MACHINE).add_indexer(MACHINE_PROVIDER_ID_INDEX, _machine_provider_id)
        self.remote = RemoteClusters(mgr.client, options.remote_client_factory,
                                     node_handlers=self._node_handler)
        self.tracker: ExternalTracker | None = None
        self.controller: Controller | None = None
        self.node_poll = NODE_POLL
        self.drainer = drain.Drainer()

    def _node_handler(self, namespace: str, cluster_name: str) -> EnqueueHandler:
        """Node events of one workload cluster wake the Machines with that providerID."""
        def to_machines(node: Object) -> list[Request]:
            return [Request(namespace, m["metadata"]["name"])
                    for pid in _machine_provider_id(node)
                    for m in self.machines.by_index(MACHINE_PROVIDER_ID_INDEX, pid)
                    if m["metadata"].get("namespace") == namespace
                    and m["spec"].get("clusterName") == cluster_name]

        assert self.controller is not None, "setup() wires the controller before any reconcile"
        return EnqueueHandler(self.controller.queue, to_machines)

    def map_cluster_to_machines(self, cluster: Object) -> list[Request]:
        namespace = cluster["metadata"].get("namespace") or ""
        return [Request(namespace, m["metadata"]["name"]) for m in self.machines.list(
            namespace, f"{c.CLUSTER_NAME_LABEL}={cluster['metadata']['name']}")]

    async def reconcile(self, req: Request) -> Result:
        cached = self.machines.get(req.name, req.namespace)
        if cached is None:
            return Result()
        before, machine = snapshot(cached), snapshot(cached)
        cluster_name = str(machine["spec"]["clusterName"])
        cluster = self.clusters.get(cluster_name, req.namespace)
        if pausing.is_paused(cluster, machine):
            pausing.set_paused_condition(cluster, machine)
            await patch(self.client, before, machine)
            return Result()
        pausing.set_paused_condition(cluster, machine)
        if _is_deleting(machine):
            return await self._reconcile_delete(before, machine, cluster)
        if cluster is None:
            log.info("waiting for Cluster %s", cluster_name)
            return Result()  # the Cluster's creation wakes us (map_cluster_to_machines)
        changed = ownership.ensure_cluster_label(machine, cluster_name)
        if (ownership.controller_of(machine) is None
                and not ownership.has_owner(machine, c.GROUP, ("MachineSet", "Cluster"))):
            changed = ownership.ensure_owner_reference(
                machine, ownership.owner_reference(cluster)) or changed
        changed = add_finalizer(machine, c.MACHINE_FINALIZER) or changed
        if changed:
            await patch(self.client, before, machine)
            return Result()
        await self._reconcile_bootstrap(machine, cluster)
        await self._reconcile_infrastructure(machine, cluster)
        requeue = await self._reconcile_node(machine, cluster)
        self._set_phase(machine)
        requeue = _min(requeue, self._summarise(machine))
        machine.setdefault("status", {})["observedGeneration"] = machine["metadata"].get(
            "generation")
        await patch(self.client, before, machine)
        return Result(requeue_after=requeue)

    # ----------------------------------------------------------------- references

    async def _adopt(self, machine: Object, cluster: Object,
                     ref: dict[str, Any]) -> Object | None:
        namespace = machine["metadata"]["namespace"]
        gvk = await self.external.gvk(ref)
        if self.tracker is not None:
            self.tracker.watch(gvk)
        obj = await self.external.get_or_none(ref, namespace)
        if obj is None:
            return None
        changed = ownership.ensure_cluster_label(obj, cluster["metadata"]["name"])
        if ownership.controller_of(obj) is None:
            changed = ownership.ensure_owner_reference(
                obj, ownership.owner_reference(machine, controller=True)) or changed
        if changed:
            meta = obj["metadata"]
            obj = await self.client.patch(*gvk, meta["name"], {"metadata": {
                "ownerReferences": meta.get("ownerReferences") or [], "labels": meta["labels"],
                "resourceVersion": meta["resourceVersion"]}}, namespace)
        return obj

    async def _reconcile_bootstrap(self, machine: Object, cluster: Object) -> None:
        bootstrap = machine["spec"].setdefault("bootstrap", {})
        init = machine.setdefault("status", {}).setdefault("initialization", {})
        ref = bootstrap.get("configRef")
        ready, reason, message = False, "NotReady", ""
        if ref:
            try:
                config = await self._adopt(machine, cluster, ref)
            except ContractVersionNotFound as e:
                config, message = None, str(e)
            else:
                message = f"{ref['kind']} {ref['name']} does not exist"
            if config is None:
                reason = "DoesNotExist"
            else:
                status = config.get("status") or {}
                created = bool((status.get("initialization") or {}).get("dataSecretCreated")
                               or status.get("ready"))
                if created and status.get("dataSecretName"):
                    bootstrap["dataSecretName"] = status["dataSecretName"]
                mirrored = conditions.ready_of(config)
                ready = created
                reason, message = ("Ready", "") if created else (
                    (mirrored[1] or "NotReady", mirrored[2]) if mirrored
                    else ("NotReady", f"{ref['kind']} status.initialization.dataSecretCreated "
                                      "is not true"))
        elif bootstrap.get("dataSecretName"):
            ready, reason = True, "DataSecretProvided"
        else:
            message = "spec.bootstrap has neither configRef nor dataSecretName"
        if bootstrap.get("dataSecretName"):
            ready = True
        init["bootstrapDataSecretCreated"] = ready or bool(init.get("bootstrapDataSecretCreated"))
        conditions.set_condition(machine, c.BOOTSTRAP_CONFIG_READY_CONDITION,
                                 "True" if ready else "False", reason if not ready else (
                                     reason if reason != "NotReady" else "Ready"), message
                                 if not ready else "")
        conditions.set_v1beta1_condition(machine, c.V1BETA1_BOOTSTRAP_READY_CONDITION,
                                         "True" if ready else "False", "WaitingForDataSecret",
                                         severity=c.CONDITION_SEVERITY_INFO)

    async def _reconcile_infrastructure(self, machine: Object, cluster: Object) -> None:
        ref = machine["spec"]["infrastructureRef"]
        status = machine.setdefault("status", {})
        init = status.setdefault("initialization", {})
        try:
            infra = await self._adopt(machine, cluster, ref)
        except ContractVersionNotFound as e:
            conditions.set_condition(machine, c.INFRASTRUCTURE_READY_CONDITION, "Unknown",
                                     "InvalidInfrastructureRef", str(e))
            init.setdefault("infrastructureProvisioned", False)
            return
        if infra is None:
            deleted = bool(init.get("infrastructureProvisioned"))
            conditions.set_condition(
                machine, c.INFRASTRUCTURE_READY_CONDITION, "False",
                "Deleted" if deleted else "DoesNotExist",
                f"{ref['kind']} {ref['name']} "
                + ("has been deleted" if deleted else "does not exist"))
            init.setdefault("infrastructureProvisioned", False)
            return
        ready = provisioned(infra)
        init["infrastructureProvisioned"] = ready or bool(init.get("infrastructureProvisioned"))
        conditions.mirror_infrastructure_ready(machine, infra, ready, provisioned_wins=True)
        if not ready:
            return
        infra_spec = infra.get("spec") or {}
        if infra_spec.get("providerID"):
            machine["spec"]["providerID"] = infra_spec["providerID"]
        addresses = (infra.get("status") or {}).get("addresses")
        if addresses:
            status["addresses"] = addresses
        if infra_spec.get("failureDomain") and not machine["spec"].get("failureDomain"):
            machine["spec"]["failureDomain"] = infra_spec["failureDomain"]

    # ----------------------------------------------------------------- node

    async def _reconcile_node(self, machine: Object, cluster: Object) -> float | None:
        status = machine.setdefault("status", {})
        provider_id = machine["spec"].get("providerID")
        if not provider_id:
            self._node_conditions(machine, "Unknown", "WaitingForProviderID",
                                  "Waiting for the infrastructure to report a providerID")
            return None
        namespace = machine["metadata"]["namespace"]
        try:
            remote = await self.remote.client(namespace, cluster["metadata"]["name"])
            nodes = await self.remote.nodes(namespace, cluster["metadata"]["name"])
            node = _find_node(nodes.cache, provider_id, status.get("nodeRef"))
        except (RemoteUnavailable, StatusError, OSError) as e:
            self._node_conditions(machine, "Unknown", "InspectionFailed",
                                  f"Cannot reach the workload cluster: {e}")
            return self.node_poll
        if node is None:
            if status.get("nodeRef"):
                self._node_conditions(machine, "False", "NodeDeleted",
                                      f"Node {status['nodeRef']['name']} has been deleted")
                return None
            self._node_conditions(machine, "Unknown", "NodeDoesNotExist",
                                  f"Waiting for a Node with spec.providerID {provider_id}")
            return None  # the Node informer wakes us when it registers
        status["nodeRef"] = {"name": node["metadata"]["name"]}
        node_info = (node.get("status") or {}).get("nodeInfo")
        if node_info:
            status["nodeInfo"] = node_info
        await self._annotate_node(remote, node, machine, cluster)
        ready = next((cond for cond in (node.get("status") or {}).get("conditions") or []
                      if cond.get("type") == "Ready"), None)
        if ready is None:
            self._node_conditions(machine, "Unknown", "NodeReadyUnknown",
                                  "Node has no Ready condition yet")
            return None
        state = str(ready.get("status"))
        self._node_conditions(machine, state if state in ("True", "False") else "Unknown",
                              "NodeReady" if state == "True" else "NodeNotReady",
                              str(ready.get("message") or ""))
        return None

    async def _annotate_node(self, remote: ReaderWriter, node: Object, machine: Object,
                             cluster: Object) -> None:
        want = {c.CLUSTER_NAME_ANNOTATION: cluster["metadata"]["name"],
                c.CLUSTER_NAMESPACE_ANNOTATION: machine["metadata"]["namespace"],
                c.MACHINE_ANNOTATION: machine["metadata"]["name"]}
        owner = ownership.controller_of(machine)
        if owner is not None:
            want[c.OWNER_KIND_ANNOTATION] = str(owner["kind"])
            want[c.OWNER_NAME_ANNOTATION] = str(owner["name"])
        have = node["metadata"].get("annotations") or {}
        if any(have.get(k) != v for k, v in want.items()):
            await remote.patch(*NODE, node["metadata"]["name"], {"metadata": {
                "annotations": want}})

    def _node_conditions(self, machine: Object, status: str, reason: str, message: str) -> None:
        conditions.set_condition(machine, c.MACHINE_NODE_READY_CONDITION,
                                 status, reason, message)  # type: ignore[arg-type]
        conditions.set_condition(machine, c.MACHINE_NODE_HEALTHY_CONDITION,
                                 status, "NodeHealthy" if status == "True" else reason,  # type: ignore[arg-type]
                                 message)
        conditions.set_v1beta1_condition(machine, c.V1BETA1_NODE_HEALTHY_CONDITION,
                                         status, reason, message,  # type: ignore[arg-type]
                                         severity=c.CONDITION_SEVERITY_INFO)

    # ----------------------------------------------------------------- summary

    def _set_phase(self, machine: Object) -> None:
        status = machine.setdefault("status", {})
        phase = status.get("phase") or "Pending"
        if phase in ("Pending", "Provisioning", "Provisioned", "Running"):
            phase = "Pending"
            if machine["spec"].get("bootstrap", {}).get("dataSecretName"):
                phase = "Provisioning"
            if (status.get("initialization") or {}).get("infrastructureProvisioned") \
                    and machine["spec"].get("providerID"):
                phase = "Provisioned"
            if status.get("nodeRef"):
                phase = "Running"
        if _is_deleting(machine):
            phase = "Deleting"
        status["phase"] = phase

    def _summarise(self, machine: Object) -> float | None:
        if not any(r.get("controller") for r in machine["metadata"].get("ownerReferences")
                   or []):
            # Standalone Machines only: a MachineSet or a control plane (KubeadmControlPlane)
            # judges its own Machines' UpToDate.
            conditions.set_condition(machine, c.MACHINE_UP_TO_DATE_CONDITION, "True",
                                     c.UP_TO_DATE_REASON)
        if not _is_deleting(machine):
            conditions.set_condition(machine, c.DELETING_CONDITION, "False",
                                     c.NOT_DELETING_REASON)
        gates = [g["conditionType"] for g in machine["spec"].get("readinessGates") or []]
        sources = [c.BOOTSTRAP_CONFIG_READY_CONDITION, c.INFRASTRUCTURE_READY_CONDITION,
                   c.MACHINE_NODE_HEALTHY_CONDITION, *gates]
        bad = []
        for source in sources:
            cond = conditions.get_condition(machine, source)
            if cond is None or cond.get("status") != "True":
                bad.append(f"{source}: {(cond or {}).get('message') or 'not true'}")
        if _is_deleting(machine):
            bad.append("Machine is being deleted")
        if bad:
            conditions.set_condition(machine, c.READY_CONDITION, "False", c.NOT_READY_REASON,
                                     "; ".join(bad))
        else:
            conditions.set_condition(machine, c.READY_CONDITION, "True", c.READY_REASON)
        conditions.set_v1beta1_condition(machine, c.V1BETA1_READY_CONDITION,
                                         "False" if bad else "True", "NotReady",
                                         severity=c.CONDITION_SEVERITY_INFO)
        ready = conditions.get_condition(machine, c.READY_CONDITION) or {}
        if ready.get("status") != "True":
            conditions.set_condition(machine, c.AVAILABLE_CONDITION, "False",
                                     c.NOT_READY_REASON, "Machine is not Ready")
            return None
        min_ready = int(machine["spec"].get("minReadySeconds") or 0)
        since = (datetime.now(UTC) - _parse_time(str(ready["lastTransitionTime"]))).total_seconds()
        if since >= min_ready:
            conditions.set_condition(machine, c.AVAILABLE_CONDITION, "True", c.AVAILABLE_REASON)
            return None
        conditions.set_condition(machine, c.AVAILABLE_CONDITION, "False", "WaitingForMinReady",
                                 f"Ready for less than minReadySeconds ({min_ready}s)")
        return max(min_ready - since, 0.1)

    # ----------------------------------------------------------------- deletion

    async def _reconcile_delete(self, before: Object, machine: Object,
                                cluster: Object | None) -> Result:
        if c.MACHINE_FINALIZER not in (machine["metadata"].get("finalizers") or []):
            return Result()
        machine.setdefault("status", {})["phase"] = "Deleting"
        namespace = machine["metadata"]["namespace"]
        pre_drain = _hooks(machine, c.PRE_DRAIN_DELETE_HOOK_ANNOTATION_PREFIX)
        if pre_drain:
            return await self._deleting(
                before, machine, c.MACHINE_DELETING_WAITING_FOR_PRE_DRAIN_HOOK_REASON,
                "Waiting for pre-drain hooks to succeed: " + ", ".join(pre_drain))
        conditions.set_v1beta1_condition(
            machine, c.V1BETA1_PRE_DRAIN_DELETE_HOOK_SUCCEEDED_CONDITION, "True")
        node_ref = (machine.get("status") or {}).get("nodeRef")
        annotations = machine["metadata"].get("annotations") or {}
        if (node_ref and cluster is not None and not _is_deleting(cluster)
                and c.EXCLUDE_NODE_DRAINING_ANNOTATION not in annotations):
            retry = await self._drain(before, machine, node_ref["name"])
            if retry is not None:
                return Result(requeue_after=retry)
        conditions.set_v1beta1_condition(machine, c.V1BETA1_DRAINING_SUCCEEDED_CONDITION, "True")
        pre_terminate = _hooks(machine, c.PRE_TERMINATE_DELETE_HOOK_ANNOTATION_PREFIX)
        if pre_terminate:
            return await self._deleting(
                before, machine, c.MACHINE_DELETING_WAITING_FOR_PRE_TERMINATE_HOOK_REASON,
                "Waiting for pre-terminate hooks to succeed: " + ", ".join(pre_terminate))
        conditions.set_v1beta1_condition(
            machine, c.V1BETA1_PRE_TERMINATE_DELETE_HOOK_SUCCEEDED_CONDITION, "True")
        waiting: list[str] = []
        for ref, reason in (
                (machine["spec"].get("infrastructureRef"),
                 c.MACHINE_DELETING_WAITING_FOR_INFRASTRUCTURE_DELETION_REASON),
                ((machine["spec"].get("bootstrap") or {}).get("configRef"),
                 c.MACHINE_DELETING_WAITING_FOR_BOOTSTRAP_DELETION_REASON)):
            if not ref:
                continue
            try:
                gvk = await self.external.gvk(ref)
                if self.tracker is not None:
                    self.tracker.watch(gvk)
                gone = await self.external.delete(ref, namespace)
            except ContractVersionNotFound:
                gone = True
            if not gone:
                waiting.append(reason)
        if waiting:
            return await self._deleting(before, machine, waiting[0],
                                        "Waiting for infrastructure and bootstrap to be deleted")
        node_ref = (machine.get("status") or {}).get("nodeRef")
        if node_ref and cluster is not None and not _is_deleting(cluster):
            retry = await self._delete_node(machine, node_ref["name"])
            if retry is not None:
                await self._deleting(before, machine, c.MACHINE_DELETING_DELETING_NODE_REASON,
                                     f"Deleting Node {node_ref['name']}")
                return Result(requeue_after=retry)
        conditions.set_condition(machine, c.DELETING_CONDITION, "True",
                                 c.DELETION_COMPLETED_REASON)
        remove_finalizer(machine, c.MACHINE_FINALIZER)
        try:
            await patch(self.client, before, machine)
        except NotFound:
            pass
        if cluster is None or _is_deleting(cluster):
            await self._forget_if_last(machine)
        return Result()

    async def _forget_if_last(self, machine: Object) -> None:
        """Stop watching a going cluster's Nodes once none of its Machines is left."""
        namespace, cluster_name = machine["metadata"]["namespace"], machine["spec"]["clusterName"]
        others = [m for m in self.machines.list(namespace)
                  if m["spec"].get("clusterName") == cluster_name
                  and m["metadata"]["name"] != machine["metadata"]["name"]]
        if not others:
            await self.remote.forget(namespace, cluster_name)

    async def _drain(self, before: Object, machine: Object, node_name: str) -> float | None:
        """Drain the Node; None when done (or given up), else retry in (after reporting the
        Pods left on the Deleting condition)."""
        deletion = machine.setdefault("status", {}).setdefault("deletion", {})
        started = deletion.get("nodeDrainStartTime")
        if not started:
            started = deletion["nodeDrainStartTime"] = datetime.now(UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ")
        timeout = int((machine["spec"].get("deletion") or {}).get("nodeDrainTimeoutSeconds")
                      or 0)
        elapsed = (datetime.now(UTC) - _parse_time(str(started))).total_seconds()
        if timeout and elapsed >= timeout:
            log.warning("giving up draining Node %s after nodeDrainTimeoutSeconds (%ss)",
                        node_name, timeout)
            return None
        try:
            remote = await self.remote.client(machine["metadata"]["namespace"],
                                              machine["spec"]["clusterName"])
            result = await self.drainer.drain(remote, node_name, str(started))
        except NotFound:
            return None  # the Node is gone: nothing to drain
        except (RemoteUnavailable, OSError) as e:
            # An unreachable workload cluster cannot be drained; deletion goes on (the Node
            # deletion step has its own timeout).
            log.warning("skipping drain of Node %s: workload cluster unreachable: %s",
                        node_name, e)
            return None
        except StatusError as e:
            message = f"Drain not completed yet (started at {started}):\n* {e}"
            retry: float = self.node_poll
        else:
            if result.completed:
                return None
            message, retry = result.message, drain.DRAIN_RETRY_INTERVAL
        conditions.set_v1beta1_condition(machine, c.V1BETA1_DRAINING_SUCCEEDED_CONDITION,
                                         "False", "Draining", message,
                                         severity=c.CONDITION_SEVERITY_INFO)
        await self._deleting(before, machine, c.MACHINE_DELETING_DRAINING_NODE_REASON, message)
        return retry

    async def _delete_node(self, machine: Object, node_name: str) -> float | None:
        """Delete the Node; None when done (or given up after the timeout), else retry in."""
        timeout = (machine["spec"].get("deletion") or {}).get("nodeDeletionTimeoutSeconds")
        timeout = DEFAULT_NODE_DELETION_TIMEOUT if timeout is None else int(timeout)
        try:
            remote = await self.remote.client(machine["metadata"]["namespace"],
                                              machine["spec"]["clusterName"])
            await remote.delete(*NODE, node_name)
        except NotFound:
            return None
        except (RemoteUnavailable, StatusError, OSError) as e:
            started = _parse_time(str(machine["metadata"]["deletionTimestamp"]))
            elapsed = (datetime.now(UTC) - started).total_seconds()
            if timeout and elapsed >= timeout:
                log.warning("giving up deleting Node %s after %ss: %s", node_name, timeout, e)
                return None
            return self.node_poll
        return None

    async def _deleting(self, before: Object, machine: Object, reason: str,
                        message: str) -> Result:
        conditions.set_condition(machine, c.DELETING_CONDITION, "True", reason, message)
        self._summarise(machine)
        await patch(self.client, before, machine)
        return Result()


def _machine_provider_id(obj: Object) -> list[str]:
    pid = (obj.get("spec") or {}).get("providerID")
    return [str(pid)] if pid else []


def _find_node(nodes: Cache, provider_id: str, node_ref: dict[str, Any] | None) -> Object | None:
    if node_ref:
        node = nodes.get(str(node_ref["name"]))
        if node is not None and (node.get("spec") or {}).get("providerID") == provider_id:
            return node
    found = nodes.by_index(PROVIDER_ID_INDEX, provider_id)
    return found[0] if found else None


def _min(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return min(values) if values else None


async def setup(mgr: Manager, options: Options) -> None:
    reconciler = MachineReconciler(mgr, options)
    options.closers.append(reconciler.remote.aclose)
    controller = await mgr.new_controller(
        "machine", reconciler, for_=MACHINE,
        max_concurrent_reconciles=options.concurrency.get("machine", 10))
    controller.watch(mgr.informer(CLUSTER), reconciler.map_cluster_to_machines,
                     update_predicate=cluster_update_relevant)
    reconciler.controller = controller
    reconciler.tracker = ExternalTracker(mgr, controller, for_owner(GVK(*MACHINE)))
