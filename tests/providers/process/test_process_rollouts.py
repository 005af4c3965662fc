"""Process machines through the changes Cluster API exists for: a MachineDeployment scaled up and
down adds and removes Nodes and a rolling update replaces every worker; a 3-machine control plane
rolled to a new version keeps answering kubectl throughout (stacked etcd keeps quorum while the
KubeadmControlPlane replaces one machine at a time)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.providers.process import setup as process
from tests.kube import Server
from tests.providers.harness import eventually
from tests.providers.process.test_process_e2e import (
    all_crds,
    capi,
    controllers,
    diagnose,
    kubectl,
    quick_start,
)

__all__ = ["all_crds", "capi", "controllers"]

pytestmark = pytest.mark.slow


async def machines(mgmt: Path, namespace: str, selector: str) -> list[dict[str, Any]]:
    out = await asyncio.to_thread(kubectl, mgmt, "get", "-n", namespace, "machines", "-l",
                                  selector, "-o", "json")
    return list(json.loads(out)["items"])


async def ready_nodes(workload: Path) -> set[str]:
    out = await asyncio.to_thread(kubectl, workload, "get", "nodes", "-o", "json")
    return {n["metadata"]["name"] for n in json.loads(out)["items"]
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for c in n["status"].get("conditions") or [])}


async def write_kubeconfig(mgmt: Path, namespace: str, name: str, path: Path) -> None:
    secret = json.loads(await asyncio.to_thread(
        kubectl, mgmt, "get", "-n", namespace, "secret", f"{name}-kubeconfig", "-o", "json"))
    path.write_bytes(base64.b64decode(secret["data"]["value"]))


def settled(found: list[dict[str, Any]], count: int, version: str) -> bool:
    return len(found) == count and all(
        (m.get("status") or {}).get("phase") == "Running" and m["spec"].get("version") == version
        and not m["metadata"].get("deletionTimestamp") for m in found)


@pytest.mark.timeout(300)
async def test_workers_scale_and_roll_out(all_crds: Server, namespace: str,
                                          controllers: process.ProcessProvider,
                                          tmp_path: Path) -> None:
    mgmt = all_crds.kubeconfig
    manifests = "---\n".join(yaml.safe_dump(m) for m in quick_start("w5", 1))
    await asyncio.to_thread(kubectl, mgmt, "apply", "-n", namespace, "-f", "-", stdin=manifests)
    workload = tmp_path / "w5.kubeconfig"
    workers = "cluster.x-k8s.io/cluster-name=w5,!cluster.x-k8s.io/control-plane"
    everything = "cluster.x-k8s.io/cluster-name=w5"

    async def nodes_match(count: int, version: str = "v1.33.0") -> set[str] | None:
        found = await machines(mgmt, namespace, workers)
        if not settled(found, count, version):
            return None
        await write_kubeconfig(mgmt, namespace, "w5", workload)
        names = {m["status"]["nodeRef"]["name"]
                 for m in await machines(mgmt, namespace, everything)
                 if (m.get("status") or {}).get("nodeRef")}
        ready = await ready_nodes(workload)
        return ready if ready == names and len(ready) == count + 1 else None

    try:
        await eventually(lambda: nodes_match(1), "1 worker Ready", timeout=90)
        await asyncio.to_thread(kubectl, mgmt, "scale", "-n", namespace,
                                "machinedeployment/w5-md-0", "--replicas=2")
        before = await eventually(lambda: nodes_match(2), "2 workers Ready", timeout=90)
        await asyncio.to_thread(kubectl, mgmt, "patch", "-n", namespace,
                                "machinedeployment/w5-md-0", "--type=merge", "-p",
                                json.dumps({"spec": {"template": {"spec": {
                                    "version": "v1.33.1"}}}}))
        after = await eventually(lambda: nodes_match(2, "v1.33.1"), "workers rolled out",
                                 timeout=150)
        old_workers = {n for n in before if "md-0" in n}
        assert old_workers and not old_workers & after, "a worker survived the rollout"
        await asyncio.to_thread(kubectl, mgmt, "scale", "-n", namespace,
                                "machinedeployment/w5-md-0", "--replicas=1")
        await eventually(lambda: nodes_match(1, "v1.33.1"), "scaled down to 1", timeout=90)
    except AssertionError as e:
        state = await asyncio.to_thread(diagnose, mgmt, namespace, controllers)
        raise AssertionError(f"{e}\n{state}") from None


@pytest.mark.timeout(400)
async def test_control_plane_rolling_update_keeps_answering(
        all_crds: Server, namespace: str, controllers: process.ProcessProvider,
        tmp_path: Path) -> None:
    mgmt = all_crds.kubeconfig
    manifests = "---\n".join(yaml.safe_dump(m) for m in quick_start("w6", 0, 3))
    await asyncio.to_thread(kubectl, mgmt, "apply", "-n", namespace, "-f", "-", stdin=manifests)
    workload = tmp_path / "w6.kubeconfig"
    control_plane = "cluster.x-k8s.io/cluster-name=w6,cluster.x-k8s.io/control-plane"

    async def rolled(version: str) -> list[dict[str, Any]] | None:
        found = await machines(mgmt, namespace, control_plane)
        return found if settled(found, 3, version) and all(
            m["status"].get("nodeRef") for m in found) else None

    try:
        first = await eventually(lambda: rolled("v1.33.0"), "3 control-plane machines",
                                 timeout=150)
        await write_kubeconfig(mgmt, namespace, "w6", workload)
        await asyncio.to_thread(kubectl, mgmt, "patch", "-n", namespace,
                                "kubeadmcontrolplane/w6-control-plane", "--type=merge", "-p",
                                json.dumps({"spec": {"version": "v1.33.1"}}))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 300
        answered = failed = 0
        while True:
            probe = await asyncio.to_thread(
                subprocess.run, ["kubectl", "--kubeconfig", str(workload),
                                 "--request-timeout=5s", "get", "--raw", "/readyz"],
                capture_output=True, timeout=30)
            if probe.returncode == 0:
                answered += 1
            else:
                failed += 1
            final = await rolled("v1.33.1")
            if final is not None:
                break
            assert loop.time() < deadline, "control-plane rollout did not finish"
            await asyncio.sleep(0.5)
        assert not {m["metadata"]["name"] for m in first} & {
            m["metadata"]["name"] for m in final}, "a control-plane machine was not replaced"
        assert answered > 0 and failed == 0, (
            f"the API answered {answered} probes and failed {failed} during the rollout")
        assert len(await ready_nodes(workload)) == 3
    except AssertionError as e:
        state = await asyncio.to_thread(diagnose, mgmt, namespace, controllers)
        raise AssertionError(f"{e}\n{state}") from None
