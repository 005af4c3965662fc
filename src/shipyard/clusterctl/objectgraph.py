"""The object graph `shipyard move` walks: which objects belong to which Cluster, and in what
order they can be recreated elsewhere (upstream clusterctl's `objectgraph.go`, re-thought).

Why a graph: a Cluster is dozens of objects of many kinds (MachineDeployments, MachineSets,
Machines, infrastructure and bootstrap objects, Secrets) tied together by ownerReferences, and
an object can only be recreated on another API server after its owners, because its
ownerReferences must carry the owners' *new* UIDs there.

Contract:
- `discover_types(client)` lists the kinds to consider: every CRD labelled
  `clusterctl.cluster.x-k8s.io` (what `clusterctl init` installs) plus, because Shipyard installs
  its CRDs without that inventory label, every CRD of the Cluster API group family
  (`cluster.x-k8s.io`, `*.cluster.x-k8s.io`), at its storage version; plus Secrets and
  ConfigMaps. A CRD labelled `clusterctl.cluster.x-k8s.io/move` forces its objects into the
  move; `clusterctl.cluster.x-k8s.io/move-hierarchy` forces them and everything they own.
  Cluster, ClusterClass and ClusterResourceSet are move-hierarchy roots by definition.
- `ObjectGraph.add(obj)` records an object and edges to its owners (owners not seen yet are
  *virtual* nodes until they are observed). The same labels on an object force it too; the
  `clusterctl.cluster.x-k8s.io/block-move` annotation marks it as blocking.
- `finish()` adds soft ownership: a Secret without ownerReferences named `<cluster>-<purpose>`
  (kubeconfig, ca, etcd, sa, proxy, ...) belongs to that Cluster, as upstream; a Secret or
  ConfigMap without ownerReferences labelled `cluster.x-k8s.io/cluster-name=<cluster>` does
  too (a Shipyard addition: users' bootstrap data and add-on ConfigMaps carry that label); a
  Cluster using a ClusterClass belongs to it; a ClusterResourceSetBinding to its Cluster. Then
  every node reachable from a move-hierarchy root gets that root as *tenant*.
- `move_nodes()` are the nodes with a tenant or forced; `move_sequence()` groups them so that
  each group's owners (hard and soft) are all in earlier groups. A node whose owner is not moved
  (an owner of a kind outside the discovered types) never gets a group and is reported by
  `unmovable()` — upstream silently leaves such objects behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound
from shipyard.client import GVK, NoKindMatchError, Object, Reader

CLUSTERCTL_LABEL = "clusterctl.cluster.x-k8s.io"
"""The label `clusterctl init` puts on every object it installs (the provider inventory)."""

CRD = GVK("apiextensions.k8s.io/v1", "CustomResourceDefinition")
CAPI_GROUP = c.GROUP
ADDONS_GROUP = "addons.cluster.x-k8s.io"
HIERARCHY_ROOTS = {(CAPI_GROUP, "Cluster"), (CAPI_GROUP, "ClusterClass"),
                   (ADDONS_GROUP, "ClusterResourceSet")}
SECRET_PURPOSES = ("kubeconfig", "ca", "etcd", "sa", "proxy", "apiserver-etcd-client",
                   "ssh")
"""Suffixes of the Secrets Cluster API names after their cluster (upstream `util/secret`)."""


@dataclass(frozen=True)
class TypeInfo:
    """A kind considered for the move, at the version its objects are read in."""

    gvk: GVK
    namespaced: bool = True
    force_move: bool = False
    force_move_hierarchy: bool = False


@dataclass(eq=False)
class Node:
    """One object of the graph. Identity is the source UID; `new_uid` is learnt on the target."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str
    owners: dict[Node, dict[str, bool]] = field(default_factory=dict)
    """Owner node -> the ownerReference's `controller`/`blockOwnerDeletion` attributes."""
    soft_owners: set[Node] = field(default_factory=set)
    tenants: set[Node] = field(default_factory=set)
    virtual: bool = True
    force_move: bool = False
    force_move_hierarchy: bool = False
    is_global: bool = False
    global_hierarchy: bool = False
    blocking_move: bool = False
    new_uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    cluster_class: tuple[str, str] | None = None
    """For a Cluster with a managed topology: the (namespace, name) of its ClusterClass."""
    binding_cluster: str | None = None
    """For a ClusterResourceSetBinding: the name of its Cluster."""
    restore: Object | None = None
    """The object itself, when the graph was read from files (`--from-directory`)."""

    @property
    def group(self) -> str:
        return GVK(self.api_version, self.kind).group

    def is_kind(self, group: str, kind: str) -> bool:
        return self.kind == kind and self.group == group

    def ref(self) -> str:
        """`Kind namespace/name`, as messages and the dry-run plan print it."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    def filename(self) -> str:
        """Upstream's file name for the object in `--to-directory`."""
        return f"{self.kind}_{self.namespace}_{self.name}.yaml"


