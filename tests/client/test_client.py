"""`Client` against the live Shipyard server: kubeconfig, CRUD, every patch type, delete
options, watches with bookmarks and the in-stream 410, discovery mapping and the errors."""

from __future__ import annotations

import asyncio
import base64
import gc
import uuid
import warnings
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard import __version__
from shipyard.apimachinery.errors import (
    AlreadyExists,
    Conflict,
    Expired,
    Gone,
    Invalid,
    NotFound,
    Unauthorized,
)
from shipyard.client import Client, ClientClosedError, NoKindMatchError, load_kubeconfig
from tests.integration.live import private_server
from tests.kube import Server


def cm(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace}, "data": data}


async def test_a_closed_client_refuses_requests_rather_than_reopening(server: Server) -> None:
    client = Client.from_kubeconfig(server.kubeconfig)
    assert (await client.get("v1", "Namespace", "default"))["metadata"]["name"] == "default"
    await client.close()
    with pytest.raises(ClientClosedError, match="is closed"):
        await client.get("v1", "Namespace", "default")
    await client.close()  # idempotent


async def _cancel_watches_then_close(server: Server) -> None:
    client = Client.from_kubeconfig(server.kubeconfig)

    async def watch() -> None:
        async for _ in client.watch("v1", "Namespace"):
            pass

    watches = [asyncio.create_task(watch()) for _ in range(4)]
    await asyncio.sleep(0.3)
    for task in watches:
        task.cancel()
    await asyncio.gather(*watches, return_exceptions=True)
    await client.close()


async def test_close_ends_the_connections_of_cancelled_watches(server: Server) -> None:
    # A cancelled watch's TLS connection is shut down gracefully by aiohttp; a loop ending right
    # after close() (asyncio.run, a test) must not leave its socket open.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(2):
            await asyncio.to_thread(asyncio.run, _cancel_watches_then_close(server))
            gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_kubeconfig_context_and_ca(server: Server, tmp_path: Path) -> None:
    config = load_kubeconfig(server.kubeconfig)
    assert config.server == server.url
    assert config.bearer_token() == server.token
    assert config.namespace == "default"
    # a file-based CA and a tokenFile, relative to the kubeconfig's directory
    doc = yaml.safe_load(server.kubeconfig.read_text())
    cluster = doc["clusters"][0]["cluster"]
    (tmp_path / "ca.crt").write_bytes(base64.b64decode(cluster.pop("certificate-authority-data")))
    cluster["certificate-authority"] = "ca.crt"
    (tmp_path / "token").write_text(server.token + "\n")
    doc["users"][0]["user"] = {"tokenFile": "token"}
    doc["contexts"][0]["context"]["namespace"] = "kube-system"
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    async with Client.from_kubeconfig(path) as client:
        assert client.namespace == "kube-system"
        ns = await client.get("v1", "Namespace", "kube-system")
        assert ns["metadata"]["name"] == "kube-system"


async def test_wrong_token_is_unauthorized(server: Server, tmp_path: Path) -> None:
    doc = yaml.safe_load(server.kubeconfig.read_text())
    doc["users"][0]["user"] = {"token": "nope"}
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    async with Client.from_kubeconfig(path) as client:
        with pytest.raises(Unauthorized):
            await client.get("v1", "Namespace", "default")


async def test_crud_and_errors(kube: Client, namespace: str) -> None:
    created = await kube.create(cm("a", namespace, k="1"))
    assert created["metadata"]["uid"] and created["data"] == {"k": "1"}
    with pytest.raises(AlreadyExists):
        await kube.create(cm("a", namespace))
    got = await kube.get("v1", "ConfigMap", "a", namespace)
    got["data"]["k"] = "2"
    updated = await kube.update(got)
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    with pytest.raises(Conflict):
        await kube.update(got)  # stale resourceVersion
    with pytest.raises(NotFound) as err:
        await kube.get("v1", "ConfigMap", "missing", namespace)
    assert err.value.details["name"] == "missing"
    with pytest.raises(Invalid):
        await kube.create(cm("Not_Valid", namespace))
    deleted = await kube.delete("v1", "ConfigMap", "a", namespace,
                                preconditions={"uid": created["metadata"]["uid"]})
    assert (deleted["kind"], deleted["status"], deleted["details"]["uid"]) == (
        "Status", "Success", created["metadata"]["uid"])
    with pytest.raises(NotFound):
        await kube.get("v1", "ConfigMap", "a", namespace)


async def test_delete_precondition_conflict(kube: Client, namespace: str) -> None:
    await kube.create(cm("p", namespace))
    with pytest.raises(Conflict, match="UID in the precondition"):
        await kube.delete("v1", "ConfigMap", "p", namespace, propagation_policy="Foreground",
                          preconditions={"uid": "00000000-0000-0000-0000-000000000000"})


async def test_patch_types(kube: Client, namespace: str) -> None:
    await kube.create(cm("p", namespace, a="1"))
    merged = await kube.patch("v1", "ConfigMap", "p", {"data": {"b": "2"}}, namespace)
    assert merged["data"] == {"a": "1", "b": "2"}
    jp = await kube.patch("v1", "ConfigMap", "p", [{"op": "remove", "path": "/data/a"}],
                          namespace, patch_type="json")
    assert jp["data"] == {"b": "2"}
    smp = await kube.patch("v1", "ConfigMap", "p", {"metadata": {"labels": {"x": "y"}}},
                           namespace, patch_type="strategic")
    assert smp["metadata"]["labels"] == {"x": "y"}
    applied = await kube.apply(cm("p", namespace, c="3"), field_manager="shipyard-test")
    assert applied["data"]["c"] == "3"
    managers = {e["manager"] for e in applied["metadata"]["managedFields"]}
    assert "shipyard-test" in managers
    with pytest.raises(Conflict):
        await kube.apply(cm("p", namespace, c="4"), field_manager="other")
    forced = await kube.apply(cm("p", namespace, c="4"), field_manager="other", force=True)
    assert forced["data"]["c"] == "4"
    with pytest.raises(ValueError):
        await kube.patch("v1", "ConfigMap", "p", {}, namespace, patch_type="apply")


