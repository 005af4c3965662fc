"""A killed control-plane machine of a 3-machine stacked-etcd control plane is remediated on
process machines: kubectl keeps answering through the control-plane endpoint (etcd keeps
quorum on the two left), the dead machine's Node goes Ready=Unknown, the MachineHealthCheck
marks it, the KubeadmControlPlane removes its etcd member and replaces it, and the control plane
is back to 3 Ready Nodes."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
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

CP = "cluster.x-k8s.io/cluster-name=w7,cluster.x-k8s.io/control-plane"


def manifests() -> list[dict[str, Any]]:
    docs = quick_start("w7", 0, 3)
    for doc in docs:
        if doc["kind"] == "KubeadmControlPlane":
            doc["spec"]["kubeadmConfigSpec"] = {"clusterConfiguration": {"controllerManager": {
                "extraArgs": [{"name": "node-monitor-grace-period", "value": "15s"}]}}}
    docs.append({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineHealthCheck",
                 "metadata": {"name": "w7-control-plane"},
                 "spec": {"clusterName": "w7",
                          "selector": {"matchLabels": {"cluster.x-k8s.io/control-plane": ""}},
                          "checks": {"unhealthyNodeConditions": [
                              {"type": "Ready", "status": "Unknown", "timeoutSeconds": 1},
                              {"type": "Ready", "status": "False", "timeoutSeconds": 1}]}}})
    return docs


@pytest.mark.timeout(400)
async def test_killed_control_plane_machine_is_remediated(
        all_crds: Server, namespace: str, controllers: process.ProcessProvider,
        tmp_path: Path) -> None:
    mgmt = all_crds.kubeconfig
    text = "---\n".join(yaml.safe_dump(m) for m in manifests())
    await asyncio.to_thread(kubectl, mgmt, "apply", "-n", namespace, "-f", "-", stdin=text)
    workload = tmp_path / "w7.kubeconfig"

    async def control_plane(exclude: str = "") -> list[dict[str, Any]] | None:
        out = await asyncio.to_thread(kubectl, mgmt, "get", "-n", namespace, "machines", "-l",
                                      CP, "-o", "json")
        found = [m for m in json.loads(out)["items"] if m["metadata"]["name"] != exclude
                 and not m["metadata"].get("deletionTimestamp")]
        if len(found) != 3 or not all((m.get("status") or {}).get("nodeRef") for m in found):
            return None
        if not workload.exists():
            secret = json.loads(await asyncio.to_thread(
                kubectl, mgmt, "get", "-n", namespace, "secret", "w7-kubeconfig", "-o", "json"))
            workload.write_bytes(base64.b64decode(secret["data"]["value"]))
        nodes = json.loads(await asyncio.to_thread(kubectl, workload, "get", "nodes", "-o",
                                                   "json"))["items"]
        ready = {n["metadata"]["name"] for n in nodes if any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}
        wanted = {m["status"]["nodeRef"]["name"] for m in found}
        return found if wanted <= ready else None

    try:
        first = await eventually(control_plane, "3 Ready control-plane machines", timeout=150)
        victim = sorted(first, key=lambda m: m["metadata"]["creationTimestamp"])[-1]
        name = victim["metadata"]["name"]
        pid = controllers.supervisor.pid(namespace, victim["spec"]["infrastructureRef"]["name"])
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)

        probes = []

        async def replaced() -> list[dict[str, Any]] | None:
            probe = await asyncio.to_thread(
                subprocess.run, ["kubectl", "--kubeconfig", str(workload),
                                 "--request-timeout=5s", "get", "--raw", "/readyz"],
                capture_output=True, timeout=30)
            probes.append(probe.returncode)
            return await control_plane(exclude=name)

        final = await eventually(replaced, "the killed machine replaced", timeout=240)
    except AssertionError as e:
        state = await asyncio.to_thread(diagnose, mgmt, namespace, controllers)
        raise AssertionError(f"{e}\n{state}") from None
    assert name not in {m["metadata"]["name"] for m in final}
    assert probes and all(code == 0 for code in probes), \
        f"the API did not answer {probes.count(1)} of {len(probes)} probes"
    kcp = json.loads(await asyncio.to_thread(
        kubectl, mgmt, "get", "-n", namespace, "kubeadmcontrolplane", "w7-control-plane",
        "-o", "json"))
    assert kcp["status"]["lastRemediation"]["machine"] == name
