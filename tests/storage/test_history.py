"""Restart, historic snapshots (list_at) and compaction: the contract, on every backend."""

from __future__ import annotations

import asyncio

import pytest

from shipyard.storage import CompactedError, FutureRevisionError

from .conftest import PREFIX, AnyStore, Stores, key, machine


async def test_restart_resumes_revisions_and_data(stores: Stores) -> None:
    store = await stores.open()
    base = store.revision
    await store.create(key("a"), machine("a", role="cp"))
    await store.create(key("b"), machine("b"))
    b = await store.update(key("b"), machine("b"))
    await store.create(key("c"), machine("c"))
    await store.delete(key("c"))
    before = store.list(PREFIX)
    await store.close()

    reopened = await stores.open()
    assert reopened.revision == base + 5
    assert reopened.list(PREFIX) == before
    assert reopened.get(key("b")) == b
    a = reopened.get(key("a"))
    assert a is not None and a.labels == {"role": "cp"}
    assert (await reopened.create(key("d"), machine("d"))).mod_revision == base + 6
    updated = await reopened.update(key("b"), machine("b"), expected_revision=base + 3)
    assert updated.mod_revision == base + 7


async def test_list_at_reads_a_snapshot(store: AnyStore) -> None:
    base = store.revision
    for name in ("a", "b", "c", "d"):
        await store.create(key(name), machine(name))
    snapshot = store.revision
    await store.update(key("a"), machine("a", changed="yes"))
    await store.delete(key("b"))
    await store.create(key("e"), machine("e"))

    entries = await store.list_at(PREFIX, snapshot)
    assert [(e.key, e.mod_revision - base) for e in entries] == [
        (key(n), r) for n, r in [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    ]
    assert entries[0].labels == {}
    assert entries[0].object()["metadata"]["resourceVersion"] == str(base + 1)
    page = await store.list_at(PREFIX, snapshot, start_after=key("a"), limit=2)
    assert [e.key for e in page] == [key("b"), key("c")]
    assert await store.list_at(PREFIX, base + 2) == entries[:2]
    assert await store.list_at("/registry/none/", snapshot) == []

    now = await store.list_at(PREFIX, store.revision, start_after=key("c"))
    assert [e.key for e in now] == [key("d"), key("e")]
    assert await store.list_at(PREFIX, store.revision) == store.list(PREFIX)[0]
    with pytest.raises(FutureRevisionError):
        await store.list_at(PREFIX, store.revision + 1)


async def test_compaction_keeps_live_objects_and_drops_history(stores: Stores) -> None:
    store = await stores.open()
    base = store.revision
    for name in ("a", "b", "c"):
        await store.create(key(name), machine(name))
    for i in range(5):
        await store.update(key("a"), machine("a", n=str(i)))
    await store.delete(key("b"))  # the newest revision is a tombstone
    live = store.list(PREFIX)

    await store.compact(store.revision)
    assert store.compacted_revision == base + 9
    assert store.list(PREFIX) == live
    assert await store.list_at(PREFIX, base + 9) == live[0]
    with pytest.raises(CompactedError):
        await store.list_at(PREFIX, base + 8)
    with pytest.raises(FutureRevisionError):
        await store.compact(base + 10)
    await store.compact(base + 3)  # already compacted: nothing to do
    assert store.compacted_revision == base + 9
    await store.close()

    reopened = await stores.open()
    assert (reopened.revision, reopened.compacted_revision) == (base + 9, base + 9)
    assert reopened.list(PREFIX) == live
    with pytest.raises(CompactedError):
        reopened.watch(PREFIX, base + 8)
    assert (await reopened.create(key("b"), machine("b"))).mod_revision == base + 10


async def test_partial_compaction_keeps_snapshots_after_it(store: AnyStore) -> None:
    base = store.revision
    await store.create(key("a"), machine("a"))
    await store.create(key("b"), machine("b"))
    await store.update(key("a"), machine("a", n="1"))  # 3
    snapshots = {3: await store.list_at(PREFIX, base + 3)}
    await store.delete(key("b"))  # 4
    await store.update(key("a"), machine("a", n="2"))  # 5
    snapshots.update({rev: await store.list_at(PREFIX, base + rev) for rev in range(4, 6)})
    await store.compact(base + 3)
    assert [e.mod_revision - base for e in snapshots[4]] == [3]
    for rev, entries in snapshots.items():
        assert await store.list_at(PREFIX, base + rev) == entries
    watch = store.watch(PREFIX, base + 3)
    events = [await watch.__anext__(), await watch.__anext__()]
    assert [(e.type, e.revision - base) for e in events] == [("DELETED", 4), ("MODIFIED", 5)]
    watch.close()


async def test_periodic_compaction_keeps_the_newest_revisions(stores: Stores) -> None:
    store = await stores.open(compaction_interval=0.01, keep_revisions=3)
    base = store.revision
    for i in range(10):
        await store.create(key(f"m-{i}"), machine(f"m-{i}"))
    while store.compacted_revision < base + 7:
        await asyncio.sleep(0.01)
    assert store.compacted_revision == base + 7
    assert len(store.list(PREFIX)[0]) == 10
    entries = await store.list_at(PREFIX, base + 7)
    assert [e.mod_revision - base for e in entries] == list(range(1, 8))
