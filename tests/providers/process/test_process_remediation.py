"""A killed worker is remediated end to end on the process provider: its kubelet stops renewing
its Lease, the control-plane machine's node lifecycle loop marks the Node Ready=Unknown (with the
grace period set, as upstream, by kube-controller-manager's ``node-monitor-grace-period`` in the
ClusterConfiguration), the MachineHealthCheck deletes the Machine, its process and files go, and
the MachineSet's replacement joins with a Ready Node."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.providers.process import setup as process
from tests.kube import Server
from tests.providers.harness import capi, eventually
from tests.providers.process.test_process_e2e import (
    all_crds,
    controllers,
    diagnose,
    kubectl,
    quick_start,
)

__all__ = ["all_crds", "capi", "controllers"]

pytestmark = pytest.mark.slow

GRACE = "15s"


def manifests(name: str) -> list[dict[str, Any]]:
    docs = quick_start(name, 1)
    for doc in docs:
        if doc["kind"] == "KubeadmControlPlane":
            doc["spec"]["kubeadmConfigSpec"] = {"clusterConfiguration": {"controllerManager": {
                "extraArgs": [{"name": "node-monitor-grace-period", "value": GRACE}]}}}
    docs.append({"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "MachineHealthCheck",
                 "metadata": {"name": f"{name}-md-0"},
                 "spec": {"clusterName": name,
                          "selector": {"matchLabels": {"cluster.x-k8s.io/deployment-name":
                                                       f"{name}-md-0"}},
                          "checks": {"unhealthyNodeConditions": [
                              {"type": "Ready", "status": "Unknown", "timeoutSeconds": 1},
                              {"type": "Ready", "status": "False", "timeoutSeconds": 1}]}}})
    return docs


async def test_killed_worker_is_replaced(all_crds: Server, namespace: str,
                                         controllers: process.ProcessProvider,
                                         tmp_path: Path) -> None:
    mgmt = all_crds.kubeconfig
    text = "---\n".join(yaml.safe_dump(m) for m in manifests("w4"))
    await asyncio.to_thread(kubectl, mgmt, "apply", "-n", namespace, "-f", "-", stdin=text)
    workload = tmp_path / "w4.kubeconfig"

    async def workers_with_ready_node(exclude: str = "") -> list[dict[str, Any]] | None:
        out = await asyncio.to_thread(kubectl, mgmt, "get", "-n", namespace, "machines", "-l",
                                      "cluster.x-k8s.io/deployment-name=w4-md-0", "-o", "json")
        machines: list[dict[str, Any]] = [m for m in json.loads(out)["items"]
                                          if m["metadata"]["name"] != exclude]
        if len(machines) != 1 or not (machines[0].get("status") or {}).get("nodeRef"):
            return None
        if not workload.exists():
            secret = json.loads(await asyncio.to_thread(
                kubectl, mgmt, "get", "-n", namespace, "secret", "w4-kubeconfig", "-o", "json"))
            workload.write_bytes(base64.b64decode(secret["data"]["value"]))
        node = json.loads(await asyncio.to_thread(
            kubectl, workload, "get", "node", machines[0]["status"]["nodeRef"]["name"], "-o",
            "json"))
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        return machines if ready and ready[0]["status"] == "True" else None

    async def wait(check: Any, what: str, timeout: float) -> Any:
        try:
            return await eventually(check, what, timeout=timeout)
        except AssertionError as e:
            state = await asyncio.to_thread(diagnose, mgmt, namespace, controllers)
            raise AssertionError(f"{e}\n{state}") from None

    [victim] = await wait(workers_with_ready_node, "a worker with a Ready Node", 60)
    name = victim["metadata"]["name"]
    infra_name = victim["spec"]["infrastructureRef"]["name"]
    pid = controllers.supervisor.pid(namespace, infra_name)
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)

    async def replaced() -> list[dict[str, Any]] | None:
        return await workers_with_ready_node(exclude=name)

    [replacement] = await wait(replaced, "the killed worker replaced", 90)
    assert replacement["spec"]["providerID"] != victim["spec"]["providerID"]

    async def victim_gone() -> bool:
        out = await asyncio.to_thread(kubectl, mgmt, "get", "-n", namespace, "machines", "-o",
                                      "json")
        return name not in {m["metadata"]["name"] for m in json.loads(out)["items"]}

    await wait(victim_gone, "the killed Machine deleted", 30)
    assert not controllers.supervisor.machine_dir(namespace, infra_name).exists()
