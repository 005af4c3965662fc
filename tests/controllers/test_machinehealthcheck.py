"""MachineHealthCheck: the pure verdicts (node startup timeout, unhealthy node and machine
conditions, a deleted Node, the remediate annotation), triggerIf arithmetic, and the reconciler
on the FakeClient reading Nodes through the `<cluster>-kubeconfig` Secret, with the MachineSet
carrying out the remediation."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shipyard.client import FakeClient, Object
from shipyard.controllers.machinehealthcheck import (
    MachineHealthCheckReconciler,
    health_of,
    remediation_allowed,
)
from shipyard.controllers.machineset import MachineSetReconciler
from shipyard.controllers.remote import RemoteClusters
from shipyard.runtime import Request
from tests.controllers.capi_fakes import NS, V1B2, capi_fake, machine_set, machines

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def machine(created: datetime, node: str | None = None, **annotations: str) -> Object:
    status: dict[str, Any] = {"nodeRef": {"name": node}} if node else {}
    return {"metadata": {"name": "m", "creationTimestamp": ts(created),
                         "annotations": annotations}, "status": status}


def node(ready: str, since: datetime) -> Object:
    return {"metadata": {"name": "n"}, "status": {"conditions": [
        {"type": "Ready", "status": ready, "lastTransitionTime": ts(since)}]}}


CHECKS = {"nodeStartupTimeoutSeconds": 300, "unhealthyNodeConditions": [
    {"type": "Ready", "status": "Unknown", "timeoutSeconds": 60},
    {"type": "Ready", "status": "False", "timeoutSeconds": 60}]}


def test_node_startup_timeout() -> None:
    young = health_of(machine(NOW - timedelta(seconds=100)), None, False, CHECKS, None, NOW)
    assert young.healthy and young.recheck_after == 200
    old = health_of(machine(NOW - timedelta(seconds=301)), None, False, CHECKS, None, NOW)
    assert (old.healthy, old.reason) == (False, "NodeStartupTimeout")
    assert "0:05:00" in old.message
    # Counted from the latest of creation and the cluster's/machine's infrastructure readiness.
    cluster = {"status": {"conditions": [{"type": "InfrastructureReady", "status": "True",
                                          "lastTransitionTime": ts(
                                              NOW - timedelta(seconds=30))}]}}
    late = health_of(machine(NOW - timedelta(hours=1)), None, False, CHECKS, cluster, NOW)
    assert late.healthy and late.recheck_after == 270
    default = health_of(machine(NOW - timedelta(seconds=599)), None, False, {}, None, NOW)
    assert default.healthy
    disabled = health_of(machine(NOW - timedelta(days=9)), None, False,
                         {"nodeStartupTimeoutSeconds": 0}, None, NOW)
    assert disabled.healthy and disabled.recheck_after is None


def test_unhealthy_node_conditions() -> None:
    m = machine(NOW - timedelta(hours=1), node="n")
    ok = health_of(m, node("True", NOW - timedelta(hours=1)), False, CHECKS, None, NOW)
    assert ok.healthy and ok.recheck_after is None
    pending = health_of(m, node("Unknown", NOW - timedelta(seconds=20)), False, CHECKS, None,
                        NOW)
    assert pending.healthy and pending.recheck_after == 40
    bad = health_of(m, node("False", NOW - timedelta(seconds=61)), False, CHECKS, None, NOW)
    assert (bad.healthy, bad.reason) == (False, "UnhealthyNode")
    assert bad.message == ("Health check failed: Condition Ready on Node is reporting status "
                           "False for more than 0:01:00")


def test_node_deleted_machine_conditions_and_annotation() -> None:
    m = machine(NOW - timedelta(hours=1), node="n")
    gone = health_of(m, None, True, CHECKS, None, NOW)
    assert (gone.healthy, gone.reason) == (False, "NodeDeleted")
    m["status"]["conditions"] = [{"type": "Ready", "status": "False",
                                  "lastTransitionTime": ts(NOW - timedelta(minutes=10))}]
    checks = {"unhealthyMachineConditions": [
        {"type": "Ready", "status": "False", "timeoutSeconds": 300}]}
    assert health_of(m, node("True", NOW), False, checks, None, NOW).reason == (
        "UnhealthyMachine")
    marked = machine(NOW, node="n", **{"cluster.x-k8s.io/remediate-machine": ""})
    assert health_of(marked, node("True", NOW), False, CHECKS, None, NOW).reason == (
        "HasRemediateAnnotation")


@pytest.mark.parametrize(("remediation", "total", "unhealthy", "want"), [
    ({}, 5, 5, (True, 0)),
    ({"triggerIf": {"unhealthyLessThanOrEqualTo": 2}}, 5, 2, (True, 0)),
    ({"triggerIf": {"unhealthyLessThanOrEqualTo": 2}}, 5, 3, (False, 0)),
    ({"triggerIf": {"unhealthyLessThanOrEqualTo": "40%"}}, 5, 1, (True, 1)),
    ({"triggerIf": {"unhealthyLessThanOrEqualTo": "50%"}}, 5, 3, (False, 0)),  # 2.5 → 2
    ({"triggerIf": {"unhealthyInRange": "[1-3]"}}, 5, 2, (True, 1)),
    ({"triggerIf": {"unhealthyInRange": "[1-3]"}}, 5, 4, (False, 0)),
    ({"triggerIf": {"unhealthyInRange": "[2-3]"}}, 5, 1, (False, 0)),
])
def test_remediation_allowed(remediation: dict[str, Any], total: int, unhealthy: int,
                             want: tuple[bool, int]) -> None:
    allowed, remaining, message = remediation_allowed(remediation, total, unhealthy)
    assert (allowed, remaining) == want
    assert bool(message) != allowed


async def workload(fake: FakeClient) -> RemoteClusters:
    await fake.create({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "c1-kubeconfig", "namespace": NS},
                       "data": {"value": base64.b64encode(b"kubeconfig").decode()}})
    # The workload cluster is the same fake (it serves Nodes): enough to read them.
    return RemoteClusters(fake, lambda text: fake)


@contextlib.asynccontextmanager
async def checker(fake: FakeClient) -> AsyncIterator[MachineHealthCheckReconciler]:
    """A reconciler whose Node informers are stopped afterwards."""
    r = MachineHealthCheckReconciler(fake, await workload(fake))
    try:
        yield r
    finally:
        await r.remote.aclose()


async def node_gone(r: MachineHealthCheckReconciler, name: str) -> None:
    """Wait until the reconciler's Node informer has seen the deletion."""
    nodes = await r.remote.nodes(NS, "c1")
    for _ in range(500):
        if nodes.cache.get(name) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the Node informer still has {name}")


