"""The InMemoryMachine controller: "boots" a machine into its cluster's simulated workload
cluster.

Contract (the v1beta1 InfraMachine contract): once its owner Machine has set an ownerReference,
an InMemoryMachine gets the finalizer `inmemorymachine.infrastructure.cluster.x-k8s.io` and
`spec.providerID` (`inmemory://<namespace>/<cluster>/<machine>`). It then waits for the
Machine's bootstrap data (`spec.bootstrap.dataSecretName`) and for the cluster's workload API
server, "boots" for `spec.bootDelaySeconds` (else the provider's default, 0 in tests: the Ready
condition reads `Booting` meanwhile), registers a Node named after the Machine with that
providerID and a Ready condition, and only then reports `status.ready`,
`status.initialization.provisioned` and `status.addresses` (Hostname and InternalIP) — so the
Machine controller finds the Node on the reconcile the provisioning wakes.

Deletion just drops the finalizer: the "VM" vanishes; its Node stays until the Machine
controller deletes it, as with a real cloud.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import AlreadyExists, NotFound
from shipyard.client.interfaces import Object, ReaderWriter
from shipyard.controllers import conditions
from shipyard.controllers.kinds import NODE
from shipyard.controllers.patching import add_finalizer, patch, remove_finalizer
from shipyard.providers import contract
from shipyard.providers.inmemory import types
from shipyard.providers.inmemory.cluster import workload_key
from shipyard.providers.inmemory.workload import WorkloadClusters
from shipyard.runtime import Manager, Request, Result, logs

log = logs.get_logger(__name__)

WAIT_FOR_CLUSTER = 1.0
KUBELET_VERSION = "v1.33.0"




class InMemoryMachineReconciler(contract.MachineReconcilerBase):
    def __init__(self, mgr: Manager, workloads: WorkloadClusters, boot_delay: float) -> None:
        super().__init__(mgr, types.MACHINE)
        self.workloads = workloads
        self.boot_delay = boot_delay

    async def reconcile(self, req: Request) -> Result:
        loaded = self.load(req)
        if loaded is None or loaded.paused:
            return Result()
        before, infra, machine = loaded.before, loaded.infra, loaded.machine
        cluster_name = loaded.cluster_name
        if infra["metadata"].get("deletionTimestamp"):
            if remove_finalizer(infra, types.MACHINE_FINALIZER):
                try:
                    await patch(self.client, before, infra)
                except NotFound:
                    pass
            return Result()
        if machine is None or cluster_name is None:
            return Result()  # waiting for the Machine controller to adopt us
        changed = add_finalizer(infra, types.MACHINE_FINALIZER)
        spec = infra.setdefault("spec", {})
        if not spec.get("providerID"):
            spec["providerID"] = types.provider_id(req.namespace, cluster_name, req.name)
            changed = True
        if changed:
            await patch(self.client, before, infra)
            return Result()
        if (infra.get("status") or {}).get("ready"):
            return Result()
        requeue = await self._boot(infra, machine, cluster_name)
        await patch(self.client, before, infra)
        return Result(requeue_after=requeue)

    async def _boot(self, infra: Object, machine: Object, cluster_name: str) -> float | None:
        if not (machine["spec"].get("bootstrap") or {}).get("dataSecretName"):
            conditions.set_condition(infra, c.READY_CONDITION, "False", "WaitingForBootstrapData",
                                     "Waiting for the Machine's bootstrap data secret")
            return None
        namespace = infra["metadata"]["namespace"]
        workload = self.workloads.get(workload_key(namespace, cluster_name))
        if workload is None:
            conditions.set_condition(infra, c.READY_CONDITION, "False", "WaitingForCluster",
                                     "Waiting for the cluster's simulated API server")
            return WAIT_FOR_CLUSTER
        delay = float(infra["spec"].get("bootDelaySeconds", self.boot_delay))
        if delay > 0:
            conditions.set_condition(infra, c.READY_CONDITION, "False", "Booting",
                                     f"Booting for {delay}s")
            started = conditions.get_condition(infra, c.READY_CONDITION) or {}
            since = datetime.fromisoformat(
                str(started["lastTransitionTime"]).replace("Z", "+00:00"))
            remaining = delay - (datetime.now(UTC) - since).total_seconds()
            if remaining > 0:
                return remaining
        node_name = machine["metadata"]["name"]
        remote = await self.workloads.client(workload_key(namespace, cluster_name))
        await self._register_node(remote, node_name, str(infra["spec"]["providerID"]))
        status = infra.setdefault("status", {})
        status["addresses"] = [{"type": "Hostname", "address": node_name},
                               {"type": "InternalIP", "address": "127.0.0.1"}]
        status["ready"] = True
        status["initialization"] = {"provisioned": True}
        conditions.set_condition(infra, c.READY_CONDITION, "True", c.READY_REASON)
        log.info("machine booted as Node %s", node_name)
        return None

    async def _register_node(self, remote: ReaderWriter, name: str, provider_id: str) -> None:
        """What a kubelet does on start: create its Node, then report it Ready."""
        node: Object = {"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"providerID": provider_id}}
        try:
            await remote.create(node)
        except AlreadyExists:
            pass
        now = conditions.now()
        await remote.patch(*NODE, name, {"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": name}],
            "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "operatingSystem": "linux",
                         "architecture": "amd64", "containerRuntimeVersion": "inmemory://1",
                         "kernelVersion": "", "osImage": "Shipyard in-memory",
                         "kubeProxyVersion": "", "machineID": "", "systemUUID": "",
                         "bootID": ""}}}, subresource="status")
