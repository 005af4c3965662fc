"""The day-2 verbs on a Cluster the real controllers run (a MachineDeployment of 3 on the
in-memory provider, whose workload clusters are real API servers): ``get kubeconfig`` works
with kubectl, ``rollout restart`` replaces every Machine, ``rollout pause`` holds a template
change until ``resume``, ``delete cluster --wait`` returns when nothing is left; and the bad
input each of them must refuse clearly."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from tests.kube import Server, kubectl_binary
from tests.providers.harness import Env, capi, eventually, running
from tests.scenarios.conftest import (
    V2,
    converged,
    create_all,
    machine_deployment,
    machines,
    workload_cluster,
)

from shipyard.cli.day2 import delete, get
from shipyard.cli.rollout import rollout
from shipyard.client import Client

__all__ = ["capi"]


def invoke(server: Server, group: click.Group, *args: str) -> Result:
    return CliRunner().invoke(group, [*args, "--kubeconfig", str(server.kubeconfig)])


async def cli(server: Server, group: click.Group, *args: str) -> Result:
    return await asyncio.to_thread(invoke, server, group, *args)


@pytest.fixture
async def cluster(capi: Server, namespace: str) -> AsyncIterator[Env]:
    async with running(capi, namespace) as env:
        await create_all(env.kube, namespace, [*workload_cluster(),
                                               machine_deployment("md", 3)])
        await eventually(lambda: converged(env.kube, namespace, "md", 3), "3 machines")
        yield env


def uids(objs: list[dict[str, object]]) -> set[str]:
    return {str(o["metadata"]["uid"]) for o in objs}  # type: ignore[index]


async def test_get_kubeconfig_then_delete_and_wait(capi: Server, cluster: Env,
                                                   tmp_path: Path) -> None:
    ns = cluster.namespace
    result = await cli(capi, get, "kubeconfig", "c1", "-n", ns)
    assert result.exit_code == 0, result.output
    assert "kind: Config" in result.output or '"kind": "Config"' in result.output
    path = tmp_path / "c1.kubeconfig"
    path.write_text(result.output)
    nodes = await asyncio.to_thread(
        subprocess.run, [str(kubectl_binary("1.33")), "--kubeconfig", str(path), "get",
                         "nodes", "-o", "name"], capture_output=True, text=True, timeout=60)
    assert nodes.returncode == 0, nodes.stderr
    names = {m["status"]["nodeRef"]["name"] for m in await machines(cluster.kube, ns, "md")}
    assert set(nodes.stdout.split()) == {f"node/{n}" for n in names}

    result = await cli(capi, delete, "cluster", "c1", "-n", ns, "--wait", "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f'Cluster "{ns}/c1" deleting'
    assert result.output.splitlines()[-1] == f'Cluster "{ns}/c1" deleted'
    assert "waiting for" in result.output and "Machine" in result.output
    for kind in ("Cluster", "MachineDeployment", "MachineSet", "Machine"):
        assert (await cluster.kube.list(V2, kind, ns))["items"] == [], kind
    secrets = await cluster.kube.list("v1", "Secret", ns,
                                      label_selector="cluster.x-k8s.io/cluster-name=c1")
    assert secrets["items"] == []

    gone = await cli(capi, delete, "cluster", "c1", "-n", ns)
    assert gone.exit_code == 1 and f'Cluster "c1" not found in namespace "{ns}"' in gone.output


async def test_rollout_restart_pause_and_resume(capi: Server, cluster: Env) -> None:
    ns, kube = cluster.namespace, cluster.kube
    first = await machines(kube, ns, "md")
    (old_set,) = (await kube.list(V2, "MachineSet", ns))["items"]

    # rollout.after and creation timestamps have one-second resolution, and a restart only
    # replaces what was created before it: a set created in the same second as the restart is
    # (as upstream) not older than it.
    await asyncio.sleep(1.1)
    result = await cli(capi, rollout, "restart", "machinedeployment/md", "-n", ns)
    assert result.exit_code == 0, result.output
    assert result.output == "machinedeployment/md restarted\n"
    md = await kube.get(V2, "MachineDeployment", "md", ns)
    assert md["spec"]["rollout"]["after"].endswith("Z")

    async def all_replaced() -> list[dict[str, object]] | None:
        now = await converged(kube, ns, "md", 3)
        return now if now and not uids(now) & uids(first) else None

    replaced = await eventually(all_replaced, "every Machine replaced", timeout=40)

    async def one_set() -> list[dict[str, object]] | None:
        sets: list[dict[str, object]] = (await kube.list(V2, "MachineSet", ns))["items"]
        return sets if len(sets) == 1 else None  # the emptied old set goes a moment later

    (new_set,) = await eventually(one_set, "the old MachineSet deleted", timeout=20)
    assert new_set["metadata"]["uid"] != old_set["metadata"]["uid"]

    # Paused: a template change makes no new MachineSet and replaces nothing until resumed.
    result = await cli(capi, rollout, "pause", "md/md", "-n", ns)
    assert result.exit_code == 0 and result.output == "machinedeployment/md paused\n"
    again = await cli(capi, rollout, "pause", "machinedeployment/md", "-n", ns)
    assert again.exit_code == 1
    assert "MachineDeployment is already paused: machinedeployment/md" in again.output
    refused = await cli(capi, rollout, "restart", "machinedeployment/md", "-n", ns)
    assert refused.exit_code == 1
    assert "can't restart paused MachineDeployment (run rollout resume first)" in refused.output
    await kube.patch(V2, "MachineDeployment", "md",
                     {"spec": {"template": {"spec": {"version": "v1.34.0"}}}}, ns)
    await asyncio.sleep(1.5)  # give a (wrong) rollout the chance to start
    sets = (await kube.list(V2, "MachineSet", ns))["items"]
    assert [s["metadata"]["uid"] for s in sets] == [new_set["metadata"]["uid"]]
    assert uids(await machines(kube, ns, "md")) == uids(replaced)

    result = await cli(capi, rollout, "resume", "machinedeployment/md", "-n", ns)
    assert result.exit_code == 0 and result.output == "machinedeployment/md resumed\n"
    await eventually(lambda: converged(kube, ns, "md", 3, "v1.34.0"),
                     "the held rollout to finish after resume", timeout=40)
    not_paused = await cli(capi, rollout, "resume", "machinedeployment/md", "-n", ns)
    assert not_paused.exit_code == 1
    assert "MachineDeployment is not currently paused: machinedeployment/md" in not_paused.output


async def test_bad_input(capi: Server, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    result = await cli(capi, get, "kubeconfig", "nope", "-n", ns)
    assert result.exit_code == 1 and f'Cluster "nope" not found in namespace "{ns}"' \
        in result.output
    # A Cluster whose control plane never came up has no kubeconfig yet (no controllers run).
    await asyncio.to_thread(capi.kubectl, "apply", "-n", ns, "-f", "-", stdin=(
        "apiVersion: cluster.x-k8s.io/v1beta2\nkind: Cluster\nmetadata: {name: early}\n"
        "spec:\n  infrastructureRef:\n    apiGroup: infrastructure.cluster.x-k8s.io\n"
        "    kind: InMemoryCluster\n    name: early\n"))
    result = await cli(capi, get, "kubeconfig", "early", "-n", ns)
    assert result.exit_code == 1 and f'Secret "{ns}/early-kubeconfig" not found' \
        in result.output

    result = await cli(capi, rollout, "restart", "deployment/md", "-n", ns)
    assert result.exit_code == 1
    assert 'Invalid resource type "deployment", valid values are ' \
        "[machinedeployment kubeadmcontrolplane]" in result.output
    result = await cli(capi, rollout, "pause", "machinedeployment", "-n", ns)
    assert result.exit_code == 2 and "expected <kind>/<name>" in result.output
    result = await cli(capi, rollout, "pause", "machinedeployment/ghost", "-n", ns)
    assert result.exit_code == 1
    assert f'MachineDeployment "ghost" not found in namespace "{ns}"' in result.output

    result = await cli(capi, delete, "cluster", "ghost", "-n", ns)
    assert result.exit_code == 1 and 'Cluster "ghost" not found' in result.output
    missing = CliRunner().invoke(get, ["kubeconfig", "c1", "--kubeconfig",
                                       str(tmp_path / "absent")])
    assert missing.exit_code == 1 and "does not exist" in missing.output


async def test_rollout_of_a_kubeadm_control_plane(capi: Server, namespace: str) -> None:
    from tests.providers.harness import install_crd

    from shipyard.bootstrap.kubeadm import types as kubeadm_types
    from shipyard.controlplane.kubeadm import types as kcp_types

    api = capi.client()
    for manifest in [*kubeadm_types.crd_manifests(), *kcp_types.crd_manifests()]:
        install_crd(api, manifest)
    api.pool.clear()
    kcp = {"apiVersion": kcp_types.API_VERSION, "kind": "KubeadmControlPlane",
           "metadata": {"name": "cp", "namespace": namespace},
           "spec": {"replicas": 1, "version": "v1.33.0",
                    "machineTemplate": {"spec": {"infrastructureRef": {
                        "apiGroup": "infrastructure.cluster.x-k8s.io",
                        "kind": "InMemoryMachineTemplate", "name": "cp"}}},
                    "kubeadmConfigSpec": {"clusterConfiguration": {"apiServer": {}}}}}
    async with Client.from_kubeconfig(capi.kubeconfig) as kube:
        await kube.create(kcp)

        result = await cli(capi, rollout, "restart", "kubeadmcontrolplane/cp", "-n", namespace)
        assert result.exit_code == 0 and result.output == "kubeadmcontrolplane/cp restarted\n"
        got = await kube.get(kcp_types.API_VERSION, "KubeadmControlPlane", "cp", namespace)
        assert got["spec"]["rollout"]["after"].endswith("Z")

        result = await cli(capi, rollout, "pause", "kcp/cp", "-n", namespace)
        assert result.exit_code == 0, result.output
        got = await kube.get(kcp_types.API_VERSION, "KubeadmControlPlane", "cp", namespace)
        assert got["metadata"]["annotations"]["cluster.x-k8s.io/paused"] == "true"
        refused = await cli(capi, rollout, "restart", "kubeadmcontrolplane/cp", "-n", namespace)
        assert refused.exit_code == 1
        assert "can't restart paused KubeadmControlPlane" in refused.output

        result = await cli(capi, rollout, "resume", "kubeadmcontrolplane/cp", "-n", namespace)
        assert result.exit_code == 0, result.output
        got = await kube.get(kcp_types.API_VERSION, "KubeadmControlPlane", "cp", namespace)
        assert "cluster.x-k8s.io/paused" not in (got["metadata"].get("annotations") or {})


def test_the_verbs_are_on_the_shipyard_command() -> None:
    from shipyard.cli.main import main

    for verb in (["describe", "cluster"], ["get", "kubeconfig"], ["delete", "cluster"],
                 ["rollout", "restart"], ["rollout", "pause"], ["rollout", "resume"]):
        result = CliRunner().invoke(main, [*verb, "--help"])
        assert result.exit_code == 0, result.output
        assert "--kubeconfig" in result.output
