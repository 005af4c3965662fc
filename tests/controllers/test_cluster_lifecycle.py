"""A Cluster with an InMemoryCluster and three Machines goes from Pending to Provisioned with
every Machine Running on a Node of its simulated workload cluster; deleting the Cluster takes
Machines first, then the infrastructure cluster and the workload cluster, then the Cluster.

Runs the core Cluster and Machine controllers and the in-memory provider on a runtime Manager
against the session's real API server.
"""

from __future__ import annotations

import base64

import yaml

from shipyard.client import Object
from tests.providers.harness import (
    INFRA,
    V2,
    Env,
    capi,
    cluster,
    condition,
    env,
    eventually,
    infra_cluster,
    infra_machine,
    machine,
)

__all__ = ["capi", "env"]

HOOK = "pre-terminate.delete.hook.machine.cluster.x-k8s.io/test"


async def make_cluster(env: Env, name: str, machines: int) -> list[str]:
    await env.create({"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "bootstrap-data"},
                      "stringData": {"value": "#cloud-config"}})
    await env.create(infra_cluster(name))
    await env.create(cluster(name))
    names = [f"{name}-m{i}" for i in range(machines)]
    for i, m in enumerate(names):
        await env.create(infra_machine(m))
        await env.create(machine(m, name, control_plane=i == 0))
    return names


async def running(env: Env, names: list[str]) -> list[Object] | None:
    found = [await env.get(V2, "Machine", n) for n in names]
    if all(m and (m.get("status") or {}).get("phase") == "Running"
           and condition(m, "Ready").get("status") == "True" for m in found):
        return [m for m in found if m]
    return None


async def test_cluster_with_three_machines_provisions_and_runs(env: Env) -> None:
    names = await make_cluster(env, "c1", 3)

    async def provisioned() -> Object | None:
        c = await env.get(V2, "Cluster", "c1")
        return c if c and (c.get("status") or {}).get("phase") == "Provisioned" else None

    c1 = await eventually(provisioned, "Cluster Provisioned")
    assert c1["metadata"]["finalizers"] == ["cluster.cluster.x-k8s.io"]
    assert c1["status"]["initialization"]["infrastructureProvisioned"] is True
    endpoint = c1["spec"]["controlPlaneEndpoint"]
    assert endpoint["host"] == "127.0.0.1" and endpoint["port"] > 0
    assert condition(c1, "InfrastructureReady")["status"] == "True"

    machines = await eventually(lambda: running(env, names), "Machines Running")
    workload = await env.workload_client("c1")
    try:
        nodes = {n["spec"]["providerID"]: n
                 for n in (await workload.list("v1", "Node"))["items"]}
    finally:
        await workload.close()
    for m in machines:
        assert m["spec"]["providerID"] == f"inmemory://{env.namespace}/c1/{m['metadata']['name']}"
        assert nodes[m["spec"]["providerID"]]["metadata"]["name"] == m["status"]["nodeRef"]["name"]
        node_annotations = nodes[m["spec"]["providerID"]]["metadata"]["annotations"]
        assert node_annotations["cluster.x-k8s.io/machine"] == m["metadata"]["name"]
        assert m["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "c1"
        assert m["metadata"]["finalizers"] == ["machine.cluster.x-k8s.io"]
        assert [r["kind"] for r in m["metadata"]["ownerReferences"]] == ["Cluster"]
        assert {a["type"] for a in m["status"]["addresses"]} == {"Hostname", "InternalIP"}
        assert m["status"]["initialization"] == {"bootstrapDataSecretCreated": True,
                                                 "infrastructureProvisioned": True}
        for type_ in ("BootstrapConfigReady", "InfrastructureReady", "NodeReady", "NodeHealthy",
                      "Available"):
            assert condition(m, type_)["status"] == "True", type_
        infra = await env.get(INFRA, "InMemoryMachine", m["metadata"]["name"])
        assert infra is not None
        assert infra["metadata"]["ownerReferences"][0]["kind"] == "Machine"
        assert infra["metadata"]["ownerReferences"][0]["controller"] is True
        assert infra["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "c1"

    async def initialized() -> Object | None:
        c = await env.get(V2, "Cluster", "c1")
        ok = c and condition(c, "ControlPlaneInitialized").get("status") == "True" \
            and condition(c, "WorkerMachinesReady").get("status") == "True"
        return c if ok else None

    c1 = await eventually(initialized, "Cluster ControlPlaneInitialized")
    assert c1["status"]["initialization"]["controlPlaneInitialized"] is True
    assert c1["status"]["workers"]["readyReplicas"] == 2
    assert c1["status"]["controlPlane"]["readyReplicas"] == 1

    secret = await env.kube.get("v1", "Secret", "c1-kubeconfig", env.namespace)
    assert secret["type"] == "cluster.x-k8s.io/secret"
    assert secret["metadata"]["labels"] == {"cluster.x-k8s.io/cluster-name": "c1"}
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["value"]))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{endpoint['port']}"
    assert kubeconfig["current-context"] == "c1-admin@c1"

    infra_c = await env.get(INFRA, "InMemoryCluster", "c1")
    assert infra_c is not None
    assert infra_c["metadata"]["ownerReferences"][0]["kind"] == "Cluster"
    assert infra_c["status"]["ready"] is True
    assert infra_c["status"]["initialization"] == {"provisioned": True}


