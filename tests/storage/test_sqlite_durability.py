"""Restart, kill -9, compaction and historic snapshots (list_at)."""

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

from shipyard.storage import CompactedError, FutureRevisionError, SQLiteStore

from .conftest import PREFIX, key, machine


def log_rows(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM log").fetchone()
    return int(count)


async def test_restart_resumes_revisions_and_data(db_path: Path) -> None:
    store = SQLiteStore(db_path, compaction_interval=0)
    await store.open()
    await store.create(key("a"), machine("a", role="cp"))
    await store.create(key("b"), machine("b"))
    b = await store.update(key("b"), machine("b"))
    await store.create(key("c"), machine("c"))
    await store.delete(key("c"))
    before = store.list(PREFIX)
    await store.close()

    reopened = SQLiteStore(db_path, compaction_interval=0)
    await reopened.open()
    try:
        assert reopened.revision == 5
        assert reopened.list(PREFIX) == before
        assert reopened.get(key("b")) == b
        a = reopened.get(key("a"))
        assert a is not None and a.labels == {"role": "cp"}
        assert (await reopened.create(key("d"), machine("d"))).mod_revision == 6
        updated = await reopened.update(key("b"), machine("b"), expected_revision=3)
        assert updated.mod_revision == 7
    finally:
        await reopened.close()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from shipyard.storage import SQLiteStore

    async def worker(store, w):
        for i in range(100000):
            name = f"/registry/kill/w{w}-{i}"
            entry = await store.create(name, {"metadata": {"name": name}})
            print(name, entry.mod_revision, flush=True)

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
            name, acked = line.split()
            acknowledged[name] = int(acked)
            if len(acknowledged) >= 300:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    for line in child.stdout:  # acknowledged before the kill landed
        name, acked = line.split()
        acknowledged[name] = int(acked)
    child.stdout.close()

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


async def test_list_at_reads_a_snapshot(store: SQLiteStore) -> None:
    for name in ("a", "b", "c", "d"):
        await store.create(key(name), machine(name))
    snapshot = store.revision
    await store.update(key("a"), machine("a", changed="yes"))
    await store.delete(key("b"))
    await store.create(key("e"), machine("e"))

    entries = await store.list_at(PREFIX, snapshot)
    assert [(e.key, e.mod_revision) for e in entries] == [
        (key(n), r) for n, r in [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    ]
    assert entries[0].labels == {}
    page = await store.list_at(PREFIX, snapshot, start_after=key("a"), limit=2)
    assert [e.key for e in page] == [key("b"), key("c")]
    assert await store.list_at(PREFIX, 2) == entries[:2]
    assert await store.list_at("/registry/none/", snapshot) == []

    now = await store.list_at(PREFIX, store.revision, start_after=key("c"))
    assert [e.key for e in now] == [key("d"), key("e")]
    assert await store.list_at(PREFIX, store.revision) == store.list(PREFIX)[0]
    with pytest.raises(FutureRevisionError):
        await store.list_at(PREFIX, store.revision + 1)


async def test_compaction_keeps_live_objects_and_drops_history(db_path: Path) -> None:
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


async def test_partial_compaction_keeps_snapshots_after_it(store: SQLiteStore) -> None:
    await store.create(key("a"), machine("a"))
    await store.create(key("b"), machine("b"))
    await store.update(key("a"), machine("a", n="1"))  # 3
    snapshots = {3: await store.list_at(PREFIX, 3)}
    await store.delete(key("b"))  # 4
    await store.update(key("a"), machine("a", n="2"))  # 5
    snapshots.update({rev: await store.list_at(PREFIX, rev) for rev in range(4, 6)})
    await store.compact(3)
    assert [e.mod_revision for e in snapshots[4]] == [3]
    for rev, entries in snapshots.items():
        assert await store.list_at(PREFIX, rev) == entries
    watch = store.watch(PREFIX, 3)
    events = [await watch.__anext__(), await watch.__anext__()]
    assert [(e.type, e.revision) for e in events] == [("DELETED", 4), ("MODIFIED", 5)]


async def test_periodic_compaction_keeps_the_newest_revisions(db_path: Path) -> None:
    store = SQLiteStore(db_path, compaction_interval=0.01, keep_revisions=3)
    await store.open()
    try:
        for i in range(10):
            await store.create(key(f"m-{i}"), machine(f"m-{i}"))
        while store.compacted_revision < 7:
            await asyncio.sleep(0.01)
        assert store.compacted_revision == 7
        assert store.stats.compactions >= 1
        assert len(store.list(PREFIX)[0]) == 10
        assert [e.mod_revision for e in await store.list_at(PREFIX, 7)] == list(range(1, 8))
    finally:
        await store.close()
