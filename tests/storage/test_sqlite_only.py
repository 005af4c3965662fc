"""SQLite only: the log file itself (kill -9 durability, rows that compaction removes), admission
of writes in flight, group commit, and the in-memory ring versus the log."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import shipyard.storage.sqlite as sqlite_module
from shipyard.storage import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    SQLiteStore,
)
from shipyard.storage.watching import WatchOverflowError

from .conftest import PREFIX, key, machine
from .test_watch import churn, take


def log_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM log").fetchone()
    return int(count)


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from shipyard.storage import SQLiteStore

    async def worker(store, w):
        for i in range(100000):
            name = f"/registry/kill/w{w}-{i}"
            entry = await store.create(name, {"metadata": {"name": name}})
            sys.stdout.write(f"{name} {entry.mod_revision}\\n")  # one write: one line
            sys.stdout.flush()

    async def main():
        store = SQLiteStore(sys.argv[1], compaction_interval=0)
        await store.open()
        await asyncio.gather(*(worker(store, w) for w in range(8)))

    asyncio.run(main())
    """
)


async def test_every_acknowledged_write_survives_kill_9(db_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    acknowledged: dict[str, int] = {}
    try:
        for line in child.stdout:
            name, acked = line.split()  # whole lines: the child is alive until the kill
            acknowledged[name] = int(acked)
            if len(acknowledged) >= 300:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    with child.stdout:
        for line in child.stdout:  # acknowledged before the kill landed
            if not line.endswith("\n"):
                break  # cut by the kill mid-write: never acknowledged
            name, acked = line.split()
            acknowledged[name] = int(acked)

    store = SQLiteStore(db_path, compaction_interval=0)
    await store.open()
    try:
        assert len(acknowledged) >= 300
        for name, revision in acknowledged.items():
            entry = store.get(name)
            assert entry is not None, name
            assert entry.mod_revision == revision
        entries, current = store.list("/registry/kill/")
        assert current >= max(acknowledged.values())
        assert sorted(e.mod_revision for e in entries) == list(range(1, current + 1))
    finally:
        await store.close()


async def test_compaction_deletes_superseded_log_rows(db_path: Path) -> None:
    store = SQLiteStore(db_path, compaction_interval=0)
    await store.open()
    for name in ("a", "b", "c"):
        await store.create(key(name), machine(name))
    for i in range(5):
        await store.update(key("a"), machine("a", n=str(i)))
    await store.delete(key("b"))  # the newest revision is a tombstone
    live = store.list(PREFIX)
    assert log_rows(db_path) == 9

    await store.compact(store.revision)
    assert store.compacted_revision == 9
    assert log_rows(db_path) == 2
    assert store.list(PREFIX) == live
    assert await store.list_at(PREFIX, 9) == live[0]
    with pytest.raises(CompactedError):
        await store.list_at(PREFIX, 8)
    with pytest.raises(FutureRevisionError):
        await store.compact(10)
    await store.compact(3)  # already compacted: nothing to do
    await store.close()

    reopened = SQLiteStore(db_path, compaction_interval=0)
    await reopened.open()
    try:
        assert (reopened.revision, reopened.compacted_revision) == (9, 9)
        assert reopened.list(PREFIX) == live
        with pytest.raises(CompactedError):
            reopened.watch(PREFIX, 8)
        assert (await reopened.create(key("b"), machine("b"))).mod_revision == 10
    finally:
        await reopened.close()


async def test_compare_and_swap_counts_writes_in_flight(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    await store.create(key("m-1"), machine("m-1"))
    first = asyncio.create_task(store.update(key("m-1"), machine("m-1"), expected_revision=1))
    await asyncio.sleep(0)  # `first` is admitted and waits for its commit
    current = store.get(key("m-1"))
    assert current is not None and current.mod_revision == 1, "not durable, so not visible"
    with pytest.raises(ConflictError):
        await store.update(key("m-1"), machine("m-1"), expected_revision=1)
    with pytest.raises(KeyExistsError):
        await store.create(key("m-1"), machine("m-1"))
    assert (await first).mod_revision == 2


async def test_delete_in_flight_makes_the_key_absent_for_writers(
    sqlite_store: SQLiteStore,
) -> None:
    store = sqlite_store
    await store.create(key("m-1"), machine("m-1"))
    deleting = asyncio.create_task(store.delete(key("m-1")))
    await asyncio.sleep(0)
    with pytest.raises(KeyNotFoundError):
        await store.update(key("m-1"), machine("m-1"))
    recreated = await store.create(key("m-1"), machine("m-1"))
    assert (await deleting).mod_revision == 2
    assert recreated.mod_revision == 3
    assert store.get(key("m-1")) == recreated


async def test_concurrent_writers_share_a_transaction(sqlite_store: SQLiteStore) -> None:
    store = sqlite_store
    entries = await asyncio.gather(
        *(store.create(key(f"m-{i}"), machine(f"m-{i}")) for i in range(64))
    )
    assert sorted(e.mod_revision for e in entries) == list(range(1, 65))
    assert store.stats.writes == 64
    assert store.stats.largest_batch > 1
    assert store.stats.transactions < 64


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


async def test_periodic_compaction_is_counted(db_path: Path) -> None:
    store = SQLiteStore(db_path, compaction_interval=0.01, keep_revisions=3)
    await store.open()
    try:
        for i in range(5):
            await store.create(key(f"m-{i}"), machine(f"m-{i}"))
        while store.compacted_revision < 2:
            await asyncio.sleep(0.01)
        assert store.stats.compactions >= 1
    finally:
        await store.close()
