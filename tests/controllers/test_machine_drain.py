"""Machine deletion drains its Node in the workload cluster: Pods are evicted through the Eviction
API (DaemonSet, mirror, `cluster.x-k8s.io/drain: skip` and finished Pods stay), a
PodDisruptionBudget holds the deletion with the blocked Pods on the Deleting condition until it is
relaxed, and `nodeDrainTimeoutSeconds` or the exclude-node-draining annotation let deletion go on
regardless. The workload clusters are real Shipyard API servers (the in-memory provider's)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from shipyard.apimachinery.errors import NotFound
from shipyard.client import Client, Object
from shipyard.controllers import drain
from tests.controllers.test_machine_lifecycle import running_check, start_cluster
from tests.providers.harness import (
    V2,
    Env,
    capi,
    condition,
    env,
    eventually,
    infra_machine,
    machine,
)

__all__ = ["capi", "env"]

BUDGET_BLOCKS = ("cannot evict pod as it would violate the pod's disruption budget. The "
                 "disruption budget web needs 1 healthy pods and has 1 currently")


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Look at a blocked drain again within a fraction of a second, not upstream's 20 s."""
    monkeypatch.setattr(drain, "DRAIN_RETRY_INTERVAL", 0.2)


async def running_machine(env: Env, name: str, **spec: Any) -> None:
    await start_cluster(env, name)
    m = machine(f"{name}-m0", name)
    m["spec"].update(spec)
    await env.create(infra_machine(f"{name}-m0"))
    await env.create(m)
    await eventually(running_check(env, f"{name}-m0"), "Machine Running")


async def pod(workload: Client, name: str, node: str, *, ready: bool = True,
              labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
              owner: Object | None = None, phase: str = "Running") -> None:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": labels or {},
                            "annotations": annotations or {}}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                                    "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "controller": True}]
    await workload.create({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {
        "nodeName": node, "containers": [{"name": "main", "image": "busybox"}]}})
    conds = [{"type": "Ready", "status": "True" if ready else "False"}]
    await workload.patch("v1", "Pod", name, {"status": {"phase": phase, "conditions": conds}},
                         "default", subresource="status")


async def budget(workload: Client, min_available: int) -> None:
    await workload.create({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                           "metadata": {"name": "web", "namespace": "default"},
                           "spec": {"minAvailable": min_available,
                                    "selector": {"matchLabels": {"app": "web"}}}})


async def pod_names(workload: Client) -> set[str]:
    return {p["metadata"]["name"] for p in (await workload.list("v1", "Pod", "default"))["items"]}


@pytest.fixture
async def workloads(env: Env) -> AsyncIterator[dict[str, Client]]:
    """Workload-cluster clients a test opens, closed after it."""
    opened: dict[str, Client] = {}
    yield opened
    for client in opened.values():
        await client.close()


async def open_workload(env: Env, workloads: dict[str, Client], cluster: str) -> Client:
    workloads[cluster] = await env.workload_client(cluster)
    return workloads[cluster]


async def machine_gone(env: Env, name: str) -> bool:
    return await env.get(V2, "Machine", name) is None


async def test_deletion_evicts_the_nodes_pods_and_leaves_the_exempt_ones(
        env: Env, workloads: dict[str, Client]) -> None:
    await running_machine(env, "d1")
    workload = await open_workload(env, workloads, "d1")
    daemon_set = await workload.create({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}}}}})
    await pod(workload, "web-0", "d1-m0", labels={"app": "web"})
    await pod(workload, "web-1", "d1-m0", labels={"app": "web"}, ready=False)
    await pod(workload, "agent", "d1-m0", owner=daemon_set)
    await pod(workload, "static", "d1-m0", annotations={"kubernetes.io/config.mirror": "x"})
    await pod(workload, "kept", "d1-m0", labels={"cluster.x-k8s.io/drain": "skip"})
    await pod(workload, "finished", "d1-m0", phase="Succeeded", ready=False)
    await pod(workload, "elsewhere", "another-node", labels={"app": "web"})

    await env.kube.delete(V2, "Machine", "d1-m0", env.namespace)
    await eventually(lambda: machine_gone(env, "d1-m0"), "Machine deleted")
    assert await pod_names(workload) == {"agent", "static", "kept", "finished", "elsewhere"}
    with pytest.raises(NotFound):
        await workload.get("v1", "Node", "d1-m0")  # drained, then deleted


