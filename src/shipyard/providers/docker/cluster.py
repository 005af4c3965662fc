"""The DockerCluster controller: a private network and a load-balancer container per cluster.

Contract (CAPD's DockerCluster, v1beta2 InfraCluster contract): once its owner Cluster has set
an ownerReference, a DockerCluster gets the finalizer
`dockercluster.infrastructure.cluster.x-k8s.io`, then
1. the cluster's network (`engine.network_name`: an internal bridge, labelled as ours);
2. the load-balancer container ``<cluster>-lb`` (role ``external-load-balancer``) from
   ``spec.loadBalancer.imageRepository:imageTag`` when both are set, else the node image
   (the LB is ``shipyard node loadbalancer``, so the image must carry Shipyard); its backends
   file lists the API servers (``<address>:6443``) of the cluster's control-plane machine
   containers that are running, rewritten whenever that set changes (Machine events and a
   `RECHECK` resync), so the endpoint follows the healthy control-plane machines;
3. `spec.controlPlaneEndpoint` = the load balancer's address, port 6443 (a host set by the
   user is kept), `status.failureDomains` from the spec, `status.initialization.provisioned`,
   conditions `LoadBalancerAvailable` and `Ready` True.

Bad input is a condition, never a crash, and nothing of another cluster is touched: no engine
(`DockerEngineUnreachable`), a missing image (`ImageNotFound`, naming the command that builds
it), a container or network name owned by somebody else (`ContainerNameConflict`), a
load balancer that exits at start (`ContainerExited`, with its last log lines). Deletion
removes the load balancer, then the network once no container of ours is attached, then the
finalizer. Paused objects are left alone.

When the controllers run inside a machine container of the same engine (a self-managed Docker
cluster, `shipyard create cluster -i docker`; `SHIPYARD_DOCKER_CONTAINER` names the container),
that container is attached to every cluster network they create, so they reach each managed
cluster's load balancer and machines; before a network is removed, every other cluster's
machine attached to it is detached (each control-plane container that led attached itself).
"""

from __future__ import annotations

import asyncio
import json
from typing import Final

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound
from shipyard.client.interfaces import Object, ReaderWriter
from shipyard.controllers import conditions
from shipyard.controllers.kinds import CLUSTER
from shipyard.controllers.patching import add_finalizer, patch, remove_finalizer
from shipyard.providers import contract
from shipyard.providers.docker import engine as eng
from shipyard.providers.docker import types
from shipyard.providers.docker.engine import ContainerSpec, Engine, EngineError
from shipyard.runtime import Manager, Request, Result, logs

log = logs.get_logger(__name__)

API_SERVER_PORT: Final = 6443
BACKENDS_FILE: Final = "/etc/shipyard/backends.json"
RECHECK: Final = 10.0
RETRY: Final = 5.0


def lb_name(cluster: str) -> str:
    return f"{cluster}-lb"


def cluster_labels(namespace: str, cluster: str, role: str) -> dict[str, str]:
    return {eng.OWNER_LABEL: eng.owner_key(namespace, cluster), eng.CLUSTER_LABEL: cluster,
            eng.ROLE_LABEL: role}


