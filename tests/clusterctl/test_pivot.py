"""The pivot end to end: a converged cluster (a control-plane Machine and a MachineDeployment of
two workers on the in-memory provider) is moved by `shipyard move` from the session's API
server to a second API server, with the source's controllers running through the move or the
target's; the target's controllers then take it over and keep the same machines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from shipyard.cli.move import move as move_command
from shipyard.client import Client, Object
from shipyard.providers.inmemory import types
from tests.clusterctl.conftest import controllers
from tests.kube import Server
from tests.providers.harness import condition, eventually
from tests.scenarios.conftest import (
    BOOTSTRAP,
    V2,
    converged,
    create_all,
    machine_deployment,
    workload_cluster,
)

KINDS = [(V2, "Cluster"), (V2, "MachineDeployment"), (V2, "MachineSet"), (V2, "Machine"),
         (types.API_VERSION, "InMemoryCluster"), (types.API_VERSION, "InMemoryMachine"),
         (types.API_VERSION, "InMemoryMachineTemplate"),
         (BOOTSTRAP, "InMemoryBootstrapConfig"), (BOOTSTRAP, "InMemoryBootstrapConfigTemplate"),
         ("v1", "Secret")]


def control_plane_machine() -> list[Object]:
    """A stand-alone control-plane Machine: with no controlPlaneRef, the Cluster's control
    plane is initialized once it has a Node. Its bootstrap data Secret has no owner, only the
    cluster-name label, which is what ties it to the cluster for the move."""
    return [{"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "bootstrap-data",
                          "labels": {"cluster.x-k8s.io/cluster-name": "c1"}},
             "stringData": {"value": "#cloud-config"}},
            {"apiVersion": types.API_VERSION, "kind": "InMemoryMachine",
             "metadata": {"name": "cp-0"}, "spec": {}},
            {"apiVersion": V2, "kind": "Machine",
             "metadata": {"name": "cp-0", "labels": {"cluster.x-k8s.io/control-plane": ""}},
             "spec": {"clusterName": "c1", "version": "v1.33.0",
                      "bootstrap": {"dataSecretName": "bootstrap-data"},
                      "infrastructureRef": {"apiGroup": types.GROUP, "kind": "InMemoryMachine",
                                            "name": "cp-0"}}}]


async def snapshot(kube: Client, ns: str) -> dict[tuple[str, str], Object]:
    out: dict[tuple[str, str], Object] = {}
    for api_version, kind in KINDS:
        for obj in (await kube.list(api_version, kind, ns))["items"]:
            out[(kind, obj["metadata"]["name"])] = obj
    return out


async def converge_and_pause(kube: Client, ns: str) -> dict[tuple[str, str], Object]:
    """Create the cluster, wait until it runs, pause it and wait until every controller says
    so (the status copied to the target then says Paused=True: only the target's controllers
    can turn that False); returns the objects."""
    objs = workload_cluster()
    # The templates: one owned by the Cluster (as upstream's MachineDeployment controller makes
    # it), one carrying the move label.
    objs[3]["metadata"]["labels"] = {"clusterctl.cluster.x-k8s.io/move": ""}
    await create_all(kube, ns, [*objs, *control_plane_machine(), machine_deployment("md", 2)])
    cluster = await kube.get(V2, "Cluster", "c1", ns)
    await kube.patch(types.API_VERSION, "InMemoryMachineTemplate", "workers", {
        "metadata": {"ownerReferences": [{"apiVersion": V2, "kind": "Cluster", "name": "c1",
                                          "uid": cluster["metadata"]["uid"]}]}}, ns)

    async def ready() -> bool:
        c = await kube.get(V2, "Cluster", "c1", ns)
        cp = await kube.get(V2, "Machine", "cp-0", ns)
        return bool(await converged(kube, ns, "md", 2)
                    and condition(c, "ControlPlaneInitialized").get("status") == "True"
                    and (cp.get("status") or {}).get("nodeRef"))

    await eventually(ready, "cluster converged on the source", timeout=60)
    await kube.patch(V2, "Cluster", "c1", {"spec": {"paused": True}}, ns)

    async def all_paused() -> bool:
        objs = await snapshot(kube, ns)
        return all(condition(o, "Paused").get("status") == "True"
                   for (kind, _), o in objs.items()
                   if kind in ("Cluster", "MachineDeployment", "MachineSet", "Machine"))

    await eventually(all_paused, "the source's controllers report Paused", timeout=30)
    before = await snapshot(kube, ns)
    assert len([k for k in before if k[0] == "Machine"]) == 3
    assert len([k for k in before if k[0] == "InMemoryBootstrapConfig"]) == 2
    assert {("Secret", "c1-kubeconfig"), ("Secret", "bootstrap-data"),
            ("InMemoryMachineTemplate", "workers"),
            ("InMemoryBootstrapConfigTemplate", "workers"),
            ("InMemoryCluster", "c1")} <= set(before)
    return before


async def move(source: Server, target: Server, ns: str) -> None:
    result = await asyncio.to_thread(CliRunner().invoke, move_command, [
        "--kubeconfig", str(source.kubeconfig), "--to-kubeconfig", str(target.kubeconfig),
        "-n", ns])
    assert result.exit_code == 0, result.output


async def assert_moved(dst: Client, ns: str, before: dict[tuple[str, str], Object]) -> None:
    """Every object on the target, with a new UID, owner references to the target's owners,
    status kept, the Cluster unpaused."""
    after = await snapshot(dst, ns)
    assert sorted(after) == sorted(before)
    uids = {o["metadata"]["uid"]: key for key, o in after.items()}
    for key, obj in after.items():
        assert obj["metadata"]["uid"] != before[key]["metadata"]["uid"], key
        refs = obj["metadata"].get("ownerReferences") or []
        assert len(refs) == len(before[key]["metadata"].get("ownerReferences") or []), key
        for ref in refs:
            assert uids.get(ref["uid"]) == (ref["kind"], ref["name"]), (key, ref)
    for key in [k for k in before if k[0] == "Machine"]:
        assert after[key]["status"]["nodeRef"] == before[key]["status"]["nodeRef"]
    moved_cluster = after[("Cluster", "c1")]
    assert not moved_cluster["spec"].get("paused")
    assert moved_cluster["status"]["initialization"] == \
        before[("Cluster", "c1")]["status"]["initialization"]


async def assert_kept(kube: Client, ns: str, before: dict[tuple[str, str], Object]) -> None:
    """The target's controllers reconciled everything unpaused and kept the same machines."""

    async def reconciled() -> bool:
        c = await kube.get(V2, "Cluster", "c1", ns)
        found = [o for (kind, _), o in (await snapshot(kube, ns)).items()
                 if kind in ("MachineDeployment", "MachineSet", "Machine")]
        return (condition(c, "Paused").get("status") == "False"
                and all(condition(m, "Paused").get("status") == "False" for m in found)
                and bool(await converged(kube, ns, "md", 2)))

    await eventually(reconciled, "the target's controllers took the cluster over", timeout=60)
    found = (await kube.list(V2, "Machine", ns))["items"]
    assert sorted(m["metadata"]["name"] for m in found) == \
        sorted(k[1] for k in before if k[0] == "Machine")
    assert all(condition(m, "Available").get("status") == "True" for m in found)
    assert not any(m["metadata"].get("deletionTimestamp") for m in found)
    sets = (await kube.list(V2, "MachineSet", ns))["items"]
    assert [s["metadata"]["name"] for s in sets] == \
        [k[1] for k in before if k[0] == "MachineSet"]