async def test_a_disruption_budget_holds_the_drain_until_relaxed(
        env: Env, workloads: dict[str, Client]) -> None:
    await running_machine(env, "d2")
    workload = await open_workload(env, workloads, "d2")
    await pod(workload, "web-0", "d2-m0", labels={"app": "web"})
    await pod(workload, "web-1", "d2-m0", labels={"app": "web"}, phase="Pending", ready=False)
    await budget(workload, 1)

    await env.kube.delete(V2, "Machine", "d2-m0", env.namespace)

    async def blocked() -> Object | None:
        m = await env.get(V2, "Machine", "d2-m0")
        cond = condition(m, "Deleting")
        return m if cond.get("reason") == "DrainingNode" and BUDGET_BLOCKS in cond.get(
            "message", "") else None

    m = await eventually(blocked, "drain blocked by the PodDisruptionBudget")
    started = m["status"]["deletion"]["nodeDrainStartTime"]
    assert condition(m, "Deleting")["message"] == (
        f"Drain not completed yet (started at {started}):\n"
        f"* Pod default/web-0: {BUDGET_BLOCKS}")
    v1beta1 = {c["type"]: c for c in m["status"]["deprecated"]["v1beta1"]["conditions"]}
    assert (v1beta1["DrainingSucceeded"]["status"], v1beta1["DrainingSucceeded"]["reason"]) == (
        "False", "Draining")
    assert await pod_names(workload) == {"web-0"}  # the Pending one went, whatever the budget
    node = await workload.get("v1", "Node", "d2-m0")
    assert node["spec"]["unschedulable"] is True

    await workload.patch("policy/v1", "PodDisruptionBudget", "web", {"spec": {"minAvailable": 0}},
                         "default")
    await eventually(lambda: machine_gone(env, "d2-m0"), "Machine deleted once the budget allows")
    assert await pod_names(workload) == set()


async def test_the_drain_timeout_lets_deletion_go_on(
        env: Env, workloads: dict[str, Client]) -> None:
    await running_machine(env, "d3", deletion={"nodeDrainTimeoutSeconds": 1})
    workload = await open_workload(env, workloads, "d3")
    await pod(workload, "web-0", "d3-m0", labels={"app": "web"})
    await budget(workload, 1)

    await env.kube.delete(V2, "Machine", "d3-m0", env.namespace)
    await eventually(lambda: machine_gone(env, "d3-m0"), "Machine deleted after the drain timeout")
    assert await pod_names(workload) == {"web-0"}


async def test_exclude_node_draining_skips_the_drain(
        env: Env, workloads: dict[str, Client]) -> None:
    await running_machine(env, "d4")
    workload = await open_workload(env, workloads, "d4")
    await pod(workload, "web-0", "d4-m0", labels={"app": "web"})
    await env.kube.patch(V2, "Machine", "d4-m0", {"metadata": {"annotations": {
        "machine.cluster.x-k8s.io/exclude-node-draining": ""}}}, env.namespace)

    await env.kube.delete(V2, "Machine", "d4-m0", env.namespace)
    await eventually(lambda: machine_gone(env, "d4-m0"), "Machine deleted without a drain")
    assert await pod_names(workload) == {"web-0"}


def test_condition_message_lists_at_most_three_pods_and_five_failures() -> None:
    blocked = {f"failure {i}": [f"ns/p{i}"] for i in range(7)}
    blocked["failure 0"] = ["ns/a", "ns/b", "ns/c", "ns/d"]
    assert drain.condition_message("2026-01-01T00:00:00Z", ["ns/x", "ns/y"], blocked) == (
        "Drain not completed yet (started at 2026-01-01T00:00:00Z):\n"
        "* Pods ns/x, ns/y: deletionTimestamp set, but still not removed from the Node\n"
        "* Pods ns/a, ns/b, ns/c, ... (1 more): failure 0\n"
        "* Pod ns/p1: failure 1\n"
        "* Pod ns/p2: failure 2\n"
        "* Pod ns/p3: failure 3\n"
        "* Pod ns/p4: failure 4\n"
        "* ... (2 more errors applying to 2 Pods)")
