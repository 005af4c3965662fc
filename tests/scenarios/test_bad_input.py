"""Bad input on the real server: what the schema refuses (negative replicas, unknown strategies,
and upstream's webhook checks the CRDs carry as CEL: a selector that does not match the
template, a rollout parameter that is not an int or a percentage) is refused with a clear
message; what only the controllers can judge (an unknown infrastructure kind, a missing
template) is reported on conditions, and the controllers keep serving everything else: a good
MachineDeployment in the same namespace converges alongside the bad ones."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from shipyard.apimachinery.errors import Invalid
from shipyard.client import Object
from tests.kube import Server
from tests.providers.harness import Env
from tests.scenarios.conftest import (
    V2,
    MachineWatcher,
    condition,
    converged,
    create_all,
    eventually,
    machine_deployment,
    machines,
    workload_cluster,
)


@pytest.mark.timeout(60)
async def test_schema_refuses_negative_replicas_and_unknown_strategies(
        env: Env, capi: Server) -> None:
    ns = env.namespace
    with pytest.raises(Invalid) as negative:
        await env.create(machine_deployment("neg", -1))
    assert "spec.replicas" in str(negative.value)
    assert "greater than or equal to 0" in str(negative.value)
    with pytest.raises(Invalid) as recreate:
        await env.create(machine_deployment("recreate", 1, strategy={"type": "Recreate"}))
    assert 'Unsupported value: "Recreate"' in str(recreate.value)
    # kubectl shows the same message to a user.
    ms: Object = machine_deployment("neg", 1)
    ms.update(kind="MachineSet")
    ms["metadata"]["namespace"] = ns
    ms["spec"]["replicas"] = -3
    ms["spec"].pop("rollout", None)
    out = await asyncio.to_thread(capi.kubectl, "apply", "-f", "-", stdin=json.dumps(ms),
                                  check=False)
    assert out.returncode != 0
    assert "spec.replicas" in out.stderr and "-3" in out.stderr, out.stderr


@pytest.mark.timeout(60)
async def test_webhook_checks_refuse_at_admission(env: Env) -> None:
    mismatch = machine_deployment("mismatch", 1)
    mismatch["spec"]["template"]["metadata"]["labels"]["pool"] = "elsewhere"
    with pytest.raises(Invalid) as refused:
        await env.create(mismatch)
    assert "spec.template.metadata.labels" in str(refused.value)
    assert "must match spec.selector" in str(refused.value)
    surge = machine_deployment("surge", 1, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "150x", "maxUnavailable": 0}})
    with pytest.raises(Invalid) as refused:
        await env.create(surge)
    assert "maxSurge" in str(refused.value), refused.value
    for name in ("mismatch", "surge"):
        assert await env.get(V2, "MachineDeployment", name) is None


@pytest.mark.timeout(60)
async def test_bad_deployments_are_reported_and_a_good_one_still_converges(env: Env) -> None:
    ns = env.namespace
    unknown = machine_deployment("unknown", 1)
    unknown["spec"]["template"]["spec"]["infrastructureRef"]["kind"] = "NoSuchMachineTemplate"
    missing = machine_deployment("missing", 1, infra_template="nope")
    await create_all(env.kube, ns, [*workload_cluster(), unknown, missing,
                                    machine_deployment("good", 2)])

    async def reported(name: str, type_: str, text: str) -> dict[str, Any] | None:
        md = await env.kube.get(V2, "MachineDeployment", name, ns)
        found = condition(md, type_)
        return found if text in str(found.get("message")) else None

    found = await eventually(lambda: reported(
        "unknown", "ScalingUp", "NoSuchMachineTemplate"), "the unknown kind reported")
    assert "is blocked because" in found["message"], found
    found = await eventually(lambda: reported("missing", "ScalingUp", '"nope" not found'),
                             "the missing template reported")
    assert found["status"] == "True" and "is blocked because" in found["message"], found

    await eventually(lambda: converged(env.kube, ns, "good", 2), "the good MD converges",
                     timeout=30)
    for name in ("unknown", "missing"):
        assert await machines(env.kube, ns, name) == [], name
    # The MachineSet of a missing template says why it is stuck, too.
    sets = (await env.kube.list(V2, "MachineSet", ns, label_selector=(
        "cluster.x-k8s.io/deployment-name=missing")))["items"]
    assert len(sets) == 1 and "is blocked because" in condition(sets[0], "ScalingUp")[
        "message"]

    # Fixing an input is enough: the controllers were never wedged.
    await env.create({"apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                      "kind": "InMemoryMachineTemplate", "metadata": {"name": "nope"},
                      "spec": {"template": {"spec": {}}}})
    # Templates are not watched (as upstream): the set retries on its error backoff, which a
    # change to the set itself cuts short.
    await env.kube.patch(V2, "MachineSet", sets[0]["metadata"]["name"], {"metadata": {
        "annotations": {"example.com/nudge": "1"}}}, ns)
    await eventually(lambda: converged(env.kube, ns, "missing", 1), "missing fixed",
                     timeout=40)


@pytest.mark.timeout(60)
async def test_zero_surge_and_zero_unavailable_still_progresses(env: Env) -> None:
    """Upstream's webhook accepts maxSurge=0/maxUnavailable=0 and its fenceposts make
    maxUnavailable 1, so such a rollout replaces one machine at a time."""
    ns = env.namespace
    zero = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
    await create_all(env.kube, ns, [*workload_cluster(), machine_deployment("md", 2,
                                                                            strategy=zero)])
    await eventually(lambda: converged(env.kube, ns, "md", 2), "2 machines", timeout=30)
    watcher = MachineWatcher(env.kube, ns)
    await watcher.start()
    try:
        await env.kube.patch(V2, "MachineDeployment", "md",
                             {"spec": {"template": {"spec": {"version": "v1.34.0"}}}}, ns)
        await eventually(lambda: converged(env.kube, ns, "md", 2, "v1.34.0"), "rolled out",
                         timeout=40)
    finally:
        watcher.stop()
    assert watcher.highest_total == 2, "a machine was surged with maxSurge=0"
    assert watcher.lowest_available == 1, "not one machine at a time"
