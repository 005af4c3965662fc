"""Scenario fixtures: the session's real Shipyard API server with the Cluster API CRDs, every
core controller plus the in-memory infrastructure and bootstrap providers, and helpers to build
a workload Cluster with a MachineDeployment the way a user writes one.

Two ways to run the controllers, both against the same server through a kubeconfig:
- `env`: in-process on a runtime Manager scoped to the test's namespace (fast; most scenarios);
- `ControllerProcess`: the `shipyard controllers` command as a subprocess, for the scenarios that
  kill it (SIGKILL to its process group: the controllers and the workload API servers they
  spawned die together, as a crashed controller pod would) or run two with leader election.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.client import Client, Object
from shipyard.providers.inmemory import types
from tests.kube import Server
from tests.providers.harness import Env, capi, condition, eventually, running

__all__ = ["capi", "env", "ControllerProcess", "condition", "eventually"]

V2 = "cluster.x-k8s.io/v1beta2"
BOOTSTRAP = "bootstrap.cluster.x-k8s.io/v1beta1"


@pytest.fixture
async def env(capi: Server, namespace: str) -> AsyncIterator[Env]:
    async with running(capi, namespace) as e:
        yield e


@pytest.fixture
async def kube(capi: Server) -> AsyncIterator[Client]:
    """A client for scenarios whose controllers run as subprocesses."""
    client = Client.from_kubeconfig(capi.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


class ControllerProcess:
    """`shipyard controllers` as a subprocess in its own process group."""

    def __init__(self, server: Server, namespace: str, workload_dir: Path, log: Path,
                 *, leader_elect: bool = False) -> None:
        args = [sys.executable, "-m", "shipyard.cli", "controllers", "--kubeconfig",
                str(server.kubeconfig), "--namespace", namespace,
                "--metrics-bind-address", "0", "--workload-dir", str(workload_dir)]
        if leader_elect:
            args += ["--leader-elect", "--leader-election-namespace", namespace,
                     "--leader-elect-lease-duration", "3"]
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=out,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL the controllers and every workload API server they started."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):  # anything left in its group
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


class MachineWatcher:
    """Follows every Machine event in a namespace and keeps the lowest count of Machines that
    are Available and not deleting, and the highest count of Machines not deleting (a Machine
being deleted no longer counts against maxSurge), seen at any event."""

    def __init__(self, kube: Client, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.current: dict[str, Object] = {}
        self.lowest_available: int | None = None
        self.highest_total = 0
        self.events = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.kube.list(V2, "Machine", self.namespace)
        for m in listed["items"]:
            self.current[m["metadata"]["name"]] = m
        self._observe()
        self._task = asyncio.create_task(self._run(listed["metadata"]["resourceVersion"]))

    async def _run(self, rv: str) -> None:
        async for event in self.kube.watch(V2, "Machine", self.namespace,
                                               resource_version=rv):
            obj = event["object"]
            if event["type"] == "BOOKMARK":
                continue
            self.events += 1
            if event["type"] == "DELETED":
                self.current.pop(obj["metadata"]["name"], None)
            else:
                self.current[obj["metadata"]["name"]] = obj
            self._observe()

    def _observe(self) -> None:
        count = sum(1 for m in self.current.values() if available(m))
        self.lowest_available = (count if self.lowest_available is None
                                 else min(self.lowest_available, count))
        self.highest_total = max(self.highest_total, sum(
            1 for m in self.current.values() if not m["metadata"].get("deletionTimestamp")))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


# ----------------------------------------------------------------------------- manifests

def workload_cluster(name: str = "c1") -> list[Object]:
    """A Cluster, its InMemoryCluster and the templates its workers are cloned from."""
    return [
        {"apiVersion": types.API_VERSION, "kind": "InMemoryCluster",
         "metadata": {"name": name}, "spec": {}},
        {"apiVersion": V2, "kind": "Cluster", "metadata": {"name": name},
         "spec": {"infrastructureRef": {"apiGroup": types.GROUP, "kind": "InMemoryCluster",
                                        "name": name}}},
        {"apiVersion": types.API_VERSION, "kind": "InMemoryMachineTemplate",
         "metadata": {"name": "workers"}, "spec": {"template": {"spec": {}}}},
        {"apiVersion": BOOTSTRAP, "kind": "InMemoryBootstrapConfigTemplate",
         "metadata": {"name": "workers"},
         "spec": {"template": {"spec": {"commands": ["echo booted"]}}}},
    ]


def machine_deployment(name: str, replicas: int, *, cluster: str = "c1",
                       strategy: dict[str, Any] | None = None, version: str = "v1.33.0",
                       infra_template: str = "workers") -> Object:
    labels = {"cluster.x-k8s.io/cluster-name": cluster, "pool": name}
    spec: dict[str, Any] = {
        "clusterName": cluster, "replicas": replicas,
        "selector": {"matchLabels": dict(labels)},
        "template": {"metadata": {"labels": dict(labels)},
                     "spec": {"clusterName": cluster, "version": version,
                              "bootstrap": {"configRef": {
                                  "apiGroup": "bootstrap.cluster.x-k8s.io",
                                  "kind": "InMemoryBootstrapConfigTemplate",
                                  "name": "workers"}},
                              "infrastructureRef": {
                                  "apiGroup": types.GROUP, "kind": "InMemoryMachineTemplate",
                                  "name": infra_template}}}}
    if strategy is not None:
        spec["rollout"] = {"strategy": strategy}
    return {"apiVersion": V2, "kind": "MachineDeployment", "metadata": {"name": name},
            "spec": spec}


async def create_all(kube: Client, namespace: str, objs: list[Object]) -> None:
    for obj in objs:
        obj.setdefault("metadata", {})["namespace"] = namespace
        await kube.create(obj)


def available(m: Object) -> bool:
    return (condition(m, "Available").get("status") == "True"
            and not m["metadata"].get("deletionTimestamp"))


async def machines(kube: Client, namespace: str, pool: str | None = None) -> list[Object]:
    selector = f"pool={pool}" if pool else None
    return list((await kube.list(V2, "Machine", namespace, label_selector=selector))["items"])


async def converged(kube: Client, namespace: str, md: str, replicas: int,
                    version: str | None = None) -> list[Object] | None:
    """The MachineDeployment `md` has exactly `replicas` Machines, all Available (and of
    `version`), and its status says so; returns the Machines."""
    found = await machines(kube, namespace, md)
    try:
        got = await kube.get(V2, "MachineDeployment", md, namespace)
    except Exception:
        return None
    status = got.get("status") or {}
    if (len(found) == replicas and all(available(m) for m in found)
            and (version is None or all(m["spec"]["version"] == version for m in found))
            and status.get("replicas") == replicas
            and status.get("availableReplicas") == replicas
            and status.get("upToDateReplicas") == replicas):
        return found
    return None
