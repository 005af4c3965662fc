"""The move graph on plain objects: ownership edges, soft ownership, tenants, forced moves,
global objects and the owner-first sequence."""

from __future__ import annotations

from typing import Any

from shipyard.client import GVK
from shipyard.clusterctl import ObjectGraph, TypeInfo
from shipyard.clusterctl.objectgraph import secret_cluster_name

V2 = "cluster.x-k8s.io/v1beta2"
INFRA = "infrastructure.cluster.x-k8s.io/v1beta2"
TYPES = [
    TypeInfo(GVK(V2, "Cluster"), force_move=True, force_move_hierarchy=True),
    TypeInfo(GVK(V2, "MachineDeployment")), TypeInfo(GVK(V2, "MachineSet")),
    TypeInfo(GVK(V2, "Machine")), TypeInfo(GVK(INFRA, "InfraMachine")),
    TypeInfo(GVK(INFRA, "Identity"), namespaced=False, force_move_hierarchy=True,
             force_move=True),
    TypeInfo(GVK(INFRA, "Forced"), force_move=True),
    TypeInfo(GVK("v1", "Secret")), TypeInfo(GVK("v1", "ConfigMap")),
]


def obj(api_version: str, kind: str, name: str, *, owners: list[dict[str, Any]] | None = None,
        labels: dict[str, str] | None = None, ns: str = "ns") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{kind}-{name}",
                            "ownerReferences": owners or [], "labels": labels or {}}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def owner(o: dict[str, Any], controller: bool = False) -> dict[str, Any]:
    ref = {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"],
           "uid": o["metadata"]["uid"]}
    if controller:
        ref["controller"] = True
    return ref


def names(groups: list[list[Any]]) -> list[list[str]]:
    return [sorted(f"{n.kind}/{n.name}" for n in g) for g in groups]


def test_owner_chain_gives_the_owner_first_sequence() -> None:
    graph = ObjectGraph(TYPES)
    cluster = obj(V2, "Cluster", "c1")
    md = obj(V2, "MachineDeployment", "md", owners=[owner(cluster)])
    ms = obj(V2, "MachineSet", "ms", owners=[owner(md, True)])
    m = obj(V2, "Machine", "m", owners=[owner(ms, True)])
    im = obj(INFRA, "InfraMachine", "m", owners=[owner(m, True)])
    for o in (im, m, ms, md, cluster):  # children first: owners start as virtual nodes
        graph.add(o)
    graph.finish()
    assert names(graph.move_sequence()) == [
        ["Cluster/c1"], ["MachineDeployment/md"], ["MachineSet/ms"], ["Machine/m"],
        ["InfraMachine/m"]]
    (node,) = [n for n in graph.nodes.values() if n.kind == "InfraMachine"]
    assert list(node.owners.values()) == [{"controller": True}]


def test_secrets_and_config_maps_join_their_cluster_by_name_or_label() -> None:
    graph = ObjectGraph(TYPES)
    cluster = obj(V2, "Cluster", "c1")
    for o in (cluster,
              obj("v1", "Secret", "c1-kubeconfig"), obj("v1", "Secret", "c1-ca"),
              obj("v1", "Secret", "c1-whatever"),  # not a Cluster API secret name
              obj("v1", "Secret", "data", labels={"cluster.x-k8s.io/cluster-name": "c1"}),
              obj("v1", "ConfigMap", "addons", labels={"cluster.x-k8s.io/cluster-name": "c1"}),
              obj("v1", "ConfigMap", "other", labels={"cluster.x-k8s.io/cluster-name": "c2"}),
              obj("v1", "Secret", "c1-kubeconfig-elsewhere", ns="other")):
        graph.add(o)
    graph.finish()
    assert names(graph.move_sequence()) == [
        ["Cluster/c1"], ["ConfigMap/addons", "Secret/c1-ca", "Secret/c1-kubeconfig",
                         "Secret/data"]]


def test_forced_kinds_and_labels_move_without_a_cluster() -> None:
    graph = ObjectGraph(TYPES)
    forced = obj(INFRA, "Forced", "f")
    labelled = obj("v1", "ConfigMap", "cm", labels={"clusterctl.cluster.x-k8s.io/move": ""})
    root = obj("v1", "ConfigMap", "root",
               labels={"clusterctl.cluster.x-k8s.io/move-hierarchy": ""})
    child = obj("v1", "Secret", "child", owners=[owner(root)])
    for o in (forced, labelled, root, child, obj("v1", "ConfigMap", "plain")):
        graph.add(o)
    graph.finish()
    assert names(graph.move_sequence()) == [
        ["ConfigMap/cm", "ConfigMap/root", "Forced/f"], ["Secret/child"]]


def test_global_hierarchies_are_marked_and_unmoved_owners_reported() -> None:
    graph = ObjectGraph(TYPES)
    identity = obj(INFRA, "Identity", "id", ns="")
    secret = obj("v1", "Secret", "creds", owners=[owner(identity)])
    cluster = obj(V2, "Cluster", "c1")
    orphan = obj(V2, "Machine", "m", owners=[owner(cluster), {
        "apiVersion": "other.example.com/v1", "kind": "Unknown", "name": "u", "uid": "u1"}])
    for o in (identity, secret, cluster, orphan):
        graph.add(o)
    graph.finish()
    by_name = {n.name: n for n in graph.nodes.values()}
    assert by_name["id"].is_global and by_name["creds"].global_hierarchy
    assert not by_name["c1"].global_hierarchy
    assert [n.name for n in graph.unmovable()] == ["m"]
    assert by_name["u"].virtual


def test_secret_cluster_name() -> None:
    assert secret_cluster_name("my-cluster-kubeconfig") == "my-cluster"
    assert secret_cluster_name("a-b-etcd") == "a-b"
    assert secret_cluster_name("kubeconfig") is None
    assert secret_cluster_name("c1-bootstrap") is None