def _is_capi_family(group: str) -> bool:
    return group == CAPI_GROUP or group.endswith("." + CAPI_GROUP)


async def discover_types(client: Reader) -> list[TypeInfo]:
    """The kinds `move` considers on the API server `client` talks to (see module doc)."""
    crds = (await client.list(*CRD))["items"]
    out: list[TypeInfo] = []
    for crd in crds:
        labels = (crd.get("metadata") or {}).get("labels") or {}
        spec = crd.get("spec") or {}
        group, kind = str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))
        if CLUSTERCTL_LABEL not in labels and not _is_capi_family(group):
            continue
        hierarchy = ((group, kind) in HIERARCHY_ROOTS
                     or c.CLUSTERCTL_MOVE_HIERARCHY_ANNOTATION in labels)
        force = hierarchy or c.CLUSTERCTL_MOVE_ANNOTATION in labels
        for version in spec.get("versions") or []:
            if version.get("storage"):
                out.append(TypeInfo(GVK(f"{group}/{version['name']}", kind),
                                    namespaced=spec.get("scope") != "Cluster",
                                    force_move=force, force_move_hierarchy=hierarchy))
    out.append(TypeInfo(GVK("v1", "Secret")))
    out.append(TypeInfo(GVK("v1", "ConfigMap")))
    return out


