"""MachineSets and MachineDeployments end to end on the session's real API server: every core
controller (setup registry), the in-memory infrastructure provider and its simulated workload
clusters. Machines are cloned from an InMemoryMachineTemplate, boot, join as Nodes and become
Available through the Machine controller; scaling goes through the scale subresource, as
`kubectl scale` does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shipyard.client import Object
from shipyard.providers.inmemory import types
from tests.kube import Server
from tests.providers.harness import (
    Env,
    capi,
    cluster,
    condition,
    eventually,
    infra_cluster,
    running,
)

__all__ = ["capi", "full_env"]

V2 = "cluster.x-k8s.io/v1beta2"


@pytest.fixture
async def full_env(capi: Server, namespace: str) -> AsyncIterator[Env]:
    """The harness's Env, with all core controllers (ours included) registered."""
    async with running(capi, namespace) as e:
        yield e


async def make_cluster(env: Env, name: str = "c1") -> None:
    await env.create({"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "bootstrap-data"},
                      "stringData": {"value": "#cloud-config"}})
    await env.create(infra_cluster(name))
    await env.create(cluster(name))
    await env.create({"apiVersion": types.API_VERSION, "kind": "InMemoryMachineTemplate",
                      "metadata": {"name": "workers"},
                      "spec": {"template": {"spec": {}}}})


def template(labels: dict[str, str], version: str = "v1.33.0") -> Object:
    return {"metadata": {"labels": labels},
            "spec": {"clusterName": "c1", "version": version,
                     "bootstrap": {"dataSecretName": "bootstrap-data"},
                     "infrastructureRef": {"apiGroup": types.GROUP,
                                           "kind": "InMemoryMachineTemplate",
                                           "name": "workers"}}}


async def machines(env: Env) -> list[Object]:
    return (await env.kube.list(V2, "Machine", env.namespace))["items"]


def available(m: Object) -> bool:
    return condition(m, "Available").get("status") == "True"


async def scale(env: Env, kind: str, name: str, replicas: int) -> None:
    await env.kube.patch(V2, kind, name, {"spec": {"replicas": replicas}}, env.namespace,
                         subresource="scale")


@pytest.mark.timeout(90)
async def test_machine_set_scales_with_delete_annotation(full_env: Env, capi: Server) -> None:
    env = full_env

    async def kubectl_scale(replicas: int) -> None:
        await asyncio.to_thread(capi.kubectl, "scale", "machinesets.cluster.x-k8s.io/ms",
                                f"--replicas={replicas}", "-n", env.namespace)

    await make_cluster(env)
    await env.create({"apiVersion": V2, "kind": "MachineSet", "metadata": {"name": "ms"},
                      "spec": {"clusterName": "c1", "replicas": 3,
                               "selector": {"matchLabels": {"pool": "a"}},
                               "template": template({"pool": "a"})}})

    async def settled(count: int) -> list[Object] | None:
        found = [m for m in await machines(env) if not m["metadata"].get("deletionTimestamp")]
        ms = await env.get(V2, "MachineSet", "ms")
        status = (ms or {}).get("status") or {}
        if (len(found) == count and all(available(m) for m in found)
                and status.get("availableReplicas") == count and status.get("replicas") == count
                and len(await machines(env)) == count):
            return found
        return None

    first = await eventually(lambda: settled(3), "3 machines available", timeout=40)
    m = first[0]
    assert m["status"]["phase"] == "Running"
    infra = await env.kube.get(types.API_VERSION, "InMemoryMachine",
                               m["spec"]["infrastructureRef"]["name"], env.namespace)
    assert infra["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-name"] == "workers"
    assert any(ref["kind"] == "Machine" and ref.get("controller")
               for ref in infra["metadata"]["ownerReferences"])
    scale_view = await env.kube.get(V2, "MachineSet", "ms", env.namespace)
    assert scale_view["status"]["selector"] == "cluster.x-k8s.io/cluster-name=c1,pool=a"
    # As upstream, the template belongs to the Cluster (GC and `move` follow it).
    owners = (await env.kube.get(types.API_VERSION, "InMemoryMachineTemplate", "workers",
                                 env.namespace))["metadata"]["ownerReferences"]
    assert [(o["kind"], o["name"], o.get("controller")) for o in owners] == [
        ("Cluster", "c1", None)]

    await kubectl_scale(5)
    five = await eventually(lambda: settled(5), "5 machines available", timeout=40)
    keep = {x["metadata"]["name"] for x in first}
    marked = sorted(x["metadata"]["name"] for x in five if x["metadata"]["name"] not in keep)[0]
    await env.kube.patch(V2, "Machine", marked, {"metadata": {"annotations": {
        "cluster.x-k8s.io/delete-machine": "true"}}}, env.namespace)
    await kubectl_scale(1)
    (last,) = await eventually(lambda: settled(1), "1 machine left", timeout=40)
    assert last["metadata"]["name"] != marked


