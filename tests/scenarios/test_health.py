"""MachineHealthCheck on the real server: a Node turned NotReady in the workload cluster
(reached through the `<cluster>-kubeconfig` Secret, as a user would) gets its Machine replaced,
but not while more Machines are unhealthy than `triggerIf.unhealthyLessThanOrEqualTo` allows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from shipyard.client import Client, Object
from tests.providers.harness import Env
from tests.scenarios.conftest import (
    V2,
    available,
    condition,
    converged,
    create_all,
    eventually,
    machine_deployment,
    machines,
    workload_cluster,
)


async def set_node_ready(workload: Client, node: str, status: str) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    got = await workload.get("v1", "Node", node)
    conds = [c for c in (got.get("status") or {}).get("conditions") or []
             if c.get("type") != "Ready"]
    conds.append({"type": "Ready", "status": status, "reason": "ScenarioTest",
                  "message": f"set {status} by the test", "lastHeartbeatTime": now,
                  "lastTransitionTime": now})
    got.setdefault("status", {})["conditions"] = conds
    await workload.update_status(got)


@pytest.mark.timeout(60)
async def test_health_check_refuses_too_many_then_remediates_one(env: Env) -> None:
    ns = env.namespace
    await create_all(env.kube, ns, [*workload_cluster(), machine_deployment("md", 3)])
    first = await eventually(lambda: converged(env.kube, ns, "md", 3), "3 machines", timeout=30)
    await env.create({"apiVersion": V2, "kind": "MachineHealthCheck",
                      "metadata": {"name": "mhc"},
                      "spec": {"clusterName": "c1", "selector": {"matchLabels": {"pool": "md"}},
                               "checks": {"unhealthyNodeConditions": [
                                   {"type": "Ready", "status": "False", "timeoutSeconds": 1}]},
                               "remediation": {"triggerIf": {
                                   "unhealthyLessThanOrEqualTo": 1}}}})

    async def mhc_status(healthy: int, allowed: str) -> Object | None:
        mhc = await env.kube.get(V2, "MachineHealthCheck", "mhc", ns)
        status = mhc.get("status") or {}
        if (status.get("expectedMachines") == 3 and status.get("currentHealthy") == healthy
                and condition(mhc, "RemediationAllowed").get("status") == allowed):
            return mhc
        return None

    await eventually(lambda: mhc_status(3, "True"), "3 healthy machines", timeout=20)
    a, b = first[0], first[1]
    workload = await env.workload_client("c1")
    try:
        # Two unhealthy out of three: more than the MHC allows; nothing is remediated.
        await set_node_ready(workload, a["status"]["nodeRef"]["name"], "False")
        await set_node_ready(workload, b["status"]["nodeRef"]["name"], "False")
        mhc = await eventually(lambda: mhc_status(1, "False"), "remediation refused",
                               timeout=20)
        refused = condition(mhc, "RemediationAllowed")
        assert refused["reason"] == "TooManyUnhealthy"
        assert "2" in refused["message"], refused
        assert mhc["status"]["remediationsAllowed"] == 0
        await asyncio.sleep(1.0)  # give a (wrong) remediation the chance to act
        now = await machines(env.kube, ns, "md")
        assert {m["metadata"]["uid"] for m in now} == {m["metadata"]["uid"] for m in first}
        assert not any(m["metadata"].get("deletionTimestamp") for m in now)
        for m in now:
            if m["metadata"]["name"] in (a["metadata"]["name"], b["metadata"]["name"]):
                assert condition(m, "HealthCheckSucceeded").get("status") == "False"
                assert condition(m, "OwnerRemediated") == {}

        # One recovers: one unhealthy is within the limit, so that one is replaced.
        await set_node_ready(workload, a["status"]["nodeRef"]["name"], "True")
    finally:
        await workload.close()

    async def replaced() -> list[Object] | None:
        found = await machines(env.kube, ns, "md")
        names = {m["metadata"]["name"] for m in found}
        if (len(found) == 3 and b["metadata"]["name"] not in names
                and a["metadata"]["name"] in names and all(available(m) for m in found)):
            return found
        return None

    await eventually(replaced, "the unhealthy machine replaced", timeout=30)
    await eventually(lambda: mhc_status(3, "True"), "3 healthy machines again", timeout=20)
