"""What every infrastructure provider's controllers share: Cluster API's InfraCluster and
InfraMachine contract seen from the provider's side.

Why: the process, in-memory and Docker providers differ in *how* a machine exists, not in how
they find out *which* machine to act on. Each maps Cluster and Machine events to the
infrastructure objects they reference, reads its object with the owners the contract chains it
to (a Machine, its Cluster), and stops for paused ones, before doing anything of its own.

Contract:
- `ref_mapper(gvk, field)`: a watch map function turning a Cluster or Machine whose
  ``spec.<field>`` names a `gvk` kind (by ``apiGroup`` and ``kind``) into a request for it.
- `cluster_members(cache)`: a map function turning a Cluster into requests for the objects in
  `cache` labelled with its name (``cluster.x-k8s.io/cluster-name``).
- `owner_cluster_name(obj)`: the Cluster named by `obj`'s ownerReferences, or None.
- `MachineReconcilerBase(mgr, gvk)`: what every InfraMachine reconciler holds (client, the
  caches, both map functions) and `self.load(req)`.
- `load_machine(...)` / `load_cluster(...)`: the infrastructure object (from the informer
  cache, a private copy and the `before` snapshot for patching), its owners, and whether the
  cluster or the object is paused; None when the object is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shipyard.api.core import constants as c
from shipyard.client.interfaces import GVK, Object, ReaderWriter
from shipyard.controllers import pausing
from shipyard.controllers.kinds import CLUSTER, MACHINE
from shipyard.controllers.ownership import owner_machine_name
from shipyard.controllers.patching import snapshot
from shipyard.runtime import Manager, Request
from shipyard.runtime.cache import Cache

MapFunc = Callable[[Object], list[Request]]


def ref_mapper(gvk: GVK, field: str = "infrastructureRef") -> MapFunc:
    def map_ref(obj: Object) -> list[Request]:
        ref = (obj.get("spec") or {}).get(field) or {}
        if ref.get("kind") == gvk.kind and ref.get("apiGroup") == gvk.group:
            return [Request(obj["metadata"]["namespace"], str(ref["name"]))]
        return []
    return map_ref


def cluster_members(cache: Cache) -> MapFunc:
    def map_cluster(cluster: Object) -> list[Request]:
        namespace = cluster["metadata"]["namespace"]
        return [Request(namespace, m["metadata"]["name"]) for m in cache.list(
            namespace, f"{c.CLUSTER_NAME_LABEL}={cluster['metadata']['name']}")]
    return map_cluster


def owner_cluster_name(obj: Object) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Cluster" and GVK(str(ref.get("apiVersion")), "").group == c.GROUP:
            return str(ref["name"])
    return None


@dataclass
class InfraMachine:
    before: Object
    infra: Object
    machine: Object | None
    cluster_name: str | None
    cluster: Object | None
    paused: bool

    @property
    def deleting(self) -> bool:
        return bool(self.infra["metadata"].get("deletionTimestamp"))


@dataclass
class InfraCluster:
    before: Object
    infra: Object
    cluster_name: str | None
    cluster: Object | None
    paused: bool

    @property
    def deleting(self) -> bool:
        return bool(self.infra["metadata"].get("deletionTimestamp"))


def load_machine(req: Request, infra_machines: Cache, machines: Cache,
                 clusters: Cache) -> InfraMachine | None:
    cached = infra_machines.get(req.name, req.namespace)
    if cached is None:
        return None
    before, infra = snapshot(cached), snapshot(cached)
    machine_name = owner_machine_name(infra)
    machine = machines.get(machine_name, req.namespace) if machine_name else None
    cluster_name = str(machine["spec"]["clusterName"]) if machine else None
    cluster = clusters.get(cluster_name, req.namespace) if cluster_name else None
    return InfraMachine(before, infra, machine, cluster_name, cluster,
                        pausing.is_paused(cluster, infra))


def load_cluster(req: Request, infra_clusters: Cache, clusters: Cache) -> InfraCluster | None:
    cached = infra_clusters.get(req.name, req.namespace)
    if cached is None:
        return None
    before, infra = snapshot(cached), snapshot(cached)
    cluster_name = owner_cluster_name(infra)
    cluster = clusters.get(cluster_name, req.namespace) if cluster_name else None
    return InfraCluster(before, infra, cluster_name, cluster, pausing.is_paused(cluster, infra))


class MachineReconcilerBase:
    """The part every infrastructure provider's machine reconciler shares."""

    def __init__(self, mgr: Manager, machine_gvk: GVK) -> None:
        self.client: ReaderWriter = mgr.client
        self.infra_machines = mgr.informer(machine_gvk).cache
        self.machines = mgr.informer(MACHINE).cache
        self.clusters = mgr.informer(CLUSTER).cache
        self.map_cluster = cluster_members(self.infra_machines)
        self.map_machine = ref_mapper(machine_gvk)

    def load(self, req: Request) -> InfraMachine | None:
        return load_machine(req, self.infra_machines, self.machines, self.clusters)
