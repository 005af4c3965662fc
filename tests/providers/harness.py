"""A management plane for controller tests: the session's real API server with the Cluster API
and in-memory provider CRDs installed, the core controllers and the in-memory provider running
in-process on a runtime Manager scoped to the test's namespace.

Import the fixtures into a test module (`from tests.providers.harness import capi, env`) and
use `env` (an `Env`); `eventually(...)` polls an async check until it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import yaml
from prometheus_client import CollectorRegistry

from shipyard.api import crdgen
from shipyard.apimachinery.errors import NotFound
from shipyard.bootstrap.inmemory import controller as bootstrap
from shipyard.bootstrap.inmemory import types as bootstrap_types
from shipyard.client import Client, Object
from shipyard.controllers import setup as core
from shipyard.controllers.remote import client_from_kubeconfig
from shipyard.providers.inmemory import setup as inmemory
from shipyard.providers.inmemory import types
from shipyard.providers.inmemory.workload import WorkloadClusters
from shipyard.runtime import Manager, Metrics
from tests.kube import Client as HTTP
from tests.kube import Server

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
V2 = "cluster.x-k8s.io/v1beta2"
INFRA = types.API_VERSION
T = TypeVar("T")
CORE = ["shipyard.controllers.cluster:setup", "shipyard.controllers.machine:setup"]
"""Only the controllers under test here: the others are tested on their own."""


def install_crd(api: HTTP, manifest: dict[str, Any], *, replace: bool = False) -> None:
    """Create a CRD unless present (other modules install the same ones), wait Established.
    With `replace`, a present one gets this spec (e.g. one serving v1beta1 too)."""
    name = manifest["metadata"]["name"]
    current = api.get(f"{CRD_PATH}/{name}")
    if current.status != 200:
        resp = api.post(CRD_PATH, manifest)
        assert resp.status in (201, 409), resp.body
    elif replace and current.json()["spec"] != manifest["spec"]:
        body = {**manifest, "metadata": {**manifest["metadata"],
                                         "resourceVersion": current.json()["metadata"][
                                             "resourceVersion"]}}
        resp = api.put(f"{CRD_PATH}/{name}", body)
        assert resp.status == 200, resp.body
    for _ in range(1000):
        obj = api.get(f"{CRD_PATH}/{name}").json()
        if any(c["type"] == "Established" and c["status"] == "True"
               for c in (obj.get("status") or {}).get("conditions") or []):
            return
        import time
        time.sleep(0.01)
    raise AssertionError(f"CRD {name} not Established")


@pytest.fixture(scope="module")
def capi(server: Server) -> Iterator[Server]:
    api = server.client()
    manifests = [yaml.safe_load(p.read_text()) for p in sorted(crdgen.CRDS_DIR.glob("*.yaml"))]
    for manifest in [*manifests, *types.crd_manifests(), *bootstrap_types.crd_manifests()]:
        install_crd(api, manifest)
    yield server
    api.pool.clear()


@dataclass
class Env:
    mgr: Manager
    kube: Client
    namespace: str
    workloads: WorkloadClusters

    async def get(self, api_version: str, kind: str, name: str) -> Object | None:
        try:
            return await self.kube.get(api_version, kind, name, self.namespace)
        except NotFound:
            return None

    async def create(self, obj: Object) -> Object:
        obj.setdefault("metadata", {})["namespace"] = self.namespace
        return await self.kube.create(obj)

    async def workload_client(self, cluster: str) -> Client:
        secret = await self.kube.get("v1", "Secret", f"{cluster}-kubeconfig", self.namespace)
        import base64
        return client_from_kubeconfig(base64.b64decode(secret["data"]["value"]).decode())


@contextlib.asynccontextmanager
async def running(server: Server, namespace: str,
                  setups: list[str] | None = None) -> AsyncIterator[Env]:
    """A Manager with the given core controllers (default: all), the in-memory providers, run
    in-process against ``server`` for ``namespace``; stopped and released on exit."""
    kube = Client.from_kubeconfig(server.kubeconfig)
    options = core.Options()
    mgr = await core.build(kube, namespace=namespace, options=options, setups=setups,
                           metrics=Metrics(CollectorRegistry()),
                           graceful_shutdown_timeout=5,
                           informer_options={"backoff_initial": 0.05})
    workloads = await inmemory.setup(mgr, inmemory.InMemoryOptions())
    await bootstrap.setup(mgr)
    task = asyncio.create_task(mgr.run())
    try:
        yield Env(mgr, kube, namespace, workloads)
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await task
        await options.aclose()
        await workloads.aclose()
        await kube.close()


@pytest.fixture
async def env(capi: Server, namespace: str) -> AsyncIterator[Env]:
    async with running(capi, namespace, CORE) as e:
        yield e


async def eventually(check: Callable[[], Awaitable[T | None]], what: str,
                     timeout: float = 30.0) -> T:
    """Poll `check` until it returns a truthy value (returned); fail after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# ----------------------------------------------------------------------------- manifests

def cluster(name: str, *, paused: bool = False) -> Object:
    spec: dict[str, Any] = {"infrastructureRef": {"apiGroup": types.GROUP,
                                                  "kind": "InMemoryCluster", "name": name}}
    if paused:
        spec["paused"] = True
    return {"apiVersion": V2, "kind": "Cluster", "metadata": {"name": name}, "spec": spec}


def infra_cluster(name: str) -> Object:
    return {"apiVersion": INFRA, "kind": "InMemoryCluster", "metadata": {"name": name},
            "spec": {}}


def infra_machine(name: str, boot_delay: float | None = None) -> Object:
    spec: dict[str, Any] = {}
    if boot_delay is not None:
        spec["bootDelaySeconds"] = boot_delay
    return {"apiVersion": INFRA, "kind": "InMemoryMachine", "metadata": {"name": name},
            "spec": spec}


def machine(name: str, cluster_name: str, *, control_plane: bool = False,
            annotations: dict[str, str] | None = None, data_secret: str = "bootstrap-data",
            config_ref: dict[str, str] | None = None) -> Object:
    labels = {"cluster.x-k8s.io/control-plane": ""} if control_plane else {}
    bootstrap: dict[str, Any] = ({"configRef": config_ref} if config_ref
                                 else {"dataSecretName": data_secret})
    return {"apiVersion": V2, "kind": "Machine",
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
            "spec": {"clusterName": cluster_name, "bootstrap": bootstrap,
                     "infrastructureRef": {"apiGroup": types.GROUP, "kind": "InMemoryMachine",
                                           "name": name}}}


def condition(obj: Object | None, type_: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}