async def test_list_pages_and_selectors(kube: Client, namespace: str) -> None:
    for i in range(5):
        obj = cm(f"l{i}", namespace)
        obj["metadata"]["labels"] = {"even": str(i % 2 == 0).lower()}
        await kube.create(obj)
    page = await kube.list("v1", "ConfigMap", namespace, limit=2)
    names = [o["metadata"]["name"] for o in page["items"]]
    while page["metadata"].get("continue"):
        page = await kube.list("v1", "ConfigMap", namespace, limit=2,
                               continue_=page["metadata"]["continue"])
        names += [o["metadata"]["name"] for o in page["items"]]
    assert [n for n in names if n.startswith("l")] == [f"l{i}" for i in range(5)]
    even = await kube.list("v1", "ConfigMap", namespace, label_selector="even=true")
    assert [o["metadata"]["name"] for o in even["items"]] == ["l0", "l2", "l4"]


async def test_watch_events_and_bookmarks(kube: Client, namespace: str) -> None:
    start = await kube.list("v1", "ConfigMap", namespace)
    rv = start["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []

    async def consume() -> None:
        async with aclosing(kube.watch("v1", "ConfigMap", namespace, resource_version=rv,
                                       timeout_seconds=30)) as events:
            async for event in events:
                if event["type"] == "BOOKMARK":
                    seen.append(("BOOKMARK", event["object"]["metadata"]["resourceVersion"]))
                    if any(t == "DELETED" for t, _ in seen):
                        return
                else:
                    seen.append((event["type"], event["object"]["metadata"]["name"]))

    task = asyncio.create_task(consume())
    await kube.create(cm("w", namespace))
    await kube.patch("v1", "ConfigMap", "w", {"data": {"x": "1"}}, namespace)
    await kube.delete("v1", "ConfigMap", "w", namespace)
    await asyncio.wait_for(task, 10)
    changes = [e for e in seen if e[0] != "BOOKMARK"]
    assert changes == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert seen[-1][0] == "BOOKMARK"


async def test_large_objects_stream_intact(kube: Client, namespace: str) -> None:
    big = "x" * 300_000  # several of aiohttp's read buffers on one line
    rv = (await kube.list("v1", "ConfigMap", namespace))["metadata"]["resourceVersion"]
    await kube.create(cm("big", namespace, blob=big))
    async with aclosing(kube.watch("v1", "ConfigMap", namespace, resource_version=rv,
                                   allow_bookmarks=False, timeout_seconds=10)) as events:
        event = await anext(events)
    assert event["type"] == "ADDED" and event["object"]["data"]["blob"] == big


async def test_watch_from_compacted_revision_raises_expired(tmp_path: Path) -> None:
    with private_server(tmp_path, compaction_interval=0.05, keep_revisions=1) as (api, app):
        kubeconfig = _kubeconfig_for(tmp_path, api.url, api.token or "", tmp_path / "pki")
        async with Client.from_kubeconfig(kubeconfig) as kube:
            first = await kube.create(cm(f"c-{uuid.uuid4().hex[:6]}", "default"))
            for _ in range(3):
                await kube.create(cm(f"c-{uuid.uuid4().hex[:6]}", "default"))
            old = int(first["metadata"]["resourceVersion"])
            while app.store.compacted_revision <= old:
                await asyncio.sleep(0.02)
            with pytest.raises(Expired) as err:
                async with aclosing(kube.watch("v1", "ConfigMap", "default",
                                               resource_version=str(old))) as events:
                    async for _ in events:
                        pass
            assert isinstance(err.value, Gone) and err.value.code == 410


def _kubeconfig_for(root: Path, url: str, token: str, pki: Path) -> Path:
    from tests.conftest import write_kubeconfig

    path = root / "kubeconfig"
    write_kubeconfig(path, url, pki / "ca.crt", token)
    return path


async def test_discovery_mapping_and_user_agent(kube: Client) -> None:
    lease = await kube.mapper.mapping("coordination.k8s.io/v1", "Lease")
    assert (lease.resource, lease.namespaced) == ("leases", True)
    ns = await kube.mapper.mapping("v1", "Namespace")
    assert (ns.resource, ns.namespaced, "status" in ns.subresources) == (
        "namespaces", False, True)
    with pytest.raises(NoKindMatchError):
        await kube.mapper.mapping("v1", "NoSuchKind")
    with pytest.raises(NoKindMatchError):
        await kube.mapper.mapping("nosuch.example.com/v1", "Thing")
    assert kube.user_agent == f"shipyard/{__version__}"


async def test_client_certificate_data(server: Server, tmp_path: Path) -> None:
    pki = server.ca_file.parent
    doc = yaml.safe_load(server.kubeconfig.read_text())
    doc["users"][0]["user"] = {
        "client-certificate-data": base64.b64encode((pki / "admin.crt").read_bytes()).decode(),
        "client-key-data": base64.b64encode((pki / "admin.key").read_bytes()).decode(),
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    async with Client.from_kubeconfig(path) as client:
        assert (await client.get("v1", "Namespace", "default"))["metadata"]["name"] == "default"
