"""CRUD, compare-and-swap (including writes in flight), global revisions and group commit."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from shipyard.storage import (
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    SQLiteStore,
    StorageError,
    Store,
)

from .conftest import PREFIX, key, machine


async def test_create_stamps_resource_version_and_keeps_labels(store: SQLiteStore) -> None:
    obj = machine("m-1", role="worker")
    entry = await store.create(key("m-1"), obj)
    assert (entry.mod_revision, entry.create_revision) == (1, 1)
    assert entry.labels == {"role": "worker"}
    assert entry.object()["metadata"]["resourceVersion"] == "1"
    assert entry.object()["spec"] == {"clusterName": "c1"}
    assert "resourceVersion" not in obj["metadata"], "the caller's dict is left alone"
    assert store.get(key("m-1")) == entry
    assert store.revision == 1


async def test_create_of_a_live_key_is_refused(store: SQLiteStore) -> None:
    await store.create(key("m-1"), machine("m-1"))
    with pytest.raises(KeyExistsError):
        await store.create(key("m-1"), machine("m-1"))
    assert store.revision == 1


async def test_update_overwrites_resource_version(store: SQLiteStore) -> None:
    await store.create(key("m-1"), machine("m-1"))
    changed = machine("m-1", role="cp")
    changed["metadata"]["resourceVersion"] = "999"
    entry = await store.update(key("m-1"), changed, expected_revision=1)
    assert (entry.mod_revision, entry.create_revision) == (2, 1)
    assert orjson.loads(entry.value)["metadata"]["resourceVersion"] == "2"
    assert entry.labels == {"role": "cp"}
    assert store.get(key("m-1")) == entry


async def test_update_and_delete_of_a_missing_key(store: SQLiteStore) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.update(key("nope"), machine("nope"))
    with pytest.raises(KeyNotFoundError):
        await store.delete(key("nope"))
    assert store.revision == 0


async def test_delete_returns_last_state_at_the_deletion_revision(store: SQLiteStore) -> None:
    await store.create(key("m-1"), machine("m-1", role="worker"))
    await store.create(key("m-2"), machine("m-2"))
    gone = await store.delete(key("m-1"), expected_revision=1)
    assert (gone.mod_revision, gone.create_revision) == (3, 1)
    assert gone.object()["metadata"]["resourceVersion"] == "3"
    assert gone.labels == {"role": "worker"}
    assert store.get(key("m-1")) is None
    assert [e.key for e in store.list(PREFIX)[0]] == [key("m-2")]
    again = await store.create(key("m-1"), machine("m-1"))
    assert (again.mod_revision, again.create_revision) == (4, 4)


async def test_revisions_are_global_and_monotonic(store: SQLiteStore) -> None:
    seen = []
    for name in ("a", "b", "c"):
        seen.append((await store.create(key(name), machine(name))).mod_revision)
        seen.append((await store.update(key(name), machine(name))).mod_revision)
    seen.append((await store.delete(key("b"))).mod_revision)
    assert seen == list(range(1, 8))
    assert store.revision == 7


async def test_list_is_sorted_by_key_under_the_prefix(store: SQLiteStore) -> None:
    for name, namespace in [("z", "default"), ("a", "kube-system"), ("m", "default")]:
        await store.create(key(name, namespace), machine(name, namespace))
    await store.create("/registry/other/x", {"metadata": {"name": "x"}})
    entries, revision = store.list(PREFIX)
    assert [e.key for e in entries] == [key("m"), key("z"), key("a", "kube-system")]
    assert revision == 4
    assert [e.key for e in store.list(PREFIX + "default/")[0]] == [key("m"), key("z")]
    assert store.list("/registry/nothing/") == ([], 4)


async def test_stale_expected_revision_conflicts(store: SQLiteStore) -> None:
    await store.create(key("m-1"), machine("m-1"))
    await store.update(key("m-1"), machine("m-1"), expected_revision=1)
    with pytest.raises(ConflictError):
        await store.update(key("m-1"), machine("m-1"), expected_revision=1)
    with pytest.raises(ConflictError):
        await store.delete(key("m-1"), expected_revision=1)
    assert store.get(key("m-1")) is not None
    assert store.revision == 2


async def test_compare_and_swap_counts_writes_in_flight(store: SQLiteStore) -> None:
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


async def test_concurrent_updates_with_one_expected_revision_one_wins(store: SQLiteStore) -> None:
    await store.create(key("m-1"), machine("m-1"))
    results = await asyncio.gather(
        *(store.update(key("m-1"), machine("m-1"), expected_revision=1) for _ in range(5)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) for r in results if r not in winners)
    assert store.revision == 2


async def test_delete_in_flight_makes_the_key_absent_for_writers(store: SQLiteStore) -> None:
    await store.create(key("m-1"), machine("m-1"))
    deleting = asyncio.create_task(store.delete(key("m-1")))
    await asyncio.sleep(0)
    with pytest.raises(KeyNotFoundError):
        await store.update(key("m-1"), machine("m-1"))
    recreated = await store.create(key("m-1"), machine("m-1"))
    assert (await deleting).mod_revision == 2
    assert recreated.mod_revision == 3
    assert store.get(key("m-1")) == recreated


async def test_concurrent_writers_share_a_transaction(store: SQLiteStore) -> None:
    entries = await asyncio.gather(
        *(store.create(key(f"m-{i}"), machine(f"m-{i}")) for i in range(64))
    )
    assert sorted(e.mod_revision for e in entries) == list(range(1, 65))
    assert store.stats.writes == 64
    assert store.stats.largest_batch > 1
    assert store.stats.transactions < 64
    assert len(store.list(PREFIX)[0]) == 64


async def test_writes_on_a_closed_store_are_refused(db_path: object) -> None:
    closed = SQLiteStore(str(db_path), compaction_interval=0)
    with pytest.raises(StorageError):
        await closed.create(key("m-1"), machine("m-1"))
    await closed.open()
    await closed.close()
    with pytest.raises(StorageError):
        await closed.create(key("m-1"), machine("m-1"))


def as_store(store: SQLiteStore) -> Store:
    """Type-checked: `SQLiteStore` satisfies the `Store` protocol."""
    return store


async def test_sqlite_store_is_a_store(store: SQLiteStore) -> None:
    assert as_store(store) is store
    assert (store.revision, store.compacted_revision) == (0, 0)


async def test_prefix_match_is_exact_at_the_edges_of_unicode(store: SQLiteStore) -> None:
    names = ["/a", "/a/x", "/a\uffff", "/a\U0010ffffz", "/b", "/", "/\U0010ffff"]
    for name in names:
        await store.create(name, {"metadata": {"name": "x"}})
    await store.create("/zz", {})
    for prefix in ["/a", "/a/", "/", "/\U0010ffff", ""]:
        expected = sorted(n for n in [*names, "/zz"] if n.startswith(prefix))
        assert [e.key for e in store.list(prefix)[0]] == expected, prefix
        assert [e.key for e in await store.list_at(prefix, len(names))] == [
            n for n in expected if n != "/zz"
        ], prefix