class ObjectGraph:
    def __init__(self, types: Iterable[TypeInfo]) -> None:
        self.types: dict[tuple[str, str], TypeInfo] = {
            (t.gvk.group, t.gvk.kind): t for t in types}
        self.nodes: dict[str, Node] = {}

    # ------------------------------------------------------------------ building

    async def discover(self, client: Reader, namespace: str | None) -> None:
        """Read every object of the discovered types (namespaced ones in `namespace`, or in
        all namespaces when None) and complete the graph."""
        for info in self.types.values():
            ns = namespace if info.namespaced else None
            try:
                items = (await client.list(*info.gvk, ns))["items"]
            except (NotFound, NoKindMatchError):
                continue  # a CRD not served (yet): it has no objects to move
            for obj in items:
                obj.setdefault("apiVersion", info.gvk.api_version)
                obj.setdefault("kind", info.gvk.kind)
                self.add(obj)
        self.finish()

    def add(self, obj: Object, *, keep: bool = False) -> Node:
        """Record `obj` and edges to its owners; `keep` stores the object (from files)."""
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid:
            raise ValueError(f"{obj.get('kind')} {meta.get('name')} has no metadata.uid")
        node = self.nodes.get(uid)
        if node is None:
            node = Node(str(obj["apiVersion"]), str(obj["kind"]), str(meta.get("name", "")),
                        str(meta.get("namespace") or ""), uid)
            self.nodes[uid] = node
        node.virtual = False
        node.api_version, node.kind = str(obj["apiVersion"]), str(obj["kind"])
        node.name, node.namespace = str(meta.get("name", "")), str(meta.get("namespace") or "")
        node.labels = dict(meta.get("labels") or {})
        info = self.types.get((node.group, node.kind))
        node.force_move = (c.CLUSTERCTL_MOVE_ANNOTATION in node.labels
                           or bool(info and info.force_move))
        node.force_move_hierarchy = (c.CLUSTERCTL_MOVE_HIERARCHY_ANNOTATION in node.labels
                                     or bool(info and info.force_move_hierarchy))
        node.is_global = bool(info and not info.namespaced)
        node.blocking_move = c.CLUSTERCTL_BLOCK_MOVE_ANNOTATION in (meta.get("annotations") or {})
        spec: dict[str, Any] = obj.get("spec") or {}
        if node.is_kind(CAPI_GROUP, "Cluster") and spec.get("topology"):
            topology = spec["topology"]
            ref = topology.get("classRef") or {}
            name = ref.get("name") or topology.get("class")
            cc_ns = ref.get("namespace") or topology.get("classNamespace") or node.namespace
            node.cluster_class = (str(cc_ns), str(name)) if name else None
        if node.is_kind(ADDONS_GROUP, "ClusterResourceSetBinding"):
            node.binding_cluster = spec.get("clusterName")
        if keep:
            node.restore = obj
        for ref in meta.get("ownerReferences") or []:
            owner = self.nodes.get(str(ref.get("uid")))
            if owner is None:
                owner = Node(str(ref.get("apiVersion")), str(ref.get("kind")),
                             str(ref.get("name")), node.namespace, str(ref.get("uid")))
                self.nodes[owner.uid] = owner
            attrs = {k: bool(ref[k]) for k in ("controller", "blockOwnerDeletion") if k in ref}
            node.owners[owner] = attrs
        return node

    def finish(self) -> None:
        """Soft ownership, then tenants (see module doc)."""
        self._set_soft_ownership()
        for node in self.nodes.values():
            node.tenants.clear()
        for node in list(self.nodes.values()):
            if node.force_move_hierarchy and not node.virtual:
                self._set_tenant(node, node, node.is_global, set())

    def _set_soft_ownership(self) -> None:
        clusters = {(n.namespace, n.name): n for n in self.clusters()}
        classes = {(n.namespace, n.name): n for n in self.cluster_classes()}
        for node in self.nodes.values():
            if node.virtual or node.api_version != "v1" or node.owners:
                continue
            cluster = None
            if node.kind == "Secret":
                cluster = clusters.get((node.namespace, secret_cluster_name(node.name) or ""))
            if cluster is None and node.kind in ("Secret", "ConfigMap"):
                cluster = clusters.get((node.namespace,
                                        node.labels.get(c.CLUSTER_NAME_LABEL, "")))
            if cluster is not None:
                node.soft_owners.add(cluster)
        for cluster in clusters.values():
            if cluster.cluster_class and cluster.cluster_class in classes:
                cluster.soft_owners.add(classes[cluster.cluster_class])
        for node in self.nodes.values():
            if node.binding_cluster:
                owner = clusters.get((node.namespace, node.binding_cluster))
                if owner is not None:
                    node.soft_owners.add(owner)

    def _set_tenant(self, node: Node, tenant: Node, global_hierarchy: bool,
                    seen: set[Node]) -> None:
        if node in seen:
            return
        seen.add(node)
        node.tenants.add(tenant)
        node.global_hierarchy = node.global_hierarchy or global_hierarchy
        for other in self.nodes.values():
            if node in other.owners or node in other.soft_owners:
                self._set_tenant(other, tenant, global_hierarchy, seen)

    # ------------------------------------------------------------------ queries

    def of_kind(self, group: str, kind: str) -> list[Node]:
        return [n for n in self.nodes.values() if not n.virtual and n.is_kind(group, kind)]

    def clusters(self) -> list[Node]:
        return self.of_kind(CAPI_GROUP, "Cluster")

    def cluster_classes(self) -> list[Node]:
        return self.of_kind(CAPI_GROUP, "ClusterClass")

    def machines(self) -> list[Node]:
        return self.of_kind(CAPI_GROUP, "Machine")

    def move_nodes(self) -> list[Node]:
        return [n for n in self.nodes.values()
                if not n.virtual and (n.tenants or n.force_move)]

    def move_sequence(self) -> list[list[Node]]:
        """Groups of nodes, each group's owners all in earlier groups (owner-first order)."""
        placed: set[Node] = set()
        groups: list[list[Node]] = []
        candidates = sorted(self.move_nodes(), key=_order)
        while True:
            group = [n for n in candidates if n not in placed
                     and all(o in placed for o in n.owners)
                     and all(o in placed for o in n.soft_owners)]
            if not group:
                return groups
            groups.append(group)
            placed.update(group)

    def unmovable(self) -> list[Node]:
        """Nodes meant to move whose owners are not all moved: they stay where they are."""
        placed = {n for group in self.move_sequence() for n in group}
        return sorted((n for n in self.move_nodes() if n not in placed), key=_order)


def _order(node: Node) -> tuple[str, str, str, str]:
    return (node.group, node.kind, node.namespace, node.name)


def secret_cluster_name(name: str) -> str | None:
    """The cluster a Secret named `<cluster>-<purpose>` belongs to, or None."""
    for purpose in SECRET_PURPOSES:
        suffix = "-" + purpose
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None
