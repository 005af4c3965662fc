"""The same scenarios on `Client` against the live server and on `FakeClient`: the fake earns its
place in unit tests only by answering as the server does."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from typing import Any

import pytest

from shipyard.apimachinery.errors import AlreadyExists, Conflict, Expired, NotFound
from shipyard.client import FakeClient, ReaderWriter, WatchEvent


def cm(name: str, namespace: str, labels: dict[str, str] | None = None,
       **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "data": data}


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


async def test_writes_bump_versions_and_conflict(rw: ReaderWriter, namespace: str) -> None:
    a = await rw.create(cm("a", namespace, x="1"))
    assert a["metadata"]["uid"] and a["metadata"]["creationTimestamp"]
    with pytest.raises(AlreadyExists):
        await rw.create(cm("a", namespace))
    b = await rw.update({**a, "data": {"x": "2"}})
    assert rv(b) > rv(a) and b["metadata"]["uid"] == a["metadata"]["uid"]
    with pytest.raises(Conflict):
        await rw.update({**a, "data": {"x": "3"}})
    c = await rw.patch("v1", "ConfigMap", "a", {"data": {"y": "1"}}, namespace)
    assert c["data"] == {"x": "2", "y": "1"} and rv(c) > rv(b)
    d = await rw.patch("v1", "ConfigMap", "a", [{"op": "add", "path": "/data/z", "value": "9"}],
                       namespace, patch_type="json")
    assert d["data"]["z"] == "9"
    with pytest.raises(Conflict):
        await rw.patch("v1", "ConfigMap", "a",
                       {"metadata": {"resourceVersion": str(rv(a))}, "data": {"q": "1"}},
                       namespace)
    with pytest.raises(NotFound):
        await rw.patch("v1", "ConfigMap", "nope", {"data": {}}, namespace)
    status = await rw.delete("v1", "ConfigMap", "a", namespace)
    assert (status["kind"], status["status"]) == ("Status", "Success")
    with pytest.raises(NotFound):
        await rw.get("v1", "ConfigMap", "a", namespace)
    with pytest.raises(NotFound):
        await rw.delete("v1", "ConfigMap", "a", namespace)


async def test_finalizers_hold_deletion(rw: ReaderWriter, namespace: str) -> None:
    obj = cm("f", namespace)
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    await rw.create(obj)
    held = await rw.delete("v1", "ConfigMap", "f", namespace)
    assert held["metadata"]["deletionTimestamp"]
    again = await rw.get("v1", "ConfigMap", "f", namespace)
    assert again["metadata"]["deletionTimestamp"] == held["metadata"]["deletionTimestamp"]
    await rw.patch("v1", "ConfigMap", "f", {"metadata": {"finalizers": None}}, namespace)
    with pytest.raises(NotFound):
        await rw.get("v1", "ConfigMap", "f", namespace)


async def test_update_ignores_status_of_a_status_subresource(rw: ReaderWriter) -> None:
    name = f"fake-check-{id(rw) % 100000}"
    ns = await rw.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert ns["metadata"].get("namespace") is None
    try:
        ns["status"] = {"phase": "Terminating"}
        ns["metadata"]["labels"] = {"a": "b"}
        updated = await rw.update(ns)
        assert updated["metadata"]["labels"]["a"] == "b"
        assert updated.get("status", {}).get("phase") != "Terminating"  # update ignores status
    finally:
        await rw.delete("v1", "Namespace", name)


async def test_list_selectors_and_pages(rw: ReaderWriter, namespace: str) -> None:
    for i in range(5):
        await rw.create(cm(f"s{i}", namespace, {"tier": "a" if i < 3 else "b"}))
    tier_a = await rw.list("v1", "ConfigMap", namespace, label_selector="tier=a")
    assert [o["metadata"]["name"] for o in tier_a["items"]] == ["s0", "s1", "s2"]
    by_name = await rw.list("v1", "ConfigMap", namespace, field_selector="metadata.name=s4")
    assert [o["metadata"]["name"] for o in by_name["items"]] == ["s4"]
    names: list[str] = []
    token = None
    while True:
        page = await rw.list("v1", "ConfigMap", namespace, label_selector="tier", limit=2,
                             continue_=token)
        assert len(page["items"]) <= 2
        names += [o["metadata"]["name"] for o in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert names == [f"s{i}" for i in range(5)]
    assert int(page["metadata"]["resourceVersion"]) > 0


async def test_watch_replays_from_resource_version(rw: ReaderWriter, namespace: str) -> None:
    first = await rw.create(cm("w1", namespace))
    await rw.create(cm("w2", namespace, {"pick": "me"}))
    await rw.patch("v1", "ConfigMap", "w1", {"data": {"k": "v"}}, namespace)
    await rw.delete("v1", "ConfigMap", "w1", namespace)
    seen: list[WatchEvent] = []
    async with aclosing(rw.watch("v1", "ConfigMap", namespace, resource_version=str(rv(first)),
                                 allow_bookmarks=False)) as events:
        async for event in events:
            seen.append(event)
            if event["type"] == "DELETED":
                break
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in seen] == [
        ("ADDED", "w2"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    assert rv(seen[-1]["object"]) > rv(seen[-2]["object"])
    labelled: list[WatchEvent] = []
    async with aclosing(rw.watch("v1", "ConfigMap", namespace, label_selector="pick=me",
                                 allow_bookmarks=False, timeout_seconds=1)) as events:
        async for event in events:
            labelled.append(event)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in labelled] == [("ADDED", "w2")]


async def test_fake_watch_expires_after_compaction() -> None:
    fake = FakeClient()
    old = await fake.create(cm("x", "default"))
    await fake.create(cm("y", "default"))
    fake.compact()
    with pytest.raises(Expired, match="too old resource version"):
        async with aclosing(fake.watch("v1", "ConfigMap", "default",
                                       resource_version=str(rv(old)))) as events:
            await anext(events)
    live = fake.watch("v1", "ConfigMap", "default", resource_version=str(fake.revision))
    async with aclosing(live) as events:
        task = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        await fake.create(cm("z", "default"))
        event = await asyncio.wait_for(task, 1)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "z")
