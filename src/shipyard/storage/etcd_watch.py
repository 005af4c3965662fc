"""Watches for `EtcdStore`, and the value codec both its mirror and its watches use.

Two sources, chosen per watch by `EtcdStore.watch`:

* `RingHub`: `watching.WatchHub` fed by the store's mirror. etcd's revisions are global, so the
  revisions under one prefix have gaps (writes elsewhere in etcd) and the base hub's arithmetic
  (revision N is at index N - floor) does not hold; `watch_from_ring` filters the ring by
  revision instead. The ring still holds *every* event under the store's prefix in
  ``(floor, newest]``, so a watch that starts inside it misses nothing.
* `StreamWatch`: an etcd watch stream of its own from ``after + 1``, for a watch older than the
  ring (after a restart, or far behind). etcd replays its history in order and then goes live;
  ``prev_kv`` supplies the previous state. A compaction that overtakes it (perhaps by another
  API server, which this store had not heard of) ends it with `CompactedError` and tells the
  store (``on_compacted``), a lost connection with `StorageError`, too many undelivered events with
  `WatchOverflowError` -- what the API server already maps for SQLiteStore's watches.

Codec: values are stored without ``metadata.resourceVersion`` (`encode`) and stamped with the
mod revision when read (`decode`), because etcd assigns the revision at commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from shipyard.storage.etcd_gateway import JSON, EtcdClient, key_range, unb64
from shipyard.storage.interface import (
    CompactedError,
    Entry,
    EventType,
    StorageError,
    WatchEvent,
    WatchOverflowError,
)
from shipyard.storage.watching import Watcher, WatchHub


def _metadata(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise StorageError("a stored value must be a JSON object")
    metadata = obj.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise StorageError("metadata must be an object")
    return metadata


def encode(obj: dict[str, Any]) -> bytes:
    """The bytes stored in etcd: ``obj`` without ``metadata.resourceVersion``, sorted keys.
    The caller's dict is left as is."""
    metadata = {k: v for k, v in _metadata(obj).items() if k != "resourceVersion"}
    return orjson.dumps({**obj, "metadata": metadata}, option=orjson.OPT_SORT_KEYS)


def decode(key: str, raw: bytes, mod_revision: int, create_revision: int) -> Entry:
    """An `Entry` whose value is ``raw`` stamped with ``resourceVersion = mod_revision``."""
    obj = orjson.loads(raw or b"{}")
    metadata = _metadata(obj)
    obj["metadata"] = {**metadata, "resourceVersion": str(mod_revision)}
    labels = metadata.get("labels")
    return Entry(key, orjson.dumps(obj, option=orjson.OPT_SORT_KEYS), mod_revision,
                 create_revision, dict(labels) if isinstance(labels, dict) else {})


class RingHub(WatchHub):
    """`WatchHub` whose ring may skip revisions; see the module docstring."""

    @property
    def newest(self) -> int:
        return self._history[-1].revision if self._history else self._floor

    def watch_from_ring(self, prefix: str, after: int) -> Watcher | None:
        """A watcher for revisions > ``after`` served from the ring, or None if the ring no
        longer reaches back to ``after``."""
        if after < self._floor:
            return None
        watcher = Watcher(self, prefix)
        watcher._backlog.extend(
            event for event in self._history
            if event.revision > after and event.entry.key.startswith(prefix)
        )
        self._register(watcher)
        return watcher

    def fail_all(self, error: BaseException) -> None:
        """End every watcher with ``error`` (the mirror lost events they needed)."""
        for watchers in list(self._by_prefix.values()):
            for watcher in list(watchers):
                watcher._fail(error)


class StreamWatch:
    """A `Watch` on an etcd watch stream of its own; see the module docstring."""

    def __init__(
        self,
        client: EtcdClient,
        raw_prefix: bytes,
        prefix: str,
        after: int,
        queue_limit: int,
        on_close: Callable[[StreamWatch], object],
        on_compacted: Callable[[int], object],
    ) -> None:
        self.prefix = prefix
        self._client = client
        self._raw_prefix = raw_prefix
        self._after = after
        self._queue_limit = queue_limit
        self._on_close = on_close
        self._on_compacted = on_compacted
        self._buffer: deque[WatchEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def __aiter__(self) -> StreamWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._buffer:
                return self._buffer.popleft()
            if self._error is not None:
                raise self._error
            if self._closed:
                raise StopAsyncIteration
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        """End iteration, stop the stream and free the watcher."""
        if self._closed:
            return
        self._closed = True
        self._buffer.clear()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._on_close(self)
        self._wake()

    async def wait_closed(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self.close()

    async def _run(self) -> None:
        raw = self._raw_prefix + self.prefix.encode()
        request = {**key_range(raw), "start_revision": self._after + 1, "prev_kv": True}
        try:
            async for response in self._client.watch(request):
                if response.get("canceled"):
                    compacted = int(response.get("compact_revision", 0))
                    if compacted:
                        self._on_compacted(compacted)
                        raise CompactedError(self._after, compacted)
                    raise StorageError(f"etcd canceled the watch: {response.get('cancel_reason')}")
                for event in response.get("events") or ():
                    decoded = self._event(event)
                    if decoded is not None:
                        self._push(decoded)
                if self._closed:
                    return
        except StorageError as exc:
            self._fail(exc)
        except Exception as exc:  # a malformed answer: end the watch, the client re-watches
            self._fail(StorageError(f"etcd watch failed: {exc!r}"))
        else:
            self.close()

    def _push(self, event: WatchEvent) -> None:
        if self._closed:
            return
        self._after = event.revision
        self._buffer.append(event)
        if len(self._buffer) > self._queue_limit:
            self._fail(WatchOverflowError(f"watch on {self.prefix!r} fell behind and was closed"))
            return
        self._wake()

    def _event(self, event: JSON) -> WatchEvent | None:
        kv = event["kv"]
        key = unb64(kv["key"])[len(self._raw_prefix) :].decode(errors="replace")
        revision = int(kv["mod_revision"])
        prev_kv = event.get("prev_kv")
        try:
            prev = None if prev_kv is None else decode(
                key, unb64(prev_kv.get("value")), int(prev_kv["mod_revision"]),
                int(prev_kv["create_revision"]))
            if event.get("type") == "DELETE":
                if prev is None:
                    return WatchEvent("DELETED", decode(key, b"{}", revision, 0), None, revision)
                entry = decode(key, unb64(prev_kv.get("value") if prev_kv else None), revision,
                               prev.create_revision)
                return WatchEvent("DELETED", entry, prev, revision)
            create_revision = int(kv["create_revision"])
            entry = decode(key, unb64(kv.get("value")), revision, create_revision)
        except (orjson.JSONDecodeError, StorageError):
            return None  # not one of ours
        kind: EventType = "ADDED" if create_revision == revision else "MODIFIED"
        return WatchEvent(kind, entry, prev if kind == "MODIFIED" else None, revision)