@pytest.mark.timeout(120)
async def test_machine_deployment_rolls_out_keeping_availability(full_env: Env) -> None:
    env = full_env
    await make_cluster(env)
    md: dict[str, Any] = {
        "apiVersion": V2, "kind": "MachineDeployment", "metadata": {"name": "md"},
        "spec": {"clusterName": "c1", "replicas": 2,
                 "rollout": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {
                     "maxSurge": 1, "maxUnavailable": 0}}},
                 "selector": {"matchLabels": {"pool": "md"}},
                 "template": template({"pool": "md"})}}
    await env.create(md)

    async def settled(version: str, count: int = 2) -> list[Object] | None:
        found = await machines(env)
        got = await env.get(V2, "MachineDeployment", "md")
        status = (got or {}).get("status") or {}
        sets = (await env.kube.list(V2, "MachineSet", env.namespace))["items"]
        if (len(found) == count and all(available(m) and m["spec"]["version"] == version
                                        for m in found)
                and status.get("availableReplicas") == count
                and status.get("upToDateReplicas") == count and len(sets) == 1):
            return found
        return None

    first = await eventually(lambda: settled("v1.33.0"), "2 machines available", timeout=40)
    await env.kube.patch(V2, "MachineDeployment", "md", {"spec": {"template": {"spec": {
        "version": "v1.34.0"}}}}, env.namespace)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 80
    lowest = 2
    while True:
        found = await machines(env)
        lowest = min(lowest, sum(1 for m in found if available(m)
                                 and not m["metadata"].get("deletionTimestamp")))
        if await settled("v1.34.0"):
            break
        assert loop.time() < deadline, "rollout did not finish"
        await asyncio.sleep(0.05)
    assert lowest >= 2, "available machines dropped below replicas during the rollout"
    final = await machines(env)
    assert not {m["metadata"]["uid"] for m in first} & {m["metadata"]["uid"] for m in final}
    got = await env.get(V2, "MachineDeployment", "md")
    assert got is not None
    assert got["metadata"]["annotations"]["machinedeployment.clusters.x-k8s.io/revision"] == "2"
    assert got["status"]["phase"] == "Running"
    assert got["status"]["selector"] == "cluster.x-k8s.io/cluster-name=c1,pool=md"

    await scale(env, "MachineDeployment", "md", 3)
    await eventually(lambda: settled("v1.34.0", 3), "scaled to 3", timeout=40)


@pytest.mark.timeout(90)
async def test_health_check_remediates_a_machine_whose_node_is_deleted(full_env: Env) -> None:
    env = full_env
    await make_cluster(env)
    await env.create({"apiVersion": V2, "kind": "MachineSet", "metadata": {"name": "ms"},
                      "spec": {"clusterName": "c1", "replicas": 2,
                               "selector": {"matchLabels": {"pool": "h"}},
                               "template": template({"pool": "h"})}})
    await env.create({"apiVersion": V2, "kind": "MachineHealthCheck",
                      "metadata": {"name": "mhc"},
                      "spec": {"clusterName": "c1", "selector": {"matchLabels": {"pool": "h"}},
                               "checks": {"unhealthyNodeConditions": [
                                   {"type": "Ready", "status": "Unknown",
                                    "timeoutSeconds": 300}]},
                               "remediation": {"triggerIf": {
                                   "unhealthyLessThanOrEqualTo": 1}}}})

    async def healthy(excluded: set[str]) -> list[Object] | None:
        found = await machines(env)
        mhc = await env.get(V2, "MachineHealthCheck", "mhc")
        status = (mhc or {}).get("status") or {}
        if (len(found) == 2 and all(available(m) for m in found)
                and not excluded & {m["metadata"]["name"] for m in found}
                and status.get("currentHealthy") == 2 and status.get("expectedMachines") == 2
                and all(condition(m, "HealthCheckSucceeded").get("status") == "True"
                        for m in found)):
            return found
        return None

    first = await eventually(lambda: healthy(set()), "2 healthy machines", timeout=40)
    victim = first[0]
    workload = await env.workload_client("c1")
    try:
        await workload.delete("v1", "Node", victim["status"]["nodeRef"]["name"])
    finally:
        await workload.close()
    await eventually(lambda: healthy({victim["metadata"]["name"]}),
                     "the machine without a Node replaced", timeout=60)
    mhc = await env.get(V2, "MachineHealthCheck", "mhc")
    assert mhc is not None
    assert condition(mhc, "RemediationAllowed").get("status") == "True"
