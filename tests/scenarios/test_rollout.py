"""Changing a MachineDeployment's template on the real server: a RollingUpdate with maxSurge=1,
maxUnavailable=0 watched event by event (available machines never drop below replicas), an
OnDelete rollout that replaces nothing until a machine is deleted by hand, and pausing (the
Cluster's spec.paused, the cluster.x-k8s.io/paused annotation) holding a scale back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shipyard.client import Object
from shipyard.providers.inmemory import types
from tests.providers.harness import Env
from tests.scenarios.conftest import (
    V2,
    MachineWatcher,
    available,
    condition,
    converged,
    create_all,
    eventually,
    machine_deployment,
    machines,
    workload_cluster,
)

SURGE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


@pytest.mark.timeout(60)
async def test_rolling_update_never_drops_below_replicas_available(env: Env) -> None:
    ns = env.namespace
    await create_all(env.kube, ns, [*workload_cluster(),
                                    machine_deployment("md", 3, strategy=SURGE)])
    first = await eventually(lambda: converged(env.kube, ns, "md", 3), "3 machines", timeout=30)
    await env.create({"apiVersion": types.API_VERSION, "kind": "InMemoryMachineTemplate",
                      "metadata": {"name": "workers-v2"}, "spec": {"template": {"spec": {}}}})
    watcher = MachineWatcher(env.kube, ns)
    await watcher.start()
    try:
        await env.kube.patch(V2, "MachineDeployment", "md", {"spec": {"template": {"spec": {
            "version": "v1.34.0",
            "infrastructureRef": {"apiGroup": types.GROUP, "kind": "InMemoryMachineTemplate",
                                  "name": "workers-v2"}}}}}, ns)
        final = await eventually(lambda: converged(env.kube, ns, "md", 3, "v1.34.0"),
                                 "the rollout to finish", timeout=40)
    finally:
        watcher.stop()
    assert watcher.events > 6  # the watcher saw the rollout happen, not just its end
    assert watcher.lowest_available == 3, "available machines dropped below replicas"
    assert watcher.highest_total <= 3 + 1, "more machines than replicas + maxSurge"
    assert not {m["metadata"]["uid"] for m in first} & {m["metadata"]["uid"] for m in final}
    for m in final:
        infra = await env.kube.get(types.API_VERSION, "InMemoryMachine",
                                   m["spec"]["infrastructureRef"]["name"], ns)
        assert infra["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-name"] \
            == "workers-v2"
    md = await env.kube.get(V2, "MachineDeployment", "md", ns)
    assert md["metadata"]["annotations"]["machinedeployment.clusters.x-k8s.io/revision"] == "2"
    sets = (await env.kube.list(V2, "MachineSet", ns))["items"]
    replicas = sorted(ms["spec"]["replicas"] for ms in sets)
    assert replicas[-1] == 3 and sum(replicas) == 3, replicas


@pytest.mark.timeout(60)
async def test_on_delete_replaces_only_machines_deleted_by_hand(env: Env) -> None:
    ns = env.namespace
    await create_all(env.kube, ns, [*workload_cluster(),
                                    machine_deployment("md", 3, strategy={"type": "OnDelete"})])
    first = await eventually(lambda: converged(env.kube, ns, "md", 3), "3 machines", timeout=30)
    await env.kube.patch(V2, "MachineDeployment", "md",
                         {"spec": {"template": {"spec": {"version": "v1.34.0"}}}}, ns)

    async def new_set_created() -> list[Object] | None:
        sets = (await env.kube.list(V2, "MachineSet", ns))["items"]
        md = await env.kube.get(V2, "MachineDeployment", "md", ns)
        status = md.get("status") or {}
        if (len(sets) == 2 and status.get("observedGeneration") == md["metadata"]["generation"]
                and status.get("upToDateReplicas") == 0):
            return list(sets)
        return None

    await eventually(new_set_created, "a new MachineSet for the new template", timeout=20)
    await asyncio.sleep(1.0)  # give a (wrong) rollout the chance to start
    now = await machines(env.kube, ns, "md")
    assert {m["metadata"]["uid"] for m in now} == {m["metadata"]["uid"] for m in first}
    assert all(available(m) and m["spec"]["version"] == "v1.33.0" for m in now)

    victim = first[0]["metadata"]["name"]
    await env.kube.delete(V2, "Machine", victim, ns)

    async def one_replaced() -> list[Object] | None:
        found = await machines(env.kube, ns, "md")
        names = {m["metadata"]["name"] for m in found}
        if (len(found) == 3 and victim not in names and all(available(m) for m in found)
                and sum(m["spec"]["version"] == "v1.34.0" for m in found) == 1):
            return found
        return None

    after = await eventually(one_replaced, "the deleted machine replaced at v1.34.0", timeout=30)
    assert {m["metadata"]["uid"] for m in first[1:]} <= {m["metadata"]["uid"] for m in after}
    for m in first[1:]:
        await env.kube.delete(V2, "Machine", m["metadata"]["name"], ns)
    await eventually(lambda: converged(env.kube, ns, "md", 3, "v1.34.0"),
                     "all machines replaced", timeout=40)


async def _paused_condition(env: Env, kind: str, name: str) -> bool:
    obj = await env.kube.get(V2, kind, name, env.namespace)
    return condition(obj, "Paused").get("status") == "True"


@pytest.mark.timeout(60)
async def test_pause_holds_a_scale_until_unpaused(env: Env) -> None:
    ns = env.namespace
    await create_all(env.kube, ns, [*workload_cluster(), machine_deployment("md", 2)])
    await eventually(lambda: converged(env.kube, ns, "md", 2), "2 machines", timeout=30)
    (ms,) = (await env.kube.list(V2, "MachineSet", ns))["items"]
    ms_name = ms["metadata"]["name"]

    async def held(replicas: int) -> None:
        await env.kube.patch(V2, "MachineDeployment", "md", {"spec": {"replicas": replicas}},
                             ns, subresource="scale")
        await asyncio.sleep(1.0)  # give a (wrong) reconcile the chance to act
        got = await env.kube.get(V2, "MachineSet", ms_name, ns)
        assert got["spec"]["replicas"] == 2
        assert len(await machines(env.kube, ns, "md")) == 2

    # The Cluster's spec.paused pauses every object of the cluster.
    await env.kube.patch(V2, "Cluster", "c1", {"spec": {"paused": True}}, ns)
    await eventually(lambda: _paused_condition(env, "MachineDeployment", "md"), "MD paused")
    await eventually(lambda: _paused_condition(env, "MachineSet", ms_name), "MS paused")
    await held(4)
    await env.kube.patch(V2, "Cluster", "c1", {"spec": {"paused": None}}, ns)
    await eventually(lambda: converged(env.kube, ns, "md", 4), "4 machines", timeout=30)
    md = await env.kube.get(V2, "MachineDeployment", "md", ns)
    assert condition(md, "Paused")["status"] == "False"

    # The annotation pauses one object: the MachineDeployment.
    annotation: dict[str, Any] = {"metadata": {"annotations": {
        "cluster.x-k8s.io/paused": ""}}}
    await env.kube.patch(V2, "MachineDeployment", "md", annotation, ns)
    await eventually(lambda: _paused_condition(env, "MachineDeployment", "md"), "MD paused")
    await env.kube.patch(V2, "MachineDeployment", "md", {"spec": {"replicas": 1}}, ns,
                         subresource="scale")
    await asyncio.sleep(1.0)
    got = await env.kube.get(V2, "MachineSet", ms_name, ns)
    assert got["spec"]["replicas"] == 4
    assert len(await machines(env.kube, ns, "md")) == 4
    await env.kube.patch(V2, "MachineDeployment", "md", {"metadata": {"annotations": {
        "cluster.x-k8s.io/paused": None}}}, ns)
    await eventually(lambda: converged(env.kube, ns, "md", 1), "1 machine", timeout=30)
