"""The API server on etcd: the production composition (API server, authentication, TLS) over an
`EtcdStore` on a real local etcd, driven through real HTTP and real kubectl; and the
``shipyard apiserver --storage etcd`` command starting and stopping an etcd of its own.

One etcd and one server for the module; tests isolate themselves by namespace and names. These
fail, rather than skip, without an etcd binary: CI builds one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.apiserver import authn, certs
from shipyard.apiserver.serving import ServingOptions, serve_in_thread
from shipyard.cli.apiserver import new_api_server
from shipyard.storage.etcd import EtcdStore
from shipyard.storage.etcd_gateway import EtcdClient
from shipyard.storage.etcd_process import LocalEtcd
from tests.conftest import write_kubeconfig
from tests.integration.live import Watch, crd, install_crd, is_bookmark, query, wait_for
from tests.kube import Client, Server


@dataclass
class EtcdBacked:
    server: Server
    api: Client
    etcd: LocalEtcd
    store: EtcdStore


@pytest.fixture(scope="module")
def backed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdBacked]:
    root = tmp_path_factory.mktemp("etcd-apiserver")
    etcd = LocalEtcd(root / "etcd")
    etcd.start()
    try:
        pki = certs.ensure_pki(root / "pki", key_type="ecdsa")
        store = EtcdStore([etcd.endpoint], compaction_interval=0)
        app = authn.Authenticator(
            new_api_server(store, bookmark_interval=1.0),
            tokens=authn.load_token_file(pki.token_file),
            client_ca=certs.load_cert(pki.ca_cert),
        )
        options = ServingOptions(port=0, cert_file=pki.serving_cert, key_file=pki.serving_key,
                                 client_ca_file=pki.ca_cert, shutdown_timeout=1)
        with serve_in_thread(app, options) as running:
            url = f"https://127.0.0.1:{running.bound_port}"
            (root / "home").mkdir()
            write_kubeconfig(root / "kubeconfig", url, pki.ca_cert, pki.admin_token)
            server = Server(url, pki.admin_token, pki.ca_cert, root / "kubeconfig", root / "home")
            yield EtcdBacked(server, server.client(), etcd, store)
    finally:
        etcd.stop()


@pytest.fixture
def namespace(backed: EtcdBacked) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    resp = backed.api.post("/api/v1/namespaces", {"metadata": {"name": name}})
    assert resp.status == 201, resp.body
    yield name
    backed.api.delete(f"/api/v1/namespaces/{name}")


def configmap(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels}, "data": {"k": name}}


def compact_etcd(endpoint: str, revision: int) -> None:
    async def compact() -> None:
        client = EtcdClient([endpoint])
        await client.start()
        try:
            await client.compact(revision)
        finally:
            await client.close()

    asyncio.run(compact())


def test_crud_selectors_paging_and_conflicts(backed: EtcdBacked, namespace: str) -> None:
    api = backed.api
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    for i in range(5):
        resp = api.post(path, configmap(f"cm-{i}", tier="web" if i % 2 else "db"))
        assert resp.status == 201, resp.body
    got = api.get(f"{path}/cm-1").json()
    assert got["data"] == {"k": "cm-1"} and int(got["metadata"]["resourceVersion"]) > 0
    assert api.post(path, configmap("cm-1")).json()["reason"] == "AlreadyExists"

    web = api.get(query(path, labelSelector="tier=web")).json()
    assert [i["metadata"]["name"] for i in web["items"]] == ["cm-1", "cm-3"]

    first = api.get(query(path, limit=2)).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["cm-0", "cm-1"]
    api.delete(f"{path}/cm-2")  # the pages still read the first page's snapshot
    second = api.get(query(path, limit=2, **{"continue": first["metadata"]["continue"]})).json()
    third = api.get(query(path, limit=2, **{"continue": second["metadata"]["continue"]})).json()
    assert [i["metadata"]["name"] for i in second["items"] + third["items"]] == [
        "cm-2", "cm-3", "cm-4"]
    assert "continue" not in third["metadata"] or not third["metadata"]["continue"]

    updated = {**got, "data": {"k": "changed"}}
    resp = api.put(f"{path}/cm-1", updated)
    assert resp.status == 200, resp.body
    assert int(resp.json()["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])
    stale = api.put(f"{path}/cm-1", {**got, "data": {"k": "stale"}})
    assert stale.status == 409 and stale.json()["reason"] == "Conflict", stale.body

    assert api.delete(f"{path}/cm-1").status == 200
    assert api.get(f"{path}/cm-1").status == 404
    assert api.delete(f"{path}/cm-1").status == 404


def test_watch_from_a_resource_version(backed: EtcdBacked, namespace: str) -> None:
    api = backed.api
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    start = api.post(path, configmap("w-0")).json()["metadata"]["resourceVersion"]
    api.post(path, configmap("w-1"))
    api.patch(f"{path}/w-0", {"data": {"k": "patched"}})
    api.delete(f"{path}/w-1")
    with Watch(api, query(path, watch="true", resourceVersion=start)) as watch:
        events = [watch.until(lambda e: True, skip=is_bookmark) for _ in range(3)]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "w-1"), ("MODIFIED", "w-0"), ("DELETED", "w-1")]
        versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert versions == sorted(versions) and versions[0] > int(start)
        api.post(path, configmap("w-2"))
        live = watch.until(lambda e: e["type"] == "ADDED", skip=is_bookmark)
        assert live["object"]["metadata"]["name"] == "w-2"


def test_gone_after_compaction(backed: EtcdBacked, namespace: str) -> None:
    api = backed.api
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    old = api.post(path, configmap("c-0")).json()["metadata"]["resourceVersion"]
    api.post(path, configmap("c-1"))
    first = api.get(query(path, limit=1)).json()
    newest = api.post(path, configmap("c-2")).json()["metadata"]["resourceVersion"]
    compact_etcd(backed.etcd.endpoint, int(newest))  # as another API server would

    exact = api.get(query(path, resourceVersion=old, resourceVersionMatch="Exact"))
    assert exact.status == 410, exact.body
    assert exact.json()["message"] == f"too old resource version: {old} ({newest})"
    expired = api.get(query(path, limit=1, **{"continue": first["metadata"]["continue"]}))
    assert expired.status == 410 and expired.json()["reason"] == "Expired"
    with Watch(api, query(path, watch="true", resourceVersion=old)) as watch:
        error = watch.next()
    assert error["type"] == "ERROR" and error["object"]["code"] == 410
    assert api.get(path).status == 200


def test_custom_resource_round_trip(backed: EtcdBacked, namespace: str) -> None:
    api = backed.api
    group = f"etcd{uuid.uuid4().hex[:8]}.example.com"
    install_crd(api, crd(group, "widgets", "Widget"))
    path = f"/apis/{group}/v1/namespaces/{namespace}/widgets"
    body = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 3, "nested": {"list": [1, "two", None]}}}
    created = api.post(path, body)
    assert created.status == 201, created.body
    got = api.get(f"{path}/w").json()
    assert got["spec"] == body["spec"]
    assert got["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in api.get(path).json()["items"]] == ["w"]
    api.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{group}")


@pytest.mark.kubectl
def test_kubectl_apply_and_get_yaml(backed: EtcdBacked, namespace: str) -> None:
    server = backed.server
    manifest = yaml.safe_dump(configmap("applied", app="demo"))
    out = server.kubectl("-n", namespace, "apply", "-f", "-", stdin=manifest).stdout
    assert "configmap/applied created" in out
    changed = yaml.safe_dump({**configmap("applied", app="demo"), "data": {"k": "v2"}})
    out = server.kubectl("-n", namespace, "apply", "-f", "-", stdin=changed).stdout
    assert "configmap/applied configured" in out
    got = yaml.safe_load(server.kubectl("-n", namespace, "get", "configmap", "applied",
                                        "-o", "yaml").stdout)
    assert got["data"] == {"k": "v2"}
    assert got["metadata"]["labels"] == {"app": "demo"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]
    assert got["metadata"]["resourceVersion"] == backed.api.get(
        f"/api/v1/namespaces/{namespace}/configmaps/applied").json()["metadata"]["resourceVersion"]
    listed = server.kubectl("-n", namespace, "get", "configmaps", "-l", "app=demo",
                            "-o", "name").stdout.split()
    assert listed == ["configmap/applied"]


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def run_cli_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], Client]:
    port_file = data_dir / "port"
    port_file.unlink(missing_ok=True)
    with (data_dir.parent / "cli.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli.main", "apiserver", "--data-dir", str(data_dir),
             "--port", "0", "--port-file", str(port_file), "--storage", "etcd",
             "--shutdown-timeout", "1", "--log-level", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        )
    wait_for(lambda: process.poll() is not None or port_file.exists(), timeout=60,
             what="the port file")
    assert process.poll() is None, (data_dir.parent / "cli.log").read_text()
    pki = certs.ensure_pki(data_dir / "pki", key_type="ecdsa")
    url = f"https://127.0.0.1:{port_file.read_text().strip()}"
    return process, Client(url, pki.admin_token, pki.ca_cert)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM; the command dies of it once shut down, as it does on SQLite."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == -signal.SIGTERM


def test_the_command_runs_its_own_etcd_under_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    process, api = run_cli_server(data_dir)
    try:
        resp = api.post("/api/v1/namespaces", {"metadata": {"name": "kept"}})
        assert resp.status == 201, resp.body
        assert processes_mentioning(f"--data-dir={data_dir / 'etcd'}")
    finally:
        stop(process)
    deadline = time.monotonic() + 10
    while processes_mentioning(f"--data-dir={data_dir / 'etcd'}"):
        assert time.monotonic() < deadline, "etcd outlived the API server"
        time.sleep(0.05)
    assert (data_dir / "etcd" / "member").is_dir()
    assert not (data_dir / "state.db").exists()

    process, api = run_cli_server(data_dir)
    try:
        assert api.get("/api/v1/namespaces/kept").status == 200
    finally:
        stop(process)
    assert os.path.exists(data_dir / "kubeconfig")
