"""The in-memory machine "boots" for its boot delay before its Node appears, and the InMemory
infrastructure objects follow the v1beta1 contract fields Cluster API reads."""

from __future__ import annotations

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


async def test_a_machine_boots_only_after_its_boot_delay(env: Env) -> None:
    await env.create(infra_cluster("d1"))
    await env.create(cluster("d1"))
    await env.create(infra_machine("d1-m0", boot_delay=3600))
    await env.create(machine("d1-m0", "d1", control_plane=True))

    async def booting() -> Object | None:
        infra = await env.get(INFRA, "InMemoryMachine", "d1-m0")
        return infra if condition(infra, "Ready").get("reason") == "Booting" else None

    infra = await eventually(booting, "InMemoryMachine Booting")
    assert infra["spec"]["providerID"] == f"inmemory://{env.namespace}/d1/d1-m0"
    assert not (infra.get("status") or {}).get("ready")
    m = await env.get(V2, "Machine", "d1-m0")
    assert m is not None and m["status"]["phase"] == "Provisioning"
    assert "nodeRef" not in m["status"]
    workload = await env.workload_client("d1")
    try:
        assert (await workload.list("v1", "Node"))["items"] == []
    finally:
        await workload.close()

    await env.kube.patch(INFRA, "InMemoryMachine", "d1-m0", {"spec": {"bootDelaySeconds": 0}},
                         env.namespace)

    async def running() -> Object | None:
        m = await env.get(V2, "Machine", "d1-m0")
        return m if m and m["status"].get("phase") == "Running" else None

    m = await eventually(running, "Machine Running once booted")
    booted = await env.get(INFRA, "InMemoryMachine", "d1-m0")
    assert booted is not None
    assert booted["status"]["ready"] is True
    assert booted["status"]["initialization"] == {"provisioned": True}
    assert booted["metadata"]["finalizers"] == ["inmemorymachine.infrastructure.cluster.x-k8s.io"]
    assert m["spec"]["providerID"] == booted["spec"]["providerID"]


async def test_failure_domains_reach_the_cluster(env: Env) -> None:
    infra_c = infra_cluster("f1")
    infra_c["spec"]["failureDomains"] = ["zone-b", "zone-a"]
    await env.create(infra_c)
    await env.create(cluster("f1"))

    async def with_domains() -> Object | None:
        c = await env.get(V2, "Cluster", "f1")
        return c if c and (c.get("status") or {}).get("failureDomains") else None

    c = await eventually(with_domains, "Cluster failureDomains")
    assert c["status"]["failureDomains"] == [{"name": "zone-a", "controlPlane": True},
                                             {"name": "zone-b", "controlPlane": True}]
    infra = await env.get(INFRA, "InMemoryCluster", "f1")
    assert infra is not None
    assert infra["status"]["failureDomains"] == {"zone-a": {"controlPlane": True},
                                                 "zone-b": {"controlPlane": True}}
    assert infra["metadata"]["finalizers"] == ["inmemorycluster.infrastructure.cluster.x-k8s.io"]
