"""Real stores for the storage contract: every test that takes ``store`` or ``stores`` runs on
SQLite (a temporary file) and on etcd (one local etcd for the session, a key prefix per test).

Revisions are asserted relative to ``store.revision`` at the start: etcd's revisions are global
to the cluster (a fresh etcd starts at 1, and earlier tests wrote to the same etcd). Periodic
compaction is off unless a test turns it on. If no etcd binary is found, the etcd cases fail:
CI builds one (scripts/build-kube-binaries), and Debian's etcd-server provides another.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.storage import SQLiteStore
from shipyard.storage.etcd import EtcdStore
from shipyard.storage.etcd_process import LocalEtcd

PREFIX = "/registry/cluster.x-k8s.io/machines/"

AnyStore = SQLiteStore | EtcdStore


def machine(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Machine",
        "metadata": metadata,
        "spec": {"clusterName": "c1"},
    }


def key(name: str, namespace: str = "default") -> str:
    return f"{PREFIX}{namespace}/{name}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture(scope="session")
def etcd_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One local etcd for the session (an error, not a skip, if there is no etcd binary)."""
    etcd = LocalEtcd(tmp_path_factory.mktemp("etcd") / "data")
    etcd.start()
    try:
        yield etcd.endpoint
    finally:
        etcd.stop()


class Stores:
    """Makes stores of one backend on one location, so a test can close and reopen "the same"
    store; every store made is closed at teardown."""

    def __init__(self, backend: str, db_path: Path, endpoint: str) -> None:
        self.backend = backend
        self.db_path = db_path
        self.endpoint = endpoint
        self.prefix = f"/test-{uuid.uuid4().hex[:10]}"
        self.made: list[AnyStore] = []

    def make(self, **options: Any) -> AnyStore:
        options.setdefault("compaction_interval", 0)
        store: AnyStore
        if self.backend == "sqlite":
            store = SQLiteStore(self.db_path, **options)
        else:
            store = EtcdStore([self.endpoint], self.prefix, **options)
        self.made.append(store)
        return store

    async def open(self, **options: Any) -> AnyStore:
        store = self.make(**options)
        await store.open()
        return store

    async def close_all(self) -> None:
        for store in self.made:
            await store.close()


@pytest.fixture(params=["sqlite", "etcd"])
async def stores(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Stores]:
    endpoint = request.getfixturevalue("etcd_endpoint") if request.param == "etcd" else ""
    made = Stores(request.param, db_path, endpoint)
    yield made
    await made.close_all()


@pytest.fixture
async def store(stores: Stores) -> AnyStore:
    return await stores.open()


@pytest.fixture
async def sqlite_store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(db_path, compaction_interval=0)
    await opened.open()
    yield opened
    await opened.close()