def mhc(trigger: dict[str, Any] | None = None) -> Object:
    return {"apiVersion": V1B2, "kind": "MachineHealthCheck",
            "metadata": {"name": "mhc", "namespace": NS},
            "spec": {"clusterName": "c1", "selector": {"matchLabels": {"pool": "ms"}},
                     "checks": CHECKS, "remediation": {"triggerIf": trigger or {}}}}


async def setup_machines(fake: FakeClient, count: int) -> list[Object]:
    await fake.create(machine_set("ms", count))
    await MachineSetReconciler(fake, rng=random.Random(2)).reconcile(Request(NS, "ms"))
    found = await machines(fake)
    old = ts(datetime.now(UTC) - timedelta(hours=1))
    for i, m in enumerate(found):
        name = f"node-{i}"
        await fake.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                           "status": {"conditions": [{"type": "Ready", "status": "True",
                                                      "lastTransitionTime": old}]}})
        await fake.patch(V1B2, "Machine", m["metadata"]["name"],
                         {"status": {"nodeRef": {"name": name}}}, NS, subresource="status")
    return await machines(fake)


def cond(obj: Object, type_: str) -> str | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c["type"] == type_:
            return str(c["status"])
    return None


async def test_marks_unhealthy_and_the_machine_set_remediates() -> None:
    fake = await capi_fake()
    found = await setup_machines(fake, 3)
    async with checker(fake) as r:
        await fake.create(mhc({"unhealthyLessThanOrEqualTo": 1}))
        result = await r.reconcile(Request(NS, "mhc"))
        assert result.requeue_after is None  # Nodes are watched, not polled
        status = (await fake.get(V1B2, "MachineHealthCheck", "mhc", NS))["status"]
        assert (status["expectedMachines"], status["currentHealthy"],
                status["remediationsAllowed"]) == (3, 3, 1)
        assert status["targets"] == sorted(m["metadata"]["name"] for m in found)
        assert all(cond(m, "HealthCheckSucceeded") == "True" for m in await machines(fake))

        await fake.delete("v1", "Node", "node-0")
        await node_gone(r, "node-0")
        await r.reconcile(Request(NS, "mhc"))
        sick = next(m for m in await machines(fake) if m["status"]["nodeRef"]["name"] == "node-0")
        assert cond(sick, "HealthCheckSucceeded") == "False"
        assert cond(sick, "OwnerRemediated") == "False"
        assert cond(sick, "Ready") is None  # nothing else touched
        await MachineSetReconciler(fake, rng=random.Random(3)).reconcile(Request(NS, "ms"))
        names = {m["metadata"]["name"] for m in await machines(fake)}
        assert sick["metadata"]["name"] not in names and len(names) == 3


