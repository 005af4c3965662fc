"""The process provider on a real management API with the core Cluster and Machine
controllers: a ProcessMachine becomes a running process tree with its own address and root,
reports its boot outcome as conditions, stays dead when killed, and leaves nothing behind when
deleted; a ProcessCluster gets a listening control-plane endpoint."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from shipyard.client import Client, Object
from shipyard.controllers import setup as core
from shipyard.providers.process import setup as process
from shipyard.providers.process import types
from shipyard.runtime import Metrics
from tests.kube import Server
from tests.providers.harness import CORE, V2, capi, condition, eventually, install_crd

__all__ = ["capi"]

INFRA = types.API_VERSION


@pytest.fixture(scope="module")
def process_crds(capi: Server) -> Server:
    api = capi.client()
    for manifest in types.crd_manifests():
        install_crd(api, manifest)
    return capi


class Env:
    def __init__(self, kube: Client, namespace: str, provider: process.ProcessProvider) -> None:
        self.kube, self.namespace, self.provider = kube, namespace, provider

    async def create(self, obj: Object) -> Object:
        obj.setdefault("metadata", {})["namespace"] = self.namespace
        return await self.kube.create(obj)

    async def get(self, api_version: str, kind: str, name: str) -> Object | None:
        from shipyard.apimachinery.errors import NotFound
        try:
            return await self.kube.get(api_version, kind, name, self.namespace)
        except NotFound:
            return None


@contextlib.asynccontextmanager
async def running(server: Server, namespace: str, data_dir: Path, prefix: str,
                  cleanup: bool = True) -> AsyncIterator[Env]:
    """The core Cluster and Machine controllers and the process provider on one Manager;
    ``cleanup`` removes every machine after the manager stopped."""
    kube = Client.from_kubeconfig(server.kubeconfig)
    options = core.Options()
    mgr = await core.build(kube, namespace=namespace, options=options, setups=CORE,
                           metrics=Metrics(CollectorRegistry()), graceful_shutdown_timeout=5,
                           informer_options={"backoff_initial": 0.05})
    provider = await process.setup(mgr, process.ProcessOptions(data_dir=data_dir,
                                                               address_prefix=prefix))
    task = asyncio.create_task(mgr.run())
    try:
        yield Env(kube, namespace, provider)
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await task
        if cleanup:
            for machine_dir in (data_dir / "machines").glob("*/*"):
                # whatever a failed test left running
                await asyncio.to_thread(provider.supervisor.remove, machine_dir.parent.name,
                                        machine_dir.name)
        await options.aclose()
        await provider.aclose()
        await kube.close()


@pytest.fixture
async def env(process_crds: Server, namespace: str, tmp_path: Path) -> AsyncIterator[Env]:
    async with running(process_crds, namespace, tmp_path / "process",
                       f"127.{random.randint(100, 250)}") as e:
        yield e


def _user_data(runcmd: list[str]) -> dict[str, Any]:
    text = "#cloud-config\nruncmd:\n" + "".join(f"- {c!r}\n" for c in runcmd)
    return {"value": base64.b64encode(text.encode()).decode()}


async def _machine(env: Env, cluster: str, name: str, runcmd: list[str]) -> None:
    await env.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-data"},
                      "type": "cluster.x-k8s.io/secret", "data": _user_data(runcmd)})
    await env.create({"apiVersion": INFRA, "kind": "ProcessMachine", "metadata": {"name": name},
                      "spec": {}})
    await env.create({"apiVersion": V2, "kind": "Machine", "metadata": {"name": name},
                      "spec": {"clusterName": cluster,
                               "bootstrap": {"dataSecretName": f"{name}-data"},
                               "infrastructureRef": {"apiGroup": types.GROUP,
                                                     "kind": "ProcessMachine", "name": name}}})


async def _cluster(env: Env, name: str) -> None:
    await env.create({"apiVersion": INFRA, "kind": "ProcessCluster", "metadata": {"name": name},
                      "spec": {}})
    await env.create({"apiVersion": V2, "kind": "Cluster", "metadata": {"name": name},
                      "spec": {"infrastructureRef": {"apiGroup": types.GROUP,
                                                     "kind": "ProcessCluster", "name": name}}})


def _reason(obj: Object | None) -> str:
    return str(condition(obj, "Ready").get("reason", ""))


async def test_machine_runs_reports_and_is_removed_without_trace(env: Env) -> None:
    await _cluster(env, "p1")

    async def endpoint() -> dict[str, Any] | None:
        infra = await env.get(INFRA, "ProcessCluster", "p1")
        return ((infra or {}).get("spec") or {}).get("controlPlaneEndpoint") or None

    cpe = await eventually(endpoint, "ProcessCluster endpoint")
    assert cpe["host"] == "127.0.0.1"
    with socket.create_connection((cpe["host"], cpe["port"]), timeout=5):
        pass  # the load balancer listens (and closes: no control plane yet)

    await _machine(env, "p1", "p1-m0", ["echo hello > /run/hello"])

    async def ready() -> Object | None:
        infra = await env.get(INFRA, "ProcessMachine", "p1-m0")
        return infra if condition(infra, "Ready").get("status") == "True" else None

    infra = await eventually(ready, "ProcessMachine Ready", timeout=60)
    assert infra["spec"]["providerID"] == "process://p1/p1-m0"
    assert infra["status"]["initialization"] == {"provisioned": True}
    address = next(a["address"] for a in infra["status"]["addresses"]
                   if a["type"] == "InternalIP")
    assert address.startswith(env.provider.supervisor.address_prefix + ".")
    supervisor = env.provider.supervisor
    directory = supervisor.machine_dir(env.namespace, "p1-m0")
    assert (directory / "root/run/hello").read_text() == "hello\n"
    pid = supervisor.pid(env.namespace, "p1-m0")
    assert pid is not None and supervisor.alive(env.namespace, "p1-m0")

    await env.kube.delete(V2, "Machine", "p1-m0", env.namespace)

    async def gone() -> bool:
        return await env.get(INFRA, "ProcessMachine", "p1-m0") is None

    await eventually(gone, "ProcessMachine deleted", timeout=60)
    assert not directory.exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


async def test_failed_boot_and_killed_machine_are_conditions(env: Env) -> None:
    await _cluster(env, "p2")
    await _machine(env, "p2", "p2-bad", ["echo 'kubeadm: boom' >&2; exit 3"])
    await _machine(env, "p2", "p2-ok", ["true"])

    async def failed() -> Object | None:
        infra = await env.get(INFRA, "ProcessMachine", "p2-bad")
        return infra if _reason(infra) == "RuncmdFailed" else None

    bad = await eventually(failed, "ProcessMachine RuncmdFailed", timeout=60)
    assert condition(bad, "Ready")["status"] == "False"
    assert "kubeadm: boom" in condition(bad, "Ready")["message"]
    assert condition(bad, types.BOOTSTRAP_SUCCEEDED_CONDITION)["reason"] == "RuncmdFailed"
    assert not (bad.get("status") or {}).get("initialization", {}).get("provisioned")

    async def ready() -> Object | None:
        infra = await env.get(INFRA, "ProcessMachine", "p2-ok")
        return infra if condition(infra, "Ready").get("status") == "True" else None

    await eventually(ready, "ProcessMachine Ready", timeout=60)
    supervisor = env.provider.supervisor
    pid = supervisor.pid(env.namespace, "p2-ok")
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)

    async def exited() -> Object | None:
        infra = await env.get(INFRA, "ProcessMachine", "p2-ok")
        return infra if _reason(infra) == "ProcessExited" else None

    await eventually(exited, "ProcessMachine ProcessExited", timeout=30)
    assert supervisor.pid(env.namespace, "p2-ok") == pid  # not restarted
    assert not supervisor.alive(env.namespace, "p2-ok")


async def test_machines_and_endpoint_survive_a_controller_restart(
        process_crds: Server, namespace: str, tmp_path: Path) -> None:
    data_dir, prefix = tmp_path / "process", f"127.{random.randint(100, 250)}"

    async def ready(env: Env) -> Object | None:
        infra = await env.get(INFRA, "ProcessMachine", "p3-m0")
        return infra if condition(infra, "Ready").get("status") == "True" else None

    async with running(process_crds, namespace, data_dir, prefix, cleanup=False) as env:
        await _cluster(env, "p3")
        await _machine(env, "p3", "p3-m0", ["true"])
        await eventually(lambda: ready(env), "ProcessMachine Ready", timeout=60)
        pid = env.provider.supervisor.pid(namespace, "p3-m0")
        cluster = await env.get(INFRA, "ProcessCluster", "p3")
        assert cluster is not None
        port = cluster["spec"]["controlPlaneEndpoint"]["port"]
    # The controllers are gone; the machine is not.
    assert pid is not None and Path(f"/proc/{pid}").exists()

    async with running(process_crds, namespace, data_dir, prefix) as env:
        assert env.provider.supervisor.pid(namespace, "p3-m0") == pid
        assert env.provider.supervisor.alive(namespace, "p3-m0")

        async def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
            except OSError:
                return False
            return True

        await eventually(listening, "the endpoint listening again on its port", timeout=30)
        await eventually(lambda: ready(env), "ProcessMachine still Ready", timeout=30)
        assert env.provider.supervisor.pid(namespace, "p3-m0") == pid  # adopted, not restarted
