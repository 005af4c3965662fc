"""Fixtures for `shipyard move`: the session's API server is the source management plane, a
second private Shipyard API server (same production composition, its own SQLite and PKI) is the
target; both get the Cluster API, in-memory infrastructure and bootstrap CRDs.

`controllers(server, namespace, workload_dir)` runs the core controllers and the in-memory
providers against one server, like the harness's `running`, but keeps the simulated workload
clusters under `workload_dir`, so that after a move the target's controllers find the same
workload API servers (same directory, same port) as the source's did: the machines' real
infrastructure outlives the management plane, as it does for real.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from shipyard.api import crdgen
from shipyard.apiserver import authn, certs
from shipyard.apiserver.serving import ServingOptions, serve_in_thread
from shipyard.bootstrap.inmemory import controller as bootstrap
from shipyard.bootstrap.inmemory import types as bootstrap_types
from shipyard.cli.apiserver import new_api_server
from shipyard.client import Client
from shipyard.controllers import setup as core
from shipyard.providers.inmemory import setup as inmemory
from shipyard.providers.inmemory import types
from shipyard.runtime import Metrics
from shipyard.storage import SQLiteStore
from tests.conftest import write_kubeconfig
from tests.kube import Server
from tests.providers.harness import Env, capi, install_crd

__all__ = ["capi", "target", "controllers", "install_capi"]


def install_capi(server: Server) -> None:
    api = server.client()
    manifests = [yaml.safe_load(p.read_text()) for p in sorted(crdgen.CRDS_DIR.glob("*.yaml"))]
    for manifest in [*manifests, *types.crd_manifests(), *bootstrap_types.crd_manifests()]:
        install_crd(api, manifest)
    api.pool.clear()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("target")
    pki = certs.ensure_pki(root / "pki", key_type="ecdsa")
    app = authn.Authenticator(
        new_api_server(SQLiteStore(root / "state.db"), bookmark_interval=1.0),
        tokens=authn.load_token_file(pki.token_file),
        client_ca=certs.load_cert(pki.ca_cert),
    )
    options = ServingOptions(port=0, cert_file=pki.serving_cert, key_file=pki.serving_key,
                             client_ca_file=pki.ca_cert, shutdown_timeout=1)
    with serve_in_thread(app, options) as running:
        url = f"https://127.0.0.1:{running.bound_port}"
        home = root / "home"
        home.mkdir()
        kubeconfig = root / "kubeconfig"
        write_kubeconfig(kubeconfig, url, pki.ca_cert, pki.admin_token)
        server = Server(url, pki.admin_token, pki.ca_cert, kubeconfig, home)
        install_capi(server)
        yield server


@contextlib.asynccontextmanager
async def controllers(server: Server, namespace: str, workload_dir: Path) -> AsyncIterator[Env]:
    kube = Client.from_kubeconfig(server.kubeconfig)
    options = core.Options()
    mgr = await core.build(kube, namespace=namespace, options=options,
                           metrics=Metrics(CollectorRegistry()), graceful_shutdown_timeout=5,
                           informer_options={"backoff_initial": 0.05})
    workloads = await inmemory.setup(mgr, inmemory.InMemoryOptions(data_dir=workload_dir))
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
async def source_kube(capi: Server) -> AsyncIterator[Client]:
    client = Client.from_kubeconfig(capi.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def target_kube(target: Server) -> AsyncIterator[Client]:
    client = Client.from_kubeconfig(target.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


def owner_uids(obj: dict[str, Any]) -> set[str]:
    return {str(r["uid"]) for r in obj["metadata"].get("ownerReferences") or []}
