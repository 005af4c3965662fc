"""A real `SQLiteStore` on a temporary file, with the periodic compaction off."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.storage import SQLiteStore

PREFIX = "/registry/cluster.x-k8s.io/machines/"


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


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(db_path, compaction_interval=0)
    await opened.open()
    yield opened
    await opened.close()
