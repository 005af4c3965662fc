"""The runtime on `FakeClient`: how controllers get unit-tested without a server, and a check
that the fake's paged list and watch satisfy the informer."""

from __future__ import annotations

import asyncio

from shipyard.client import FakeClient, Object
from shipyard.runtime import Informer, Manager, Metrics, Request, Result
from tests.runtime.conftest import eventually


async def test_manager_on_the_fake_client(metrics: Metrics) -> None:
    fake = FakeClient()
    seen: list[Request] = []

    class Recorder:
        async def reconcile(self, req: Request) -> Result:
            seen.append(req)
            return Result()

    mgr = Manager(fake, metrics=metrics)
    await mgr.new_controller("fake", Recorder(), for_=("v1", "ConfigMap"),
                             owns=[("v1", "Secret")])
    await fake.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "owner", "namespace": "ns"}})
    task = asyncio.create_task(mgr.run())
    await eventually(lambda: Request("ns", "owner") in seen, what="reconcile")
    seen.clear()
    owner = await fake.get("v1", "ConfigMap", "owner", "ns")
    await fake.create({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "child", "namespace": "ns", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
            "uid": owner["metadata"]["uid"], "controller": True}]}})
    await eventually(lambda: Request("ns", "owner") in seen, what="owner mapped")
    assert Request("ns", "child") not in seen
    mgr.stop()
    await task


async def test_informer_on_the_fake_follows_changes() -> None:
    fake = FakeClient()
    informer = Informer(fake, "v1", "ConfigMap", "ns", page_size=1)
    names: list[str] = []

    class Handler:
        def on_add(self, obj: Object) -> None:
            names.append(obj["metadata"]["name"])

        def on_update(self, old: Object, new: Object) -> None:
            pass

        def on_delete(self, obj: Object) -> None:
            names.remove(obj["metadata"]["name"])

    informer.add_event_handler(Handler())
    for name in ("a", "b"):
        await fake.create({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "namespace": "ns"}})
    informer.start()
    try:
        assert await informer.wait_for_sync(5)
        assert names == ["a", "b"]
        await fake.create({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "c", "namespace": "ns"}})
        await fake.delete("v1", "ConfigMap", "a", "ns")
        await eventually(lambda: names == ["b", "c"], what="cache converged")
        assert informer.cache.keys() == ["ns/b", "ns/c"]
    finally:
        await informer.stop()
