"""The InMemoryCluster controller: gives each Cluster a simulated workload cluster.

Contract (the v1beta1 InfraCluster contract): once its owner Cluster has set an ownerReference,
an InMemoryCluster gets the finalizer `inmemorycluster.infrastructure.cluster.x-k8s.io`, its
workload API server is started (`workload.WorkloadClusters`), `spec.controlPlaneEndpoint` points
at it, the `<cluster>-kubeconfig` Secret (type `cluster.x-k8s.io/secret`, cluster-name label,
key `value`, controller-owned by the InMemoryCluster) holds its admin kubeconfig, and
`status.ready`, `status.initialization.provisioned`, `status.failureDomains` (from
`spec.failureDomains`) and the Ready condition are set. There is no control plane provider in
this path, so the provider writes the kubeconfig Secret itself (upstream the control plane does).

Deletion stops the server, removes its data, deletes the Secret and drops the finalizer. Paused
objects (Cluster `spec.paused` or the paused annotation) are left alone.
"""

from __future__ import annotations

import base64
from typing import Any

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound
from shipyard.client.interfaces import Object, ReaderWriter
from shipyard.controllers import conditions, ownership
from shipyard.controllers.kinds import CLUSTER, SECRET
from shipyard.controllers.patching import add_finalizer, patch, remove_finalizer
from shipyard.providers import contract
from shipyard.providers.inmemory import types
from shipyard.providers.inmemory.workload import WorkloadClusters, kubeconfig_for
from shipyard.runtime import Manager, Request, Result, logs

log = logs.get_logger(__name__)


def workload_key(namespace: str, cluster_name: str) -> str:
    return f"{namespace}/{cluster_name}"


class InMemoryClusterReconciler:
    def __init__(self, mgr: Manager, workloads: WorkloadClusters) -> None:
        self.client: ReaderWriter = mgr.client
        self.infra_clusters = mgr.informer(types.CLUSTER).cache
        self.clusters = mgr.informer(CLUSTER).cache
        self.workloads = workloads
        self.map_cluster = contract.ref_mapper(types.CLUSTER)

    async def reconcile(self, req: Request) -> Result:
        loaded = contract.load_cluster(req, self.infra_clusters, self.clusters)
        if loaded is None:
            return Result()
        if loaded.paused:
            return Result()
        before, infra, cluster_name, cluster = (loaded.before, loaded.infra, loaded.cluster_name,
                                                loaded.cluster)
        if infra["metadata"].get("deletionTimestamp"):
            return await self._reconcile_delete(before, infra, cluster_name)
        if cluster_name is None or cluster is None:
            return Result()  # waiting for the Cluster controller to adopt us
        if add_finalizer(infra, types.CLUSTER_FINALIZER):
            await patch(self.client, before, infra)
            return Result()
        endpoint = (infra.get("spec") or {}).get("controlPlaneEndpoint") or {}
        workload = await self.workloads.ensure(workload_key(req.namespace, cluster_name),
                                               int(endpoint.get("port") or 0))
        infra.setdefault("spec", {})["controlPlaneEndpoint"] = {"host": "127.0.0.1",
                                                                "port": workload.port}
        await self._ensure_kubeconfig(infra, cluster_name, kubeconfig_for(workload, cluster_name))
        status = infra.setdefault("status", {})
        domains = (infra.get("spec") or {}).get("failureDomains") or []
        if domains:
            status["failureDomains"] = {name: {"controlPlane": True} for name in domains}
        status["ready"] = True
        status["initialization"] = {"provisioned": True}
        conditions.set_condition(infra, c.READY_CONDITION, "True", c.READY_REASON)
        await patch(self.client, before, infra)
        return Result()

    async def _ensure_kubeconfig(self, infra: Object, cluster_name: str, text: str) -> None:
        namespace = infra["metadata"]["namespace"]
        name = c.kubeconfig_secret_name(cluster_name)
        data = {c.KUBECONFIG_DATA_KEY: base64.b64encode(text.encode()).decode()}
        try:
            secret = await self.client.get(*SECRET, name, namespace)
        except NotFound:
            owner = ownership.owner_reference(infra, controller=True)
            body: dict[str, Any] = {
                "apiVersion": "v1", "kind": "Secret", "type": c.CLUSTER_SECRET_TYPE,
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {c.CLUSTER_NAME_LABEL: cluster_name},
                             "ownerReferences": [owner]},
                "data": data,
            }
            await self.client.create(body)
            return
        if secret.get("data") != data:
            await self.client.patch(*SECRET, name, {"data": data}, namespace)

    async def _reconcile_delete(self, before: Object, infra: Object,
                                cluster_name: str | None) -> Result:
        if types.CLUSTER_FINALIZER not in (infra["metadata"].get("finalizers") or []):
            return Result()
        namespace = infra["metadata"]["namespace"]
        if cluster_name is not None:
            await self.workloads.delete(workload_key(namespace, cluster_name))
            try:
                await self.client.delete(*SECRET, c.kubeconfig_secret_name(cluster_name),
                                         namespace)
            except NotFound:
                pass
        remove_finalizer(infra, types.CLUSTER_FINALIZER)
        try:
            await patch(self.client, before, infra)
        except NotFound:
            pass
        log.info("workload cluster deleted")
        return Result()
