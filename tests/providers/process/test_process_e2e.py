"""End to end on the process provider: quick-start shaped manifests (Cluster, ProcessCluster,
KubeadmControlPlane, MachineDeployment, ProcessMachineTemplate, KubeadmConfigTemplate) applied
with kubectl to the management API, with the core controllers, the kubeadm bootstrap and
control-plane providers and the process provider running, give a workload cluster whose
`<cluster>-kubeconfig` lets kubectl list one Ready Node per Machine with matching providerIDs;
deleting the Cluster leaves no machine process or file behind."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from shipyard.bootstrap.kubeadm import controller as kubeadm_bootstrap
from shipyard.bootstrap.kubeadm import types as kubeadm_types
from shipyard.client import Client
from shipyard.controllers import setup as core
from shipyard.controlplane.kubeadm import controller as kcp_controller
from shipyard.controlplane.kubeadm import types as kcp_types
from shipyard.providers.process import setup as process
from shipyard.providers.process import types
from tests.kube import Server
from tests.providers.harness import capi, eventually, install_crd

__all__ = ["capi"]

pytestmark = pytest.mark.slow

V2 = "cluster.x-k8s.io/v1beta2"


@pytest.fixture(scope="module")
def all_crds(capi: Server) -> Iterator[Server]:
    api = capi.client()
    for manifest in [*kubeadm_types.crd_manifests(), *kcp_types.crd_manifests(),
                     *types.crd_manifests()]:
        install_crd(api, manifest)
    yield capi
    api.pool.clear()


def quick_start(name: str, workers: int, control_plane: int = 1) -> list[dict[str, Any]]:
    infra = {"apiGroup": types.GROUP}
    return [
        {"apiVersion": V2, "kind": "Cluster", "metadata": {"name": name},
         "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}},
                  "infrastructureRef": {**infra, "kind": "ProcessCluster", "name": name},
                  "controlPlaneRef": {"apiGroup": kcp_types.GROUP,
                                      "kind": "KubeadmControlPlane",
                                      "name": f"{name}-control-plane"}}},
        {"apiVersion": types.API_VERSION, "kind": "ProcessCluster", "metadata": {"name": name},
         "spec": {}},
        {"apiVersion": kcp_types.API_VERSION, "kind": "KubeadmControlPlane",
         "metadata": {"name": f"{name}-control-plane"},
         "spec": {"replicas": control_plane, "version": "v1.33.0",
                  "machineTemplate": {"spec": {"infrastructureRef": {
                      **infra, "kind": "ProcessMachineTemplate",
                      "name": f"{name}-control-plane"}}},
                  "kubeadmConfigSpec": {}}},
        {"apiVersion": types.API_VERSION, "kind": "ProcessMachineTemplate",
         "metadata": {"name": f"{name}-control-plane"}, "spec": {"template": {"spec": {}}}},
        {"apiVersion": V2, "kind": "MachineDeployment", "metadata": {"name": f"{name}-md-0"},
         "spec": {"clusterName": name, "replicas": workers,
                  "selector": {"matchLabels": {"cluster.x-k8s.io/cluster-name": name}},
                  "template": {"metadata": {"labels": {"cluster.x-k8s.io/cluster-name": name}},
                               "spec": {
                      "clusterName": name, "version": "v1.33.0",
                      "bootstrap": {"configRef": {"apiGroup": kubeadm_types.GROUP,
                                                  "kind": "KubeadmConfigTemplate",
                                                  "name": f"{name}-md-0"}},
                      "infrastructureRef": {**infra, "kind": "ProcessMachineTemplate",
                                            "name": f"{name}-md-0"}}}}},
        {"apiVersion": types.API_VERSION, "kind": "ProcessMachineTemplate",
         "metadata": {"name": f"{name}-md-0"}, "spec": {"template": {"spec": {}}}},
        {"apiVersion": kubeadm_types.API_VERSION, "kind": "KubeadmConfigTemplate",
         "metadata": {"name": f"{name}-md-0"},
         "spec": {"template": {"spec": {"joinConfiguration": {"nodeRegistration": {}}}}}},
    ]


@pytest.fixture
async def controllers(all_crds: Server, namespace: str,
                      tmp_path: Path) -> AsyncIterator[process.ProcessProvider]:
    kube = Client.from_kubeconfig(all_crds.kubeconfig)
    options = core.Options()
    mgr = await core.build(kube, namespace=namespace, options=options,
                           metrics=__import__("shipyard.runtime", fromlist=["Metrics"]).Metrics(
                               CollectorRegistry()),
                           graceful_shutdown_timeout=5,
                           informer_options={"backoff_initial": 0.05})
    provider = await process.setup(mgr, process.ProcessOptions(
        data_dir=tmp_path / "process", address_prefix=f"127.{random.randint(100, 250)}"))
    bootstrap = await kubeadm_bootstrap.setup(mgr)
    kcp = await kcp_controller.setup(mgr)
    task = asyncio.create_task(mgr.run())
    try:
        yield provider
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await task
        for machine_dir in (tmp_path / "process" / "machines").glob("*/*"):
            # whatever a failed test left running
            await asyncio.to_thread(provider.supervisor.remove, machine_dir.parent.name,
                                    machine_dir.name)
        await kcp.aclose()
        await bootstrap.aclose()
        await options.aclose()
        await provider.aclose()
        await kube.close()


def diagnose(mgmt: Path, namespace: str, provider: process.ProcessProvider) -> str:
    """What each Machine and process machine says, for a failure message."""
    lines = []
    out = kubectl(mgmt, "get", "-n", namespace, "machines,processmachines,kubeadmconfigs,"
                  "kubeadmcontrolplanes,clusters", "-o", "json")
    for obj in json.loads(out)["items"]:
        conds = [(c["type"], c["status"], c.get("reason"), c.get("message", "")[:300])
                 for c in (obj.get("status") or {}).get("conditions") or []]
        lines.append(f"{obj['kind']} {obj['metadata']['name']}: {conds}")
    for directory in sorted((provider.supervisor.data_dir / "machines").glob("*/*")):
        lines.append(f"--- {directory.name}")
        for log in [directory / "agent.log", *sorted((directory / "root/var/log").glob("*"))]:
            if log.is_file():
                lines.append(f"{log.name}: " + "\n".join(log.read_text(errors="replace")
                                                          .splitlines()[-15:]))
    return "\n".join(lines)


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout=10s",
                           *args],
                          input=stdin.encode() if stdin else None, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def test_quick_start_cluster_nodes_ready_then_deleted_without_trace(
        all_crds: Server, namespace: str, controllers: process.ProcessProvider,
        tmp_path: Path) -> None:
    mgmt = all_crds.kubeconfig
    manifests = "---\n".join(yaml.safe_dump(m) for m in quick_start("w1", 1))
    await asyncio.to_thread(kubectl, mgmt, "apply", "-n", namespace, "-f", "-", stdin=manifests)

    workload = tmp_path / "w1.kubeconfig"

    async def nodes_ready() -> list[dict[str, Any]] | None:
        out = await asyncio.to_thread(kubectl, mgmt, "get", "-n", namespace, "machines",
                                      "-o", "json")
        machines: list[dict[str, Any]] = json.loads(out)["items"]
        if len(machines) != 2 or not all((m.get("status") or {}).get("nodeRef")
                                         for m in machines):
            return None
        secret = json.loads(await asyncio.to_thread(
            kubectl, mgmt, "get", "-n", namespace, "secret", "w1-kubeconfig", "-o", "json"))
        workload.write_bytes(base64.b64decode(secret["data"]["value"]))
        nodes = json.loads(await asyncio.to_thread(kubectl, workload, "get", "nodes", "-o",
                                                   "json"))["items"]
        ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in n["status"]["conditions"])]
        if len(ready) != 2:
            return None
        assert {n["spec"]["providerID"] for n in nodes} == {m["spec"]["providerID"]
                                                             for m in machines}
        return machines

    try:
        machines = await eventually(nodes_ready, "2 Machines with Ready Nodes", timeout=60)
    except AssertionError as e:
        state = await asyncio.to_thread(diagnose, mgmt, namespace, controllers)
        raise AssertionError(f"{e}\n{state}") from None
    assert all(m["spec"]["providerID"].startswith("process://w1/") for m in machines)
    data_dir = controllers.supervisor.data_dir / "machines" / namespace
    pids = [int((d / "pid").read_text()) for d in data_dir.iterdir()]
    assert len(pids) == 2

    await asyncio.to_thread(kubectl, mgmt, "delete", "-n", namespace, "cluster", "w1",
                            "--wait=false")
    # Upstream's Cluster controller deletes the controlPlaneRef once the workers are gone; ours
    # (shipyard.controllers.cluster) still waits for the control-plane Machines first, which only
    # the control plane deletes. Deleting the KubeadmControlPlane too is harmless upstream.
    await asyncio.to_thread(kubectl, mgmt, "delete", "-n", namespace, "kubeadmcontrolplane",
                            "w1-control-plane", "--wait=false")

    async def cluster_gone() -> bool:
        out = await asyncio.to_thread(kubectl, mgmt, "get", "-n", namespace, "clusters",
                                      "-o", "json")
        return not json.loads(out)["items"]

    try:
        await eventually(cluster_gone, "Cluster deleted", timeout=45)
    except AssertionError as e:
        state = await asyncio.to_thread(diagnose, mgmt, namespace, controllers)
        raise AssertionError(f"{e}\n{state}") from None
    assert not data_dir.exists() or not any(data_dir.iterdir())
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


async def test_three_control_plane_machines_survive_losing_one(
        all_crds: Server, namespace: str, controllers: process.ProcessProvider,
        tmp_path: Path) -> None:
    mgmt = all_crds.kubeconfig
    manifests = "---\n".join(yaml.safe_dump(m) for m in quick_start("w3", 0, 3))
    await asyncio.to_thread(kubectl, mgmt, "apply", "-n", namespace, "-f", "-", stdin=manifests)
    workload = tmp_path / "w3.kubeconfig"

    async def three_ready() -> list[dict[str, Any]] | None:
        out = await asyncio.to_thread(kubectl, mgmt, "get", "-n", namespace, "machines",
                                      "-o", "json")
        machines: list[dict[str, Any]] = json.loads(out)["items"]
        if len(machines) != 3 or not all((m.get("status") or {}).get("nodeRef")
                                         for m in machines):
            return None
        secret = json.loads(await asyncio.to_thread(
            kubectl, mgmt, "get", "-n", namespace, "secret", "w3-kubeconfig", "-o", "json"))
        workload.write_bytes(base64.b64decode(secret["data"]["value"]))
        return machines

    try:
        machines = await eventually(three_ready, "3 control-plane Machines with Nodes",
                                    timeout=90)
    except AssertionError as e:
        state = await asyncio.to_thread(diagnose, mgmt, namespace, controllers)
        raise AssertionError(f"{e}\n{state}") from None
    first = sorted(machines, key=lambda m: m["metadata"]["creationTimestamp"])[0]
    pid = controllers.supervisor.pid(namespace, first["spec"]["infrastructureRef"]["name"])
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    # The endpoint keeps answering from the two machines left (etcd keeps quorum).
    try:
        nodes = json.loads(await asyncio.to_thread(kubectl, workload, "get", "nodes", "-o",
                                                   "json"))["items"]
    except AssertionError as e:
        state = await asyncio.to_thread(diagnose, mgmt, namespace, controllers)
        raise AssertionError(f"{e}\n{state}") from None
    assert len(nodes) == 3
