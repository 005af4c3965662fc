"""Informers against the live server: sync, events, indexers, and the relist after a 410."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from shipyard.client import Client, Object, ObjectList, RESTMapper, WatchEvent
from shipyard.runtime import Informer
from tests.conftest import write_kubeconfig
from tests.integration.live import private_server
from tests.runtime.conftest import eventually


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def on_add(self, obj: Object) -> None:
        self.events.append(("add", obj["metadata"]["name"]))

    def on_update(self, old: Object, new: Object) -> None:
        self.events.append(("update", new["metadata"]["name"]))

    def on_delete(self, obj: Object) -> None:
        self.events.append(("delete", obj["metadata"]["name"]))


def cm(name: str, namespace: str, **labels: str) -> Object:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels}}


async def test_list_pages_then_watch_with_indexers(kube: Client, namespace: str) -> None:
    for i in range(5):
        await kube.create(cm(f"c{i}", namespace, team="a" if i % 2 else "b"))
    informer = Informer(kube, "v1", "ConfigMap", namespace, page_size=2)
    informer.add_indexer("team", lambda o: [o["metadata"].get("labels", {}).get("team", "")])
    recorder = Recorder()
    informer.add_event_handler(recorder)
    informer.start()
    try:
        assert await informer.wait_for_sync(10)
        names = {o["metadata"]["name"] for o in informer.cache.list()}
        assert {f"c{i}" for i in range(5)} <= names
        assert all(o["kind"] == "ConfigMap" for o in informer.cache.list())
        assert [o["metadata"]["name"] for o in informer.cache.by_index("team", "a")] == [
            "c1", "c3"]
        await kube.patch("v1", "ConfigMap", "c1", {"metadata": {"labels": {"team": "b"}}},
                         namespace)
        await kube.delete("v1", "ConfigMap", "c0", namespace)
        await eventually(lambda: ("delete", "c0") in recorder.events, what="delete event")
        assert ("update", "c1") in recorder.events
        assert [o["metadata"]["name"] for o in informer.cache.by_index("team", "a")] == ["c3"]
        assert informer.cache.get("c0", namespace) is None
        assert informer.cache.get("c1", namespace) is not None
        # a handler added late is told of what is already cached
        late = Recorder()
        informer.add_event_handler(late)
        assert sorted(late.events) == sorted(("add", n) for n in
                                             (o["metadata"]["name"] for o in
                                              informer.cache.list()))
    finally:
        await informer.stop()


class GatedWatches:
    """The real client, but each watch waits for `gate` before it is opened, so the test can
    let the server compact past the informer's resourceVersion first."""

    def __init__(self, inner: Client) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.watched_from: list[str | None] = []

    @property
    def mapper(self) -> RESTMapper:
        return self.inner.mapper

    async def get(self, api_version: str, kind: str, name: str,
                  namespace: str | None = None) -> Object:
        return await self.inner.get(api_version, kind, name, namespace)

    async def list(self, api_version: str, kind: str, namespace: str | None = None,
                   **kwargs: Any) -> ObjectList:
        return await self.inner.list(api_version, kind, namespace, **kwargs)

    async def watch(self, api_version: str, kind: str, namespace: str | None = None,
                    **kwargs: Any) -> AsyncGenerator[WatchEvent, None]:
        self.watched_from.append(kwargs.get("resource_version"))
        await self.gate.wait()
        async for event in self.inner.watch(api_version, kind, namespace, **kwargs):
            yield event


async def test_relist_after_compaction_410(tmp_path: Path) -> None:
    with private_server(tmp_path, compaction_interval=0.05, keep_revisions=1) as (api, app):
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig(kubeconfig, api.url, tmp_path / "pki" / "ca.crt", api.token or "")
        async with Client.from_kubeconfig(kubeconfig) as kube:
            ns = "default"
            prefix = f"r{uuid.uuid4().hex[:6]}"
            await kube.create(cm(f"{prefix}-a", ns, test=prefix))
            gated = GatedWatches(kube)
            informer = Informer(gated, "v1", "ConfigMap", ns,
                                label_selector=f"test={prefix}", backoff_initial=0.05)
            recorder = Recorder()
            informer.add_event_handler(recorder)
            informer.start()
            try:
                assert await informer.wait_for_sync(10)
                listed_rv = informer.last_sync_resource_version
                await eventually(lambda: gated.watched_from == [listed_rv], what="watch")
                # missed while the watch is not yet open: an add and a delete
                await kube.create(cm(f"{prefix}-b", ns, test=prefix))
                await kube.delete("v1", "ConfigMap", f"{prefix}-a", ns)
                await eventually(lambda: app.store.compacted_revision > int(listed_rv),
                                 what="compaction")
                gated.gate.set()
                await eventually(lambda: informer.relists == 1, what="relist")
                await eventually(lambda: ("delete", f"{prefix}-a") in recorder.events,
                                 what="missed delete")
                assert recorder.events[0] == ("add", f"{prefix}-a")
                assert sorted(recorder.events[1:]) == [("add", f"{prefix}-b"),
                                                       ("delete", f"{prefix}-a")]
                assert [o["metadata"]["name"] for o in informer.cache.list()] == [
                    f"{prefix}-b"]
                assert int(informer.last_sync_resource_version) > int(listed_rv)
            finally:
                await informer.stop()
