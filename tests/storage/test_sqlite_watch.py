"""Watch: live, from the in-memory history, from the SQLite log, and the switch between them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import shipyard.storage.sqlite as sqlite_module
from shipyard.storage import (
    CompactedError,
    FutureRevisionError,
    SQLiteStore,
    StorageError,
    WatchEvent,
)
from shipyard.storage.watching import Watcher, WatchOverflowError

from .conftest import PREFIX, key, machine


async def take(watch: Watcher, count: int) -> list[WatchEvent]:
    events = []
    async for event in watch:
        events.append(event)
        if len(events) == count:
            break
    return events


async def churn(store: SQLiteStore, count: int, start: int = 0) -> None:
    """``count`` writes: creates, then updates of the same keys."""
    for i in range(start, start + count):
        name = f"m-{i % 7}"
        if store.get(key(name)) is None:
            await store.create(key(name), machine(name))
        else:
            await store.update(key(name), machine(name, n=str(i)))


async def test_live_events_in_revision_order(store: SQLiteStore) -> None:
    watch = store.watch(PREFIX, store.revision)
    await store.create(key("m-1"), machine("m-1", role="worker"))
    await store.create("/registry/other/x", {"metadata": {"name": "x"}})
    await store.update(key("m-1"), machine("m-1", role="cp"))
    await store.delete(key("m-1"))
    added, modified, deleted = await take(watch, 3)
    assert (added.type, added.revision, added.prev) == ("ADDED", 1, None)
    assert (modified.type, modified.revision) == ("MODIFIED", 3)
    assert modified.prev == added.entry
    assert modified.entry.labels == {"role": "cp"}
    assert (deleted.type, deleted.revision, deleted.prev) == ("DELETED", 4, modified.entry)
    assert deleted.entry.object()["metadata"]["resourceVersion"] == "4"
    assert deleted.entry.mod_revision == 4
    watch.close()


async def test_concurrent_writes_arrive_once_each_in_order(store: SQLiteStore) -> None:
    watch = store.watch(PREFIX, 0)
    await asyncio.gather(*(store.create(key(f"m-{i}"), machine(f"m-{i}")) for i in range(50)))
    events = await take(watch, 50)
    assert [e.revision for e in events] == list(range(1, 51))
    assert {e.entry.key for e in events} == {key(f"m-{i}") for i in range(50)}


async def test_watch_from_history(store: SQLiteStore) -> None:
    await churn(store, 10)
    watch = store.watch(PREFIX, 4)
    await churn(store, 3, start=10)
    events = await take(watch, 9)
    assert [e.revision for e in events] == list(range(5, 14))
    assert events[0].type == "ADDED" and events[-1].type == "MODIFIED"


async def test_watch_replays_from_the_log_then_goes_live(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "REPLAY_PAGE", 3)
    store = SQLiteStore(db_path, compaction_interval=0, history_size=4)
    await store.open()
    try:
        await churn(store, 20)
        await store.create("/registry/other/x", {"metadata": {"name": "x"}})  # 21, not watched
        watch = store.watch(PREFIX, 2)
        writer = asyncio.create_task(churn(store, 20, start=20))  # 22..41, during the replay
        events = await take(watch, 38)
        await writer
        assert [e.revision for e in events] == [r for r in range(3, 42) if r != 21]
        replayed = {e.revision: e for e in events}
        assert replayed[7].type == "ADDED" and replayed[7].prev is None
        assert replayed[8].type == "MODIFIED"
        assert replayed[8].prev is not None and replayed[8].prev.mod_revision == 1
        assert replayed[8].entry.labels == {"n": "7"}
    finally:
        await store.close()


async def test_watch_after_restart_replays_from_the_log(db_path: Path) -> None:
    store = SQLiteStore(db_path, compaction_interval=0)
    await store.open()
    await churn(store, 8)
    await store.delete(key("m-0"))
    await store.close()

    reopened = SQLiteStore(db_path, compaction_interval=0)
    await reopened.open()
    try:
        watch = reopened.watch(PREFIX, 5)
        await reopened.create(key("late"), machine("late"))
        events = await take(watch, 5)
        assert [(e.type, e.revision) for e in events] == [
            ("ADDED", 6),
            ("ADDED", 7),
            ("MODIFIED", 8),
            ("DELETED", 9),
            ("ADDED", 10),
        ]
        deleted = events[3]
        assert deleted.entry.object()["metadata"]["resourceVersion"] == "9"
        assert deleted.prev is not None and deleted.prev.mod_revision == 8
    finally:
        await reopened.close()


async def test_watch_bounds(store: SQLiteStore) -> None:
    await churn(store, 10)
    with pytest.raises(FutureRevisionError):
        store.watch(PREFIX, 11)
    await store.compact(6)
    with pytest.raises(CompactedError) as caught:
        store.watch(PREFIX, 5)
    assert (caught.value.requested, caught.value.compacted) == (5, 6)
    watch = store.watch(PREFIX, 6)
    assert [e.revision for e in await take(watch, 4)] == [7, 8, 9, 10]


async def test_compaction_overtaking_a_replay_ends_the_watch(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "REPLAY_PAGE", 2)
    store = SQLiteStore(db_path, compaction_interval=0, history_size=2)
    await store.open()
    try:
        await churn(store, 12)
        watch = store.watch(PREFIX, 0)
        assert [e.revision for e in await take(watch, 2)] == [1, 2]
        await store.compact(store.revision)
        with pytest.raises(CompactedError):
            await take(watch, 1)
        assert store.watcher_count == 0
    finally:
        await store.close()


async def test_slow_watcher_is_terminated(db_path: Path) -> None:
    store = SQLiteStore(db_path, compaction_interval=0, watch_queue_limit=5)
    await store.open()
    try:
        slow = store.watch(PREFIX, 0)
        fast = store.watch(PREFIX, 0)
        got: list[int] = []
        for i in range(8):
            await store.create(key(f"m-{i}"), machine(f"m-{i}"))
            got.extend(e.revision for e in await take(fast, 1))
        assert got == list(range(1, 9))
        assert store.watcher_count == 1
        with pytest.raises(WatchOverflowError):
            await take(slow, 1)
        assert isinstance(WatchOverflowError("x"), StorageError)
    finally:
        await store.close()


async def test_close_ends_iteration_and_frees_the_watcher(store: SQLiteStore) -> None:
    watch = store.watch(PREFIX, 0)
    other = store.watch(PREFIX + "default/", 0)
    assert store.watcher_count == 2
    waiting = asyncio.create_task(take(watch, 1))
    await asyncio.sleep(0)
    watch.close()
    assert await waiting == []
    assert store.watcher_count == 1
    await store.create(key("m-1"), machine("m-1"))
    assert [e.revision for e in await take(other, 1)] == [1]
    other.close()
    assert store.watcher_count == 0


async def test_closing_the_store_ends_every_watch(db_path: Path) -> None:
    store = SQLiteStore(db_path, compaction_interval=0)
    await store.open()
    watch = store.watch(PREFIX, 0)
    waiting = asyncio.create_task(take(watch, 1))
    await asyncio.sleep(0)
    await store.close()
    assert await waiting == []
    assert store.watcher_count == 0
    with pytest.raises(StorageError):
        store.watch(PREFIX, 0)


async def test_history_backlog_does_not_count_as_falling_behind(db_path: Path) -> None:
    store = SQLiteStore(db_path, compaction_interval=0, history_size=20, watch_queue_limit=5)
    await store.open()
    try:
        await churn(store, 15)
        from_ring = store.watch(PREFIX, 0)
        await churn(store, 3, start=15)
        assert [e.revision for e in await take(from_ring, 18)] == list(range(1, 19))
        await churn(store, 10, start=18)  # 19..28: the ring now starts after 8
        from_log = store.watch(PREFIX, 2)
        await churn(store, 2, start=28)
        assert [e.revision for e in await take(from_log, 28)] == list(range(3, 31))
        assert store.watcher_count == 1, "from_ring stopped reading and fell 12 events behind"
        with pytest.raises(WatchOverflowError):
            await take(from_ring, 1)
    finally:
        await store.close()