@pytest.mark.timeout(120)
async def test_pivot_with_the_source_controllers_running(
        capi: Server, target: Server, namespace: str, tmp_path: Path) -> None:
    """The source's controllers run through the move; the target's start afterwards."""
    workloads = tmp_path / "workloads"
    async with controllers(capi, namespace, workloads) as src:
        before = await converge_and_pause(src.kube, namespace)
        await move(capi, target, namespace)
        left = await snapshot(src.kube, namespace)
    assert left == {}, sorted(left)
    async with Client.from_kubeconfig(target.kubeconfig) as dst:
        await assert_moved(dst, namespace, before)
    async with controllers(target, namespace, workloads) as dst_env:
        await assert_kept(dst_env.kube, namespace, before)


@pytest.mark.timeout(120)
async def test_pivot_into_running_target_controllers(
        capi: Server, target: Server, namespace: str, tmp_path: Path) -> None:
    """As `clusterctl init` leaves it: the target's controllers run before the objects arrive
    (and write to them while they are paused); the source's are gone."""
    workloads = tmp_path / "workloads"
    async with controllers(capi, namespace, workloads) as src:
        before = await converge_and_pause(src.kube, namespace)
    async with controllers(target, namespace, workloads) as dst_env:
        await move(capi, target, namespace)
        async with Client.from_kubeconfig(capi.kubeconfig) as source:
            assert await snapshot(source, namespace) == {}
        await assert_moved(dst_env.kube, namespace, before)
        await assert_kept(dst_env.kube, namespace, before)
