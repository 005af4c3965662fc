"""The Machine controller on its own paths: bootstrap through a config reference, deletion held
by pre-drain and pre-terminate hooks and then removing the infrastructure machine, the bootstrap
config and the Node, and pause by annotation."""

from __future__ import annotations

import base64

from shipyard.bootstrap.inmemory import types as bootstrap_types
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

PRE_DRAIN = "pre-drain.delete.hook.machine.cluster.x-k8s.io/test"
PRE_TERMINATE = "pre-terminate.delete.hook.machine.cluster.x-k8s.io/test"
CONFIG_REF = {"apiGroup": bootstrap_types.GROUP, "kind": "InMemoryBootstrapConfig"}


async def start_cluster(env: Env, name: str) -> None:
    await env.create({"apiVersion": "v1", "kind": "Secret",
                      "metadata": {"name": "bootstrap-data"},
                      "stringData": {"value": "#cloud-config"}})
    await env.create(infra_cluster(name))
    await env.create(cluster(name))


def running_check(env: Env, name: str):  # type: ignore[no-untyped-def]
    async def check() -> Object | None:
        m = await env.get(V2, "Machine", name)
        return m if m and (m.get("status") or {}).get("phase") == "Running" else None
    return check


async def node_names(env: Env, cluster_name: str) -> set[str]:
    workload = await env.workload_client(cluster_name)
    try:
        return {n["metadata"]["name"] for n in (await workload.list("v1", "Node"))["items"]}
    finally:
        await workload.close()


