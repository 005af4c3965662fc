"""The ProcessCluster controller: a control-plane endpoint in front of the cluster's machines.

Contract (the v1beta2 InfraCluster contract): once its owner Cluster has set an
ownerReference, a ProcessCluster gets the finalizer
`processcluster.infrastructure.cluster.x-k8s.io` and a TCP load balancer (`loadbalancer`) on
127.0.0.1, in this controller process, whose backends are the API servers
(``<address>:6443``) of the cluster's control-plane Machines (label
`cluster.x-k8s.io/control-plane`) whose ProcessMachine process is alive.
`spec.controlPlaneEndpoint` is set to it (a port already there is reused, so a restarted
controller serves the same endpoint); then `status.initialization.provisioned`,
`status.failureDomains` and Ready=True. A port that cannot be bound gives Ready=False, reason
`LoadBalancerFailed`, and a retry.

Deletion closes the load balancer and drops the finalizer. Paused objects are left alone.
While the controller is down the endpoint does not answer (the machines keep running).
"""

from __future__ import annotations

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound
from shipyard.client.interfaces import ReaderWriter
from shipyard.controllers import conditions
from shipyard.controllers.kinds import CLUSTER, MACHINE
from shipyard.controllers.patching import add_finalizer, patch, remove_finalizer
from shipyard.providers import contract
from shipyard.providers.process import types
from shipyard.providers.process.loadbalancer import LoadBalancer
from shipyard.providers.process.supervisor import Supervisor
from shipyard.runtime import Manager, Request, Result, logs

log = logs.get_logger(__name__)

API_SERVER_PORT = 6443
RETRY = 5.0


class ProcessClusterReconciler:
    def __init__(self, mgr: Manager, supervisor: Supervisor) -> None:
        self.client: ReaderWriter = mgr.client
        self.infra_clusters = mgr.informer(types.CLUSTER).cache
        self.clusters = mgr.informer(CLUSTER).cache
        self.machines = mgr.informer(MACHINE).cache
        self.supervisor = supervisor
        self.balancers: dict[tuple[str, str], LoadBalancer] = {}
        self.map_cluster = contract.ref_mapper(types.CLUSTER)

    def backends(self, namespace: str, cluster_name: str) -> list[tuple[str, int]]:
        """API servers of the cluster's control-plane machines whose process runs."""
        selector = f"{c.CLUSTER_NAME_LABEL}={cluster_name},{c.MACHINE_CONTROL_PLANE_LABEL}"
        out = []
        for machine in sorted(self.machines.list(namespace, selector),
                              key=lambda m: str(m["metadata"].get("creationTimestamp", ""))):
            ref = (machine.get("spec") or {}).get("infrastructureRef") or {}
            if ref.get("kind") != types.MACHINE.kind or ref.get("apiGroup") != types.GROUP:
                continue
            name = str(ref["name"])
            if self.supervisor.alive(namespace, name):
                out.append((self.supervisor.address(namespace, name), API_SERVER_PORT))
        return out

    async def reconcile(self, req: Request) -> Result:
        loaded = contract.load_cluster(req, self.infra_clusters, self.clusters)
        if loaded is None:
            await self._close((req.namespace, req.name))
            return Result()
        if loaded.paused:
            return Result()
        before, infra, cluster_name, cluster = (loaded.before, loaded.infra, loaded.cluster_name,
                                                loaded.cluster)
        if infra["metadata"].get("deletionTimestamp"):
            await self._close((req.namespace, req.name))
            if remove_finalizer(infra, types.CLUSTER_FINALIZER):
                try:
                    await patch(self.client, before, infra)
                except NotFound:
                    pass
            return Result()
        if cluster_name is None or cluster is None:
            return Result()  # waiting for the Cluster controller to adopt us
        if add_finalizer(infra, types.CLUSTER_FINALIZER):
            await patch(self.client, before, infra)
            return Result()
        spec = infra.setdefault("spec", {})
        endpoint = spec.get("controlPlaneEndpoint") or {}
        try:
            balancer = await self._ensure_balancer(req.namespace, req.name, cluster_name,
                                                   int(endpoint.get("port") or 0))
        except OSError as e:
            conditions.set_condition(infra, c.READY_CONDITION, "False", "LoadBalancerFailed",
                                     f"cannot listen on 127.0.0.1:{endpoint.get('port')}: {e}")
            await patch(self.client, before, infra)
            return Result(requeue_after=RETRY)
        spec["controlPlaneEndpoint"] = {"host": balancer.host, "port": balancer.port}
        status = infra.setdefault("status", {})
        domains = spec.get("failureDomains") or []
        if domains:
            status["failureDomains"] = [{"name": d, "controlPlane": True} for d in domains]
        status["initialization"] = {"provisioned": True}
        conditions.set_condition(infra, c.READY_CONDITION, "True", c.READY_REASON)
        await patch(self.client, before, infra)
        return Result()

    async def _ensure_balancer(self, namespace: str, name: str, cluster_name: str,
                               port: int) -> LoadBalancer:
        key = (namespace, name)
        balancer = self.balancers.get(key)
        if balancer is not None:
            return balancer

        def backends() -> list[tuple[str, int]]:
            return self.backends(namespace, cluster_name)

        balancer = LoadBalancer(port, backends)
        await balancer.start()
        self.balancers[key] = balancer
        log.info("control-plane load balancer for %s/%s on 127.0.0.1:%d", namespace,
                 cluster_name, balancer.port)
        return balancer

    async def _close(self, key: tuple[str, str]) -> None:
        balancer = self.balancers.pop(key, None)
        if balancer is not None:
            await balancer.close()

    async def aclose(self) -> None:
        for key in list(self.balancers):
            await self._close(key)


