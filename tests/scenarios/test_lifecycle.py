"""A worker pool's life on the real server: it comes up with Ready/Available conditions true
from each Machine up to the Cluster, scales with `kubectl scale`, and the Cluster's deletion
tears everything down in order (Machines, then the InMemoryCluster, then the Cluster)."""

from __future__ import annotations

import asyncio

import pytest

from shipyard.client import Object
from shipyard.providers.inmemory import types
from shipyard.providers.inmemory.cluster import workload_key
from tests.kube import Server
from tests.providers.harness import Env
from tests.scenarios.conftest import (
    V2,
    condition,
    converged,
    create_all,
    eventually,
    machine_deployment,
    workload_cluster,
)


def control_plane_machine() -> list[Object]:
    """One stand-alone control-plane Machine: with no controlPlaneRef, the Cluster counts its
    control plane initialized and available once such a Machine has a Node."""
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bootstrap-data"},
             "stringData": {"value": "#cloud-config"}},
            {"apiVersion": types.API_VERSION, "kind": "InMemoryMachine",
             "metadata": {"name": "cp-0"}, "spec": {}},
            {"apiVersion": V2, "kind": "Machine",
             "metadata": {"name": "cp-0", "labels": {"cluster.x-k8s.io/control-plane": ""}},
             "spec": {"clusterName": "c1", "version": "v1.33.0",
                      "bootstrap": {"dataSecretName": "bootstrap-data"},
                      "infrastructureRef": {"apiGroup": types.GROUP, "kind": "InMemoryMachine",
                                            "name": "cp-0"}}}]


def true(obj: Object | None, *types_: str) -> list[str]:
    """The condition types of `types_` that are not True on `obj` (empty when all are)."""
    return [t for t in types_ if condition(obj, t).get("status") != "True"]


@pytest.mark.timeout(60)
async def test_three_workers_come_up_ready_and_available_up_the_tree(env: Env) -> None:
    ns = env.namespace
    await create_all(env.kube, ns, [*workload_cluster(), *control_plane_machine(),
                                    machine_deployment("md", 3)])
    found = await eventually(lambda: converged(env.kube, ns, "md", 3), "3 machines", timeout=40)

    for m in found:
        assert m["status"]["phase"] == "Running"
        assert m["status"]["nodeRef"]["name"]
        assert true(m, "Ready", "Available", "InfrastructureReady", "BootstrapConfigReady",
                    "NodeReady", "NodeHealthy", "UpToDate") == [], m["status"]["conditions"]

    async def tree() -> tuple[Object, Object, Object] | None:
        (ms,) = (await env.kube.list(V2, "MachineSet", ns))["items"]
        md = await env.kube.get(V2, "MachineDeployment", "md", ns)
        cl = await env.kube.get(V2, "Cluster", "c1", ns)
        if ((ms.get("status") or {}).get("readyReplicas") != 3
                or true(ms, "MachinesReady", "MachinesUpToDate")
                or true(md, "Available", "MachinesReady", "MachinesUpToDate")
                or true(cl, "InfrastructureReady", "ControlPlaneInitialized",
                        "ControlPlaneAvailable", "WorkersAvailable", "WorkerMachinesReady",
                        "ControlPlaneMachinesReady", "Available", "Ready")):
            return None
        return ms, md, cl

    ms, md, cl = await eventually(tree, "conditions true up the tree", timeout=20)
    assert ms["status"]["readyReplicas"] == ms["status"]["availableReplicas"] == 3
    assert md["status"]["phase"] == "Running"
    assert condition(ms, "ScalingUp")["status"] == condition(ms, "ScalingDown")["status"] == "False"
    assert condition(md, "RollingOut")["status"] == "False"
    assert condition(md, "ScalingUp")["status"] == "False"
    assert cl["status"]["phase"] == "Provisioned"
    assert cl["status"]["workers"]["availableReplicas"] == 3
    assert cl["status"]["initialization"]["infrastructureProvisioned"] is True


@pytest.mark.timeout(60)
async def test_kubectl_scale_three_to_ten_to_two(env: Env, capi: Server) -> None:
    ns = env.namespace
    await create_all(env.kube, ns, [*workload_cluster(), machine_deployment("md", 3)])
    first = await eventually(lambda: converged(env.kube, ns, "md", 3), "3 machines", timeout=30)

    async def kubectl_scale(replicas: int) -> None:
        await asyncio.to_thread(capi.kubectl, "scale", "machinedeployments.cluster.x-k8s.io/md",
                                f"--replicas={replicas}", "-n", ns)

    await kubectl_scale(10)
    ten = await eventually(lambda: converged(env.kube, ns, "md", 10), "10 machines", timeout=40)
    assert {m["metadata"]["uid"] for m in first} <= {m["metadata"]["uid"] for m in ten}
    await kubectl_scale(2)
    two = await eventually(lambda: converged(env.kube, ns, "md", 2), "2 machines", timeout=40)
    assert {m["metadata"]["uid"] for m in two} <= {m["metadata"]["uid"] for m in ten}
    (ms,) = (await env.kube.list(V2, "MachineSet", ns))["items"]
    assert ms["spec"]["replicas"] == 2
    out = await asyncio.to_thread(capi.kubectl, "get", "machinedeployments.cluster.x-k8s.io/md",
                                  "-n", ns, "-o", "jsonpath={.status.readyReplicas}")
    assert out.stdout == "2"


@pytest.mark.timeout(60)
async def test_deleting_the_cluster_removes_machines_then_infrastructure_then_itself(
        env: Env) -> None:
    ns = env.namespace
    await create_all(env.kube, ns, [*workload_cluster(), machine_deployment("md", 2)])
    await eventually(lambda: converged(env.kube, ns, "md", 2), "2 machines", timeout=30)

    deleted: list[tuple[int, str, str]] = []
    kinds = [(V2, "Machine"), (types.API_VERSION, "InMemoryCluster"), (V2, "Cluster"),
             (V2, "MachineDeployment"), (V2, "MachineSet")]

    async def record(api_version: str, kind: str, rv: str) -> None:
        async for event in env.kube.watch(api_version, kind, ns, resource_version=rv):
            if event["type"] == "DELETED":
                meta = event["object"]["metadata"]
                deleted.append((int(meta["resourceVersion"]), kind, meta["name"]))

    watches = []
    for api_version, kind in kinds:
        listed = await env.kube.list(api_version, kind, ns)
        watches.append(asyncio.create_task(
            record(api_version, kind, listed["metadata"]["resourceVersion"])))
    try:
        await env.kube.delete(V2, "Cluster", "c1", ns)

        async def cluster_gone() -> bool:
            return any(kind == "Cluster" for _, kind, _ in deleted)

        await eventually(cluster_gone, "the Cluster deleted", timeout=30)
    finally:
        for task in watches:
            task.cancel()
    order = [kind for _, kind, _ in sorted(deleted)]
    assert order.count("Machine") == 2 and order.count("InMemoryCluster") == 1, order
    last_machine = max(i for i, kind in enumerate(order) if kind == "Machine")
    assert last_machine < order.index("InMemoryCluster") < order.index("Cluster"), order
    assert order[-1] == "Cluster", order
    for api_version, kind in kinds:
        assert (await env.kube.list(api_version, kind, ns))["items"] == [], kind
    key = workload_key(ns, "c1")
    assert env.workloads.get(key) is None and not env.workloads.exists(key)