async def test_bootstrap_config_reference_provides_the_data_secret(env: Env) -> None:
    await start_cluster(env, "b1")
    await env.create({"apiVersion": bootstrap_types.API_VERSION,
                      "kind": "InMemoryBootstrapConfig", "metadata": {"name": "b1-m0"},
                      "spec": {"commands": ["echo hello"],
                               "files": [{"path": "/etc/motd", "content": "hi"}]}})
    await env.create(infra_machine("b1-m0"))
    await env.create(machine("b1-m0", "b1", config_ref={**CONFIG_REF, "name": "b1-m0"}))

    m = await eventually(running_check(env, "b1-m0"), "Machine Running")
    assert m["spec"]["bootstrap"]["dataSecretName"] == "b1-m0"
    assert condition(m, "BootstrapConfigReady")["status"] == "True"
    config = await env.get(bootstrap_types.API_VERSION, "InMemoryBootstrapConfig", "b1-m0")
    assert config is not None
    assert config["status"]["initialization"] == {"dataSecretCreated": True}
    assert config["metadata"]["ownerReferences"][0]["kind"] == "Machine"
    assert config["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "b1"
    secret = await env.kube.get("v1", "Secret", "b1-m0", env.namespace)
    assert secret["type"] == "cluster.x-k8s.io/secret"
    data = base64.b64decode(secret["data"]["value"]).decode()
    assert "#cloud-config" in data and "echo hello" in data and "/etc/motd" in data

    await env.kube.delete(V2, "Machine", "b1-m0", env.namespace)

    async def config_and_machine_gone() -> bool:
        return (await env.get(V2, "Machine", "b1-m0") is None and await env.get(
            bootstrap_types.API_VERSION, "InMemoryBootstrapConfig", "b1-m0") is None)

    await eventually(config_and_machine_gone, "Machine and its bootstrap config deleted")


async def test_delete_hooks_hold_deletion_then_infrastructure_and_node_go(env: Env) -> None:
    await start_cluster(env, "h1")
    await env.create(infra_machine("h1-m0"))
    await env.create(machine("h1-m0", "h1", control_plane=True,
                             annotations={PRE_DRAIN: "", PRE_TERMINATE: ""}))
    await eventually(running_check(env, "h1-m0"), "Machine Running")
    assert await node_names(env, "h1") == {"h1-m0"}

    await env.kube.delete(V2, "Machine", "h1-m0", env.namespace)

    async def deleting_reason(reason: str) -> Object | None:
        m = await env.get(V2, "Machine", "h1-m0")
        return m if condition(m, "Deleting").get("reason") == reason else None

    m = await eventually(lambda: deleting_reason("WaitingForPreDrainHook"), "pre-drain wait")
    assert m["status"]["phase"] == "Deleting"
    assert condition(m, "Ready")["status"] == "False"
    infra = await env.get(INFRA, "InMemoryMachine", "h1-m0")
    assert infra is not None and "deletionTimestamp" not in infra["metadata"]

    await env.kube.patch(V2, "Machine", "h1-m0",
                         {"metadata": {"annotations": {PRE_DRAIN: None}}}, env.namespace)
    await eventually(lambda: deleting_reason("WaitingForPreTerminateHook"), "pre-terminate wait")
    infra = await env.get(INFRA, "InMemoryMachine", "h1-m0")
    assert infra is not None and "deletionTimestamp" not in infra["metadata"]
    assert await node_names(env, "h1") == {"h1-m0"}
    # Drained before the pre-terminate hooks: the Node is cordoned.
    workload = await env.workload_client("h1")
    try:
        node = await workload.get("v1", "Node", "h1-m0")
    finally:
        await workload.close()
    assert node["spec"]["unschedulable"] is True
    m = await env.get(V2, "Machine", "h1-m0")
    assert any(c["type"] == "DrainingSucceeded" and c["status"] == "True"
               for c in m["status"]["deprecated"]["v1beta1"]["conditions"])

    await env.kube.patch(V2, "Machine", "h1-m0",
                         {"metadata": {"annotations": {PRE_TERMINATE: None}}}, env.namespace)

    async def machine_gone() -> bool:
        return await env.get(V2, "Machine", "h1-m0") is None

    await eventually(machine_gone, "Machine deleted")
    assert await env.get(INFRA, "InMemoryMachine", "h1-m0") is None
    assert await node_names(env, "h1") == set()
    assert await env.get(V2, "Cluster", "h1") is not None


async def test_a_paused_machine_waits_for_unpause(env: Env) -> None:
    await start_cluster(env, "p1")
    await env.create(infra_machine("p1-m0"))
    await env.create(machine("p1-m0", "p1", annotations={"cluster.x-k8s.io/paused": ""}))

    async def paused() -> Object | None:
        m = await env.get(V2, "Machine", "p1-m0")
        return m if condition(m, "Paused").get("status") == "True" else None

    m = await eventually(paused, "Paused condition")
    assert "finalizers" not in m["metadata"]
    assert "phase" not in m["status"]

    await env.kube.patch(V2, "Machine", "p1-m0", {"metadata": {"annotations": {
        "cluster.x-k8s.io/paused": None}}}, env.namespace)
    m = await eventually(running_check(env, "p1-m0"), "Machine Running after unpause")
    assert condition(m, "Paused")["status"] == "False"
    assert m["metadata"]["finalizers"] == ["machine.cluster.x-k8s.io"]


async def test_node_deletion_is_given_up_after_the_node_deletion_timeout(env: Env) -> None:
    await start_cluster(env, "t1")
    await env.create(infra_machine("t1-m0"))
    m = machine("t1-m0", "t1", control_plane=True)
    m["spec"]["deletion"] = {"nodeDeletionTimeoutSeconds": 1}
    await env.create(m)
    await eventually(running_check(env, "t1-m0"), "Machine Running")

    # Make the workload cluster unreachable: pause its InMemoryCluster (so nothing restarts
    # it) and stop its API server.
    await env.kube.patch(INFRA, "InMemoryCluster", "t1", {"metadata": {"annotations": {
        "cluster.x-k8s.io/paused": ""}}}, env.namespace)
    infra_cache = env.mgr.informer((INFRA, "InMemoryCluster")).cache

    async def pause_seen() -> bool:
        cached = infra_cache.get("t1", env.namespace)
        return bool(cached and "cluster.x-k8s.io/paused" in (
            cached["metadata"].get("annotations") or {}))

    await eventually(pause_seen, "pause in the provider's cache")
    await env.workloads.stop(f"{env.namespace}/t1")

    await env.kube.delete(V2, "Machine", "t1-m0", env.namespace)

    async def gone() -> bool:
        return await env.get(V2, "Machine", "t1-m0") is None

    await eventually(gone, "Machine deleted despite an unreachable workload cluster")

    await env.kube.patch(INFRA, "InMemoryCluster", "t1", {"metadata": {"annotations": {
        "cluster.x-k8s.io/paused": None}}}, env.namespace)

    async def restarted() -> bool:
        return env.workloads.get(f"{env.namespace}/t1") is not None

    await eventually(restarted, "workload cluster restarted")
    workload = await env.workloads.client(f"{env.namespace}/t1")
    nodes = (await workload.list("v1", "Node"))["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["t1-m0"]  # the timeout gave up on it


async def test_node_changes_in_the_workload_cluster_reach_the_machine(env: Env) -> None:
    await start_cluster(env, "n1")
    await env.create(infra_machine("n1-m0"))
    await env.create(machine("n1-m0", "n1", control_plane=True))
    await eventually(running_check(env, "n1-m0"), "Machine Running")
    workload = await env.workload_client("n1")
    try:
        await workload.patch("v1", "Node", "n1-m0", {"status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "KubeletNotReady",
             "message": "container runtime is down"}]}}, subresource="status")

        async def node_reason(reason: str) -> Object | None:
            m = await env.get(V2, "Machine", "n1-m0")
            return m if condition(m, "NodeHealthy").get("reason") == reason else None

        m = await eventually(lambda: node_reason("NodeNotReady"), "NodeHealthy NodeNotReady")
        assert condition(m, "NodeReady")["message"] == "container runtime is down"
        assert condition(m, "Ready")["status"] == "False"

        await workload.delete("v1", "Node", "n1-m0")
        m = await eventually(lambda: node_reason("NodeDeleted"), "NodeHealthy NodeDeleted")
        assert condition(m, "NodeHealthy")["status"] == "False"
        assert m["status"]["nodeRef"] == {"name": "n1-m0"}
    finally:
        await workload.close()
