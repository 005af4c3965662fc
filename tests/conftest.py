"""Shared fixtures: a real, secured Shipyard API server on a free loopback port.

The session server runs the production composition (SQLite store, API server, authentication,
TLS) in a background thread; tests isolate themselves with their own namespaces and names.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.apiserver import authn, certs
from shipyard.apiserver.serving import ServingOptions, serve_in_thread
from shipyard.cli.apiserver import new_api_server
from shipyard.storage import SQLiteStore
from tests.kube import Client, Server

# The real-Kubernetes tier's fixtures live here, once, so the whole session shares one upstream
# cluster (tests/realkube_test and tests/differential both use it).
from tests.realkube import realkube, realkube_api, realkube_server

__all__ = ["realkube", "realkube_api", "realkube_server"]


def write_kubeconfig(path: Path, url: str, ca_file: Path, token: str) -> None:
    import base64

    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "shipyard",
        "clusters": [{"name": "shipyard", "cluster": {
            "server": url,
            "certificate-authority-data": base64.b64encode(ca_file.read_bytes()).decode(),
        }}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "shipyard", "context": {"cluster": "shipyard", "user": "admin"}}],
    }))


STORAGE = os.environ.get("SHIPYARD_TEST_STORAGE", "sqlite")
"""The session server's backend: `make test` runs the API suites once more with `etcd`, so the
same API behaviour is checked on both stores."""


@pytest.fixture(scope="session")
def session_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("store")
    if STORAGE == "sqlite":
        yield SQLiteStore(root / "state.db")
        return
    assert STORAGE == "etcd", f"SHIPYARD_TEST_STORAGE={STORAGE!r}: sqlite or etcd"
    from shipyard.storage.etcd import EtcdStore
    from shipyard.storage.etcd_process import LocalEtcd

    etcd = LocalEtcd(root / "etcd")
    etcd.start()
    try:
        yield EtcdStore([etcd.endpoint])
    finally:
        etcd.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, session_store: Any) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("apiserver")
    pki = certs.ensure_pki(root / "pki", key_type="ecdsa")
    app = authn.Authenticator(
        new_api_server(session_store, bookmark_interval=1.0),
        tokens=authn.load_token_file(pki.token_file),
        client_ca=certs.load_cert(pki.ca_cert),
    )
    options = ServingOptions(
        port=0, cert_file=pki.serving_cert, key_file=pki.serving_key,
        client_ca_file=pki.ca_cert, shutdown_timeout=1,
    )
    with serve_in_thread(app, options) as running:
        url = f"https://127.0.0.1:{running.bound_port}"
        home = root / "home"
        home.mkdir()
        kubeconfig = root / "kubeconfig"
        write_kubeconfig(kubeconfig, url, pki.ca_cert, pki.admin_token)
        yield Server(url, pki.admin_token, pki.ca_cert, kubeconfig, home)


@pytest.fixture
def api(server: Server) -> Client:
    return server.client()


@pytest.fixture
def namespace(api: Client) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    resp = api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": name}})
    assert resp.status == 201, resp.body
    yield name
    api.delete(f"/api/v1/namespaces/{name}")
