"""Watch: live, from recent history, from older history (SQLite's log, an etcd stream of its
own), and the switch to live events, on every backend."""

from __future__ import annotations

import asyncio

import pytest

import shipyard.storage.sqlite as sqlite_module
from shipyard.storage import (
    CompactedError,
    FutureRevisionError,
    StorageError,
    Watch,
    WatchEvent,
)
from shipyard.storage.watching import WatchOverflowError

from .conftest import PREFIX, AnyStore, Stores, key, machine


async def take(watch: Watch, count: int) -> list[WatchEvent]:
    events: list[WatchEvent] = []
    async for event in watch:
        events.append(event)
        if len(events) == count:
            break
    return events


async def churn(store: AnyStore, count: int, start: int = 0) -> None:
    """``count`` writes: creates, then updates of the same keys."""
    for i in range(start, start + count):
        name = f"m-{i % 7}"
        if store.get(key(name)) is None:
            await store.create(key(name), machine(name))
        else:
            await store.update(key(name), machine(name, n=str(i)))


async def test_live_events_in_revision_order(store: AnyStore) -> None:
    base = store.revision
    watch = store.watch(PREFIX, store.revision)
    await store.create(key("m-1"), machine("m-1", role="worker"))
    await store.create("/registry/other/x", {"metadata": {"name": "x"}})
    await store.update(key("m-1"), machine("m-1", role="cp"))
    await store.delete(key("m-1"))
    added, modified, deleted = await take(watch, 3)
    assert (added.type, added.revision, added.prev) == ("ADDED", base + 1, None)
    assert (modified.type, modified.revision) == ("MODIFIED", base + 3)
    assert modified.prev == added.entry
    assert modified.entry.labels == {"role": "cp"}
    assert (deleted.type, deleted.revision, deleted.prev) == ("DELETED", base + 4, modified.entry)
    assert deleted.entry.object()["metadata"]["resourceVersion"] == str(base + 4)
    assert (deleted.entry.mod_revision, deleted.entry.create_revision) == (base + 4, base + 1)
    watch.close()


async def test_concurrent_writes_arrive_once_each_in_order(store: AnyStore) -> None:
    base = store.revision
    watch = store.watch(PREFIX, base)
    await asyncio.gather(*(store.create(key(f"m-{i}"), machine(f"m-{i}")) for i in range(50)))
    events = await take(watch, 50)
    assert [e.revision for e in events] == list(range(base + 1, base + 51))
    assert {e.entry.key for e in events} == {key(f"m-{i}") for i in range(50)}


async def test_watch_from_history(store: AnyStore) -> None:
    base = store.revision
    await churn(store, 10)
    watch = store.watch(PREFIX, base + 4)
    await churn(store, 3, start=10)
    events = await take(watch, 9)
    assert [e.revision for e in events] == list(range(base + 5, base + 14))
    assert events[0].type == "ADDED" and events[-1].type == "MODIFIED"


async def test_watch_older_than_the_history_replays_then_goes_live(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "REPLAY_PAGE", 3)
    store = await stores.open(history_size=4)
    base = store.revision
    await churn(store, 20)
    await store.create("/registry/other/x", {"metadata": {"name": "x"}})  # 21, not watched
    watch = store.watch(PREFIX, base + 2)
    writer = asyncio.create_task(churn(store, 20, start=20))  # 22..41, during the replay
    events = await take(watch, 38)
    await writer
    assert [e.revision - base for e in events] == [r for r in range(3, 42) if r != 21]
    replayed = {e.revision - base: e for e in events}
    assert replayed[7].type == "ADDED" and replayed[7].prev is None
    assert replayed[8].type == "MODIFIED"
    assert replayed[8].prev is not None and replayed[8].prev.mod_revision == base + 1
    assert replayed[8].entry.labels == {"n": "7"}
    assert replayed[8].entry.object()["metadata"]["resourceVersion"] == str(base + 8)
    watch.close()


async def test_watch_after_restart_replays_history(stores: Stores) -> None:
    store = await stores.open()
    base = store.revision
    await churn(store, 8)
    await store.delete(key("m-0"))
    await store.close()

    reopened = await stores.open()
    watch = reopened.watch(PREFIX, base + 5)
    await reopened.create(key("late"), machine("late"))
    events = await take(watch, 5)
    assert [(e.type, e.revision - base) for e in events] == [
        ("ADDED", 6),
        ("ADDED", 7),
        ("MODIFIED", 8),
        ("DELETED", 9),
        ("ADDED", 10),
    ]
    deleted = events[3]
    assert deleted.entry.object()["metadata"]["resourceVersion"] == str(base + 9)
    assert deleted.prev is not None and deleted.prev.mod_revision == base + 8
    watch.close()


async def test_watch_bounds(store: AnyStore) -> None:
    base = store.revision
    await churn(store, 10)
    with pytest.raises(FutureRevisionError):
        store.watch(PREFIX, base + 11)
    await store.compact(base + 6)
    with pytest.raises(CompactedError) as caught:
        store.watch(PREFIX, base + 5)
    assert (caught.value.requested, caught.value.compacted) == (base + 5, base + 6)
    watch = store.watch(PREFIX, base + 6)
    assert [e.revision - base for e in await take(watch, 4)] == [7, 8, 9, 10]
    watch.close()


async def test_slow_watcher_is_terminated(stores: Stores) -> None:
    store = await stores.open(watch_queue_limit=5)
    base = store.revision
    slow = store.watch(PREFIX, base)
    fast = store.watch(PREFIX, base)
    got: list[int] = []
    for i in range(8):
        await store.create(key(f"m-{i}"), machine(f"m-{i}"))
        got.extend(e.revision - base for e in await take(fast, 1))
    assert got == list(range(1, 9))
    assert store.watcher_count == 1
    with pytest.raises(WatchOverflowError):
        await take(slow, 1)
    assert isinstance(WatchOverflowError("x"), StorageError)


async def test_close_ends_iteration_and_frees_the_watcher(store: AnyStore) -> None:
    base = store.revision
    watch = store.watch(PREFIX, base)
    other = store.watch(PREFIX + "default/", base)
    assert store.watcher_count == 2
    waiting = asyncio.create_task(take(watch, 1))
    await asyncio.sleep(0)
    watch.close()
    assert await waiting == []
    assert store.watcher_count == 1
    await store.create(key("m-1"), machine("m-1"))
    assert [e.revision - base for e in await take(other, 1)] == [1]
    other.close()
    assert store.watcher_count == 0


async def test_closing_the_store_ends_every_watch(stores: Stores) -> None:
    store = await stores.open(history_size=1)
    base = store.revision
    await churn(store, 3)
    watch = store.watch(PREFIX, base + 3)
    from_older_history = store.watch(PREFIX, base)
    assert len(await take(from_older_history, 3)) == 3
    waiting = asyncio.gather(take(watch, 1), take(from_older_history, 1))
    await asyncio.sleep(0)
    await store.close()
    assert await waiting == [[], []]
    assert store.watcher_count == 0
    with pytest.raises(StorageError):
        store.watch(PREFIX, base)
