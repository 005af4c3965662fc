"""The `Store` protocol: what the API server may ask of storage, and nothing more.

Keys are opaque strings such as ``/registry/cluster.x-k8s.io/machines/default/m-1``; a *prefix*
selects a resource (``/registry/cluster.x-k8s.io/machines/``) or one namespace of it. Values are
JSON objects. The store owns ``metadata.resourceVersion``: it stamps the revision it assigns into
the stored bytes, so what a reader gets is exactly what was written, resourceVersion included.

Contract (every implementation, checked by tests/storage):

* Revisions are global, start at 1 and increase by one per write (create, update or delete).
* A write is acknowledged (its coroutine returns) only once it is durable; a reader never sees a
  write before it is durable, and watchers receive events in revision order, never one that was
  not yet acknowledged to its writer.
* Compare-and-swap: ``update``/``delete`` with ``expected_revision`` fail with `ConflictError`
  unless the key's current mod revision equals it, counting writes still in flight.
* ``watch(prefix, after)`` yields every change with revision > ``after``; if ``after`` is older
  than the compacted revision it raises `CompactedError`, if it is ahead of the store
  `FutureRevisionError`.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class StorageError(Exception):
    """Base of storage failures; the API server maps each to a Status reason."""


class KeyExistsError(StorageError):
    pass


class KeyNotFoundError(StorageError):
    pass


class ConflictError(StorageError):
    """The key's mod revision is not the expected one."""


class WatchOverflowError(StorageError):
    """The watcher fell too far behind; its stream ends and the client re-watches."""


class CompactedError(StorageError):
    """The requested revision was compacted away (kube-apiserver: 410 Expired)."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"too old resource version: {requested} ({compacted})")
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StorageError):
    """The requested revision is ahead of the store (kube-apiserver: 504 Timeout)."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"Too large resource version: {requested}, current: {current}")
        self.requested = requested
        self.current = current


@dataclass(slots=True)
class Entry:
    """One stored object at one revision.

    ``value`` is the serialized object with ``metadata.resourceVersion == str(mod_revision)``;
    ``labels`` is its ``metadata.labels`` kept beside it so selectors need not parse ``value``.
    """

    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    labels: dict[str, str] = field(default_factory=dict)

    def object(self) -> dict[str, Any]:
        import orjson

        obj: dict[str, Any] = orjson.loads(self.value)
        return obj


EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(slots=True)
class WatchEvent:
    """A change at ``revision``. For DELETED, ``entry`` is the last state, stamped with the
    deletion revision; ``prev`` is the state before the change (None for ADDED)."""

    type: EventType
    entry: Entry
    prev: Entry | None
    revision: int


class Watch(Protocol):
    """An open watch: iterate for events; ``close()`` ends iteration and frees the watcher."""

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...

    def close(self) -> None: ...


class Store(Protocol):
    @property
    def revision(self) -> int:
        """The newest durable revision."""
        ...

    @property
    def compacted_revision(self) -> int:
        """Revisions at or below this are gone from history."""
        ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def get(self, key: str) -> Entry | None:
        """The newest durable state of ``key``."""
        ...

    def list(self, prefix: str) -> tuple[list[Entry], int]:
        """Every live key under ``prefix`` sorted by key, and the revision they were read at."""
        ...

    async def list_at(
        self, prefix: str, revision: int, start_after: str = "", limit: int = 0
    ) -> builtins.list[Entry]:
        """Keys under ``prefix`` as they were at ``revision`` (for paging a snapshot), sorted by
        key, beginning after ``start_after``; raises `CompactedError` if history is gone."""
        ...

    async def create(self, key: str, obj: dict[str, Any]) -> Entry:
        """Store a new key; `KeyExistsError` if it is live. Sets metadata.resourceVersion."""
        ...

    async def update(
        self, key: str, obj: dict[str, Any], expected_revision: int | None = None
    ) -> Entry:
        """Replace a live key; `KeyNotFoundError`, or `ConflictError` on a CAS miss."""
        ...

    async def delete(self, key: str, expected_revision: int | None = None) -> Entry:
        """Remove a live key; returns its last state stamped with the deletion revision."""
        ...

    def watch(self, prefix: str, after: int) -> Watch:
        """Changes under ``prefix`` with revision > ``after``."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget history at or below ``revision`` (live objects stay)."""
        ...