async def test_deleting_the_cluster_removes_machines_before_infrastructure(env: Env) -> None:
    names = await make_cluster(env, "c2", 3)
    await eventually(lambda: running(env, names), "Machines Running")
    held = names[1]
    await env.kube.patch(V2, "Machine", held, {"metadata": {"annotations": {HOOK: ""}}},
                         env.namespace)
    assert env.workloads.get(f"{env.namespace}/c2") is not None

    await env.kube.delete(V2, "Cluster", "c2", env.namespace)

    async def others_gone_held_waiting() -> bool:
        others = [await env.get(V2, "Machine", n) for n in names if n != held]
        m = await env.get(V2, "Machine", held)
        return all(o is None for o in others) and m is not None and condition(
            m, "Deleting").get("reason") == "WaitingForPreTerminateHook"

    await eventually(others_gone_held_waiting, "held Machine waiting on its hook")
    c2 = await env.get(V2, "Cluster", "c2")
    assert c2 is not None and c2["status"]["phase"] == "Deleting"
    assert condition(c2, "Deleting")["reason"] == "WaitingForWorkersDeletion"
    infra_c = await env.get(INFRA, "InMemoryCluster", "c2")
    assert infra_c is not None and "deletionTimestamp" not in infra_c["metadata"]
    assert await env.get(INFRA, "InMemoryMachine", held) is not None
    assert env.workloads.get(f"{env.namespace}/c2") is not None

    await env.kube.patch(V2, "Machine", held, {"metadata": {"annotations": {HOOK: None}}},
                         env.namespace)

    async def all_gone() -> bool:
        left = [await env.get(V2, "Cluster", "c2"), await env.get(INFRA, "InMemoryCluster", "c2"),
                *[await env.get(V2, "Machine", n) for n in names],
                *[await env.get(INFRA, "InMemoryMachine", n) for n in names],
                await env.get("v1", "Secret", "c2-kubeconfig")]
        return all(o is None for o in left)

    await eventually(all_gone, "Cluster and everything of it deleted")
    assert env.workloads.get(f"{env.namespace}/c2") is None
    assert not env.workloads.exists(f"{env.namespace}/c2")


async def test_a_paused_cluster_is_left_alone_until_unpaused(env: Env) -> None:
    await env.create(infra_cluster("c3"))
    await env.create(cluster("c3", paused=True))

    async def paused_condition() -> Object | None:
        c = await env.get(V2, "Cluster", "c3")
        return c if condition(c, "Paused").get("status") == "True" else None

    c3 = await eventually(paused_condition, "Paused condition")
    assert "finalizers" not in c3["metadata"]
    assert "phase" not in c3["status"]
    infra_c = await env.get(INFRA, "InMemoryCluster", "c3")
    assert infra_c is not None and "ownerReferences" not in infra_c["metadata"]

    await env.kube.patch(V2, "Cluster", "c3", {"spec": {"paused": False}}, env.namespace)

    async def provisioned() -> Object | None:
        c = await env.get(V2, "Cluster", "c3")
        return c if c and (c.get("status") or {}).get("phase") == "Provisioned" else None

    c3 = await eventually(provisioned, "Cluster Provisioned after unpause")
    assert condition(c3, "Paused")["status"] == "False"

    await env.kube.patch(V2, "Cluster", "c3", {"metadata": {"annotations": {
        "cluster.x-k8s.io/paused": ""}}}, env.namespace)
    await eventually(paused_condition, "Paused by annotation")
    await env.kube.delete(V2, "Cluster", "c3", env.namespace)
    deleting = await env.get(V2, "Cluster", "c3")
    assert deleting is not None and deleting["metadata"]["finalizers"] == [
        "cluster.cluster.x-k8s.io"]
    await env.kube.patch(V2, "Cluster", "c3", {"metadata": {"annotations": {
        "cluster.x-k8s.io/paused": None}}}, env.namespace)

    async def gone() -> bool:
        return await env.get(V2, "Cluster", "c3") is None

    await eventually(gone, "paused Cluster deleted once unpaused")


async def test_manifests_written_at_v1beta1_provision_and_read_back_at_v1beta1(env: Env) -> None:
    v1 = "cluster.x-k8s.io/v1beta1"
    ref = {"apiVersion": INFRA, "kind": "InMemoryCluster", "name": "old"}
    await env.create(infra_cluster("old"))
    await env.create({"apiVersion": v1, "kind": "Cluster", "metadata": {"name": "old"},
                      "spec": {"infrastructureRef": ref}})
    await env.create(infra_machine("old-m0"))
    await env.create({"apiVersion": v1, "kind": "Machine", "metadata": {
        "name": "old-m0", "labels": {"cluster.x-k8s.io/control-plane": ""}},
        "spec": {"clusterName": "old", "bootstrap": {"dataSecretName": "anything"},
                 "infrastructureRef": {"apiVersion": INFRA, "kind": "InMemoryMachine",
                                       "name": "old-m0"}}})

    async def running_v1() -> Object | None:
        m = await env.get(v1, "Machine", "old-m0")
        return m if m and (m.get("status") or {}).get("phase") == "Running" else None

    m = await eventually(running_v1, "v1beta1 Machine Running")
    assert m["spec"]["infrastructureRef"]["apiVersion"] == INFRA
    assert m["status"]["infrastructureReady"] is True
    assert m["status"]["bootstrapReady"] is True
    assert m["status"]["nodeRef"]["name"] == "old-m0"
    assert {c["type"] for c in m["status"]["conditions"]} >= {
        "Ready", "BootstrapReady", "InfrastructureReady", "NodeHealthy"}

    async def initialized_v1() -> Object | None:
        c = await env.get(v1, "Cluster", "old")
        status = (c or {}).get("status") or {}
        return c if status.get("phase") == "Provisioned" and status.get(
            "controlPlaneReady") is True else None

    c = await eventually(initialized_v1, "v1beta1 Cluster Provisioned")
    assert c["status"]["infrastructureReady"] is True
    assert c["spec"]["controlPlaneEndpoint"]["host"] == "127.0.0.1"