class DockerClusterReconciler:
    def __init__(self, mgr: Manager, engine: Engine, node_image: str,
                 self_container: str | None = None) -> None:
        self.client: ReaderWriter = mgr.client
        self.infra_clusters = mgr.informer(types.CLUSTER).cache
        self.clusters = mgr.informer(CLUSTER).cache
        self.engine = engine
        self.node_image = node_image
        self.self_container = self_container
        """The container these controllers run in, when it is a machine on the same engine
        (a self-managed Docker cluster): it joins every managed cluster's network, so the
        controllers reach those clusters' API servers on their private networks."""
        self._attached: set[str] = set()  # networks it joined: no inspection every resync
        self._backends: dict[tuple[str, str], list[str]] = {}
        self.map_cluster = contract.ref_mapper(types.CLUSTER)

    def map_machine(self, machine: Object) -> list[Request]:
        labels = machine["metadata"].get("labels") or {}
        if c.MACHINE_CONTROL_PLANE_LABEL not in labels:
            return []
        cluster = self.clusters.get(str(machine["spec"].get("clusterName")),
                                    machine["metadata"]["namespace"])
        return self.map_cluster(cluster) if cluster else []

    def lb_image(self, infra: Object) -> str:
        lb = (infra.get("spec") or {}).get("loadBalancer") or {}
        repository, tag = lb.get("imageRepository"), lb.get("imageTag")
        if repository and tag:
            return f"{repository}:{tag}"
        return self.node_image

    async def reconcile(self, req: Request) -> Result:
        loaded = contract.load_cluster(req, self.infra_clusters, self.clusters)
        if loaded is None or loaded.paused:
            return Result()
        before, infra, cluster_name = loaded.before, loaded.infra, loaded.cluster_name
        if loaded.deleting:
            return await self._delete(before, infra, cluster_name)
        if cluster_name is None or loaded.cluster is None:
            return Result()  # waiting for the Cluster controller to adopt us
        if add_finalizer(infra, types.CLUSTER_FINALIZER):
            await patch(self.client, before, infra)
            return Result()
        try:
            address = await asyncio.to_thread(self._ensure, req.namespace, cluster_name, infra)
        except EngineError as e:
            self._set(infra, "False", e.reason, str(e))
            await patch(self.client, before, infra)
            return Result(requeue_after=RETRY)
        spec = infra.setdefault("spec", {})
        endpoint = spec.get("controlPlaneEndpoint") or {}
        if not endpoint.get("host"):
            spec["controlPlaneEndpoint"] = {"host": address, "port": API_SERVER_PORT}
        status = infra.setdefault("status", {})
        domains = spec.get("failureDomains") or []
        if domains:
            status["failureDomains"] = [
                {"name": d["name"], "controlPlane": bool(d.get("controlPlane")),
                 **({"attributes": d["attributes"]} if d.get("attributes") else {})}
                for d in domains]
        status["initialization"] = {"provisioned": True}
        self._set(infra, "True", c.READY_REASON, "")
        await patch(self.client, before, infra)
        return Result(requeue_after=RECHECK)

    def _ensure(self, namespace: str, cluster: str, infra: Object) -> str:
        """Network, load balancer and its backends (blocking); the load balancer's address."""
        owner = eng.owner_key(namespace, cluster)
        network = eng.network_name(namespace, cluster)
        name = lb_name(cluster)
        self.engine.ensure_network(network, cluster_labels(namespace, cluster,
                                                           eng.ROLE_LOAD_BALANCER))
        if self.self_container and network not in self._attached:
            self.engine.attach(network, self.self_container)
            self._attached.add(network)
        state = self.engine.container(name, owner)
        if state is None:
            image = self.lb_image(infra)
            if not self.engine.image_present(image):
                raise eng.ImageNotFound(
                    f"image {image} for the load balancer is not in the engine; build the "
                    "node image with `shipyard build node-image`")
            state = self.engine.run(ContainerSpec(
                name=name, image=image, network=network,
                labels=cluster_labels(namespace, cluster, eng.ROLE_LOAD_BALANCER),
                command=["shipyard", "node", "loadbalancer", "--port", str(API_SERVER_PORT),
                         "--backends-file", BACKENDS_FILE]))
            log.info("load balancer %s started for %s/%s", name, namespace, cluster)
        if not state.running or not state.address:
            self._backends.pop((namespace, cluster), None)
            raise EngineError(f"load balancer {name} is {state.status} (exit code "
                              f"{state.exit_code}): {self.engine.logs(name)[-500:]}")
        self._sync_backends(namespace, cluster, owner, name)
        return state.address

    def _sync_backends(self, namespace: str, cluster: str, owner: str, lb: str) -> None:
        backends = sorted(f"{s.address}:{API_SERVER_PORT}"
                          for s in self.engine.containers(owner, eng.ROLE_CONTROL_PLANE)
                          if s.running and s.address)
        key = (namespace, cluster)
        if self._backends.get(key) == backends:
            return
        self.engine.put_files(lb, {BACKENDS_FILE: (json.dumps(backends).encode(), 0o644)})
        self._backends[key] = backends
        log.info("load balancer %s backends: %s", lb, ", ".join(backends) or "none")

    def refresh(self, namespace: str, cluster: str) -> None:
        """Rewrite the backends now (a control-plane machine came or went); blocking."""
        owner = eng.owner_key(namespace, cluster)
        try:
            state = self.engine.container(lb_name(cluster), owner)
            if state is not None and state.running:
                self._sync_backends(namespace, cluster, owner, lb_name(cluster))
        except EngineError as e:
            log.info("cannot refresh load balancer of %s/%s: %s", namespace, cluster, e)

    @staticmethod
    def _set(infra: Object, status: conditions.Status, reason: str, message: str) -> None:
        lb_reason = types.LOAD_BALANCER_AVAILABLE_REASON if status == "True" else reason
        conditions.set_condition(infra, types.LOAD_BALANCER_AVAILABLE, status, lb_reason,
                                 message)
        conditions.set_condition(infra, c.READY_CONDITION, status, reason, message)

    async def _delete(self, before: Object, infra: Object, cluster: str | None) -> Result:
        if types.CLUSTER_FINALIZER not in (infra["metadata"].get("finalizers") or []):
            return Result()
        namespace = infra["metadata"]["namespace"]
        cluster = cluster or str((infra["metadata"].get("labels") or {}).get(
            c.CLUSTER_NAME_LABEL) or infra["metadata"]["name"])
        owner = eng.owner_key(namespace, cluster)

        def teardown() -> bool:
            self.engine.remove(lb_name(cluster), owner)
            self._backends.pop((namespace, cluster), None)
            network = eng.network_name(namespace, cluster)
            self._attached.discard(network)
            self.engine.detach_managers(network, owner)
            return self.engine.remove_network(network, owner)

        try:
            gone = await asyncio.to_thread(teardown)
        except EngineError as e:
            self._set(infra, "False", e.reason, f"cannot delete the load balancer: {e}")
            await _patch_ignoring_gone(self.client, before, infra)
            return Result(requeue_after=RETRY)
        if not gone:
            conditions.set_condition(infra, c.READY_CONDITION, "False", "Deleting",
                                     "waiting for the cluster's machine containers to go")
            await _patch_ignoring_gone(self.client, before, infra)
            return Result(requeue_after=1.0)
        log.info("load balancer and network of %s/%s removed", namespace, cluster)
        remove_finalizer(infra, types.CLUSTER_FINALIZER)
        await _patch_ignoring_gone(self.client, before, infra)
        return Result()


async def _patch_ignoring_gone(client: ReaderWriter, before: Object, after: Object) -> None:
    try:
        await patch(client, before, after)
    except NotFound:
        pass
