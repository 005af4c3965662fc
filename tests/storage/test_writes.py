"""CRUD, compare-and-swap and global revisions: the contract, on every backend."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from shipyard.storage import (
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    StorageError,
    Store,
)

from .conftest import PREFIX, AnyStore, Stores, key, machine


async def test_create_stamps_resource_version_and_keeps_labels(store: AnyStore) -> None:
    base = store.revision
    obj = machine("m-1", role="worker")
    entry = await store.create(key("m-1"), obj)
    assert (entry.mod_revision, entry.create_revision) == (base + 1, base + 1)
    assert entry.labels == {"role": "worker"}
    assert entry.object()["metadata"]["resourceVersion"] == str(base + 1)
    assert entry.object()["spec"] == {"clusterName": "c1"}
    assert "resourceVersion" not in obj["metadata"], "the caller's dict is left alone"
    assert store.get(key("m-1")) == entry
    assert store.revision == base + 1


async def test_create_of_a_live_key_is_refused(store: AnyStore) -> None:
    base = store.revision
    await store.create(key("m-1"), machine("m-1"))
    with pytest.raises(KeyExistsError):
        await store.create(key("m-1"), machine("m-1"))
    assert store.revision == base + 1


async def test_update_overwrites_resource_version(store: AnyStore) -> None:
    base = store.revision
    await store.create(key("m-1"), machine("m-1"))
    changed = machine("m-1", role="cp")
    changed["metadata"]["resourceVersion"] = "999"
    entry = await store.update(key("m-1"), changed, expected_revision=base + 1)
    assert (entry.mod_revision, entry.create_revision) == (base + 2, base + 1)
    assert orjson.loads(entry.value)["metadata"]["resourceVersion"] == str(base + 2)
    assert entry.labels == {"role": "cp"}
    assert store.get(key("m-1")) == entry


async def test_update_and_delete_of_a_missing_key(store: AnyStore) -> None:
    base = store.revision
    with pytest.raises(KeyNotFoundError):
        await store.update(key("nope"), machine("nope"))
    with pytest.raises(KeyNotFoundError):
        await store.update(key("nope"), machine("nope"), expected_revision=base)
    with pytest.raises(KeyNotFoundError):
        await store.delete(key("nope"))
    assert store.revision == base


async def test_delete_returns_last_state_at_the_deletion_revision(store: AnyStore) -> None:
    base = store.revision
    await store.create(key("m-1"), machine("m-1", role="worker"))
    await store.create(key("m-2"), machine("m-2"))
    gone = await store.delete(key("m-1"), expected_revision=base + 1)
    assert (gone.mod_revision, gone.create_revision) == (base + 3, base + 1)
    assert gone.object()["metadata"]["resourceVersion"] == str(base + 3)
    assert gone.labels == {"role": "worker"}
    assert store.get(key("m-1")) is None
    assert [e.key for e in store.list(PREFIX)[0]] == [key("m-2")]
    again = await store.create(key("m-1"), machine("m-1"))
    assert (again.mod_revision, again.create_revision) == (base + 4, base + 4)


async def test_revisions_are_global_and_monotonic(store: AnyStore) -> None:
    base = store.revision
    seen = []
    for name in ("a", "b", "c"):
        seen.append((await store.create(key(name), machine(name))).mod_revision)
        seen.append((await store.update(key(name), machine(name))).mod_revision)
    seen.append((await store.delete(key("b"))).mod_revision)
    assert seen == list(range(base + 1, base + 8))
    assert store.revision == base + 7


async def test_list_is_sorted_by_key_under_the_prefix(store: AnyStore) -> None:
    base = store.revision
    for name, namespace in [("z", "default"), ("a", "kube-system"), ("m", "default")]:
        await store.create(key(name, namespace), machine(name, namespace))
    await store.create("/registry/other/x", {"metadata": {"name": "x"}})
    entries, revision = store.list(PREFIX)
    assert [e.key for e in entries] == [key("m"), key("z"), key("a", "kube-system")]
    assert revision == base + 4
    assert [e.key for e in store.list(PREFIX + "default/")[0]] == [key("m"), key("z")]
    assert store.list("/registry/nothing/") == ([], base + 4)


async def test_stale_expected_revision_conflicts(store: AnyStore) -> None:
    base = store.revision
    await store.create(key("m-1"), machine("m-1"))
    await store.update(key("m-1"), machine("m-1"), expected_revision=base + 1)
    with pytest.raises(ConflictError):
        await store.update(key("m-1"), machine("m-1"), expected_revision=base + 1)
    with pytest.raises(ConflictError):
        await store.delete(key("m-1"), expected_revision=base + 1)
    assert store.get(key("m-1")) is not None
    assert store.revision == base + 2


async def test_concurrent_updates_with_one_expected_revision_one_wins(store: AnyStore) -> None:
    base = store.revision
    await store.create(key("m-1"), machine("m-1"))
    results = await asyncio.gather(
        *(store.update(key("m-1"), machine("m-1"), expected_revision=base + 1) for _ in range(5)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) for r in results if r not in winners)
    assert store.revision == base + 2
    assert store.get(key("m-1")) == winners[0]


async def test_concurrent_creates_get_one_revision_each(store: AnyStore) -> None:
    base = store.revision
    entries = await asyncio.gather(
        *(store.create(key(f"m-{i}"), machine(f"m-{i}")) for i in range(64))
    )
    assert sorted(e.mod_revision for e in entries) == list(range(base + 1, base + 65))
    assert all(store.get(e.key) == e for e in entries), "each write is visible once it returns"
    assert len(store.list(PREFIX)[0]) == 64


async def test_writes_on_a_closed_store_are_refused(stores: Stores) -> None:
    closed = stores.make()
    with pytest.raises(StorageError):
        await closed.create(key("m-1"), machine("m-1"))
    await closed.open()
    await closed.close()
    with pytest.raises(StorageError):
        await closed.create(key("m-1"), machine("m-1"))


def as_store(store: AnyStore) -> Store:
    """Type-checked: each backend satisfies the `Store` protocol."""
    return store


async def test_each_backend_is_a_store(store: AnyStore) -> None:
    assert as_store(store) is store
    assert 0 <= store.compacted_revision <= store.revision


async def test_prefix_match_is_exact_at_the_edges_of_unicode(store: AnyStore) -> None:
    base = store.revision
    names = ["/a", "/a/x", "/a\uffff", "/a\U0010ffffz", "/b", "/", "/\U0010ffff"]
    for name in names:
        await store.create(name, {"metadata": {"name": "x"}})
    await store.create("/zz", {})
    for prefix in ["/a", "/a/", "/", "/\U0010ffff", ""]:
        expected = sorted(n for n in [*names, "/zz"] if n.startswith(prefix))
        assert [e.key for e in store.list(prefix)[0]] == expected, prefix
        assert [e.key for e in await store.list_at(prefix, base + len(names))] == [
            n for n in expected if n != "/zz"
        ], prefix