async def test_too_many_unhealthy_refuses_remediation() -> None:
    fake = await capi_fake()
    await setup_machines(fake, 3)
    async with checker(fake) as r:
        await fake.create(mhc({"unhealthyLessThanOrEqualTo": 1}))
        await fake.delete("v1", "Node", "node-0")
        await fake.delete("v1", "Node", "node-1")
        await r.reconcile(Request(NS, "mhc"))
        found = await machines(fake)
        assert sorted(cond(m, "HealthCheckSucceeded") or "" for m in found) == [
            "False", "False", "True"]
        assert all(cond(m, "OwnerRemediated") is None for m in found)
        got = await fake.get(V1B2, "MachineHealthCheck", "mhc", NS)
        assert cond(got, "RemediationAllowed") == "False"
        allowed = next(c for c in got["status"]["conditions"] if c["type"] == "RemediationAllowed")
        assert allowed["reason"] == "TooManyUnhealthy"
        assert (got["status"]["currentHealthy"], got["status"]["remediationsAllowed"]) == (1, 0)


async def test_machines_without_nodes_wait_for_startup_timeout() -> None:
    fake = await capi_fake()
    await fake.create(machine_set("ms", 2))
    await MachineSetReconciler(fake).reconcile(Request(NS, "ms"))
    async with checker(fake) as r:
        await fake.create(mhc())
        result = await r.reconcile(Request(NS, "mhc"))
        assert result.requeue_after is not None and 0 < result.requeue_after <= 300
        assert all(cond(m, "HealthCheckSucceeded") == "True" for m in await machines(fake))


async def test_skip_remediation_annotation() -> None:
    fake = await capi_fake()
    found = await setup_machines(fake, 2)
    await fake.patch(V1B2, "Machine", found[0]["metadata"]["name"], {"metadata": {
        "annotations": {"cluster.x-k8s.io/skip-remediation": ""}}}, NS)
    node_name = found[0]["status"]["nodeRef"]["name"]
    await fake.delete("v1", "Node", node_name)
    async with checker(fake) as r:
        await fake.create(mhc())
        await r.reconcile(Request(NS, "mhc"))
        m = await fake.get(V1B2, "Machine", found[0]["metadata"]["name"], NS)
        assert cond(m, "HealthCheckSucceeded") == "False" and cond(m, "OwnerRemediated") is None
