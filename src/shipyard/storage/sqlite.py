"""`SQLiteStore`: the `Store` on one SQLite file, with reads and watches served from memory.

Why it is split this way: SQLite does a few thousand fsyncs a second, so writes are batched by
one writer thread (group commit, see `sqlitelog`), and every read is served from an in-memory
view of the newest *durable* state, so reads never wait on disk and never see a write that a
crash could still lose.

A write's life, all on the event loop except the commit:

1. Admission: the compare-and-swap check runs against the newest state *including writes still
   in flight* (``_inflight``), then the next revision is assigned and the object is stamped with
   ``metadata.resourceVersion`` and serialized. Two updates expecting the same revision cannot
   both pass, whatever the batching.
2. The writer thread appends the row in the next group transaction and commits it.
3. On the loop again (`_committed`), in revision order: the memory view is updated, the event is
   published to watchers, and the writer's coroutine is released. Only now is the write visible.

If a transaction fails, the revisions handed out can no longer be made contiguous, so the store
refuses further writes (`StorageError`) until it is reopened; reopening resumes from the log.

Only one process may open a database file. ``compact`` and the periodic compaction task (every
``compaction_interval`` seconds, keeping the newest ``keep_revisions`` revisions; ``<= 0``
disables it) run on the writer thread between group transactions. ``history_size`` bounds the
in-memory event ring, ``watch_queue_limit`` each watcher's undelivered backlog.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import sqlite3
from bisect import bisect_left, insort
from dataclasses import dataclass
from typing import Any

import orjson

from shipyard.storage.interface import (
    CompactedError,
    ConflictError,
    Entry,
    EventType,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    StorageError,
    WatchEvent,
)
from shipyard.storage.sqlitelog import (
    SCHEMA,
    SYNCHRONOUS_MODES,
    ChangeRow,
    Compaction,
    LogReader,
    LogWriter,
    PendingWrite,
    StateRow,
    connect,
    prefix_bounds,
)
from shipyard.storage.watching import Watcher, WatchHub

REPLAY_PAGE = 1000

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class StoreStats:
    """Counters for tests and benchmarks: group commit shows as ``writes > transactions``."""

    transactions: int = 0
    writes: int = 0
    largest_batch: int = 0
    compactions: int = 0


class SQLiteStore:
    """The `Store` protocol on a SQLite revision log; see the module docstring."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        compaction_interval: float = 300.0,
        keep_revisions: int = 1000,
        synchronous: str = "FULL",
        history_size: int = 10_000,
        watch_queue_limit: int = 10_000,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
        self.path = os.fspath(path)
        self.compaction_interval = compaction_interval
        self.keep_revisions = keep_revisions
        self.stats = StoreStats()
        self._synchronous = synchronous.upper()
        self._history_size = history_size
        self._watch_queue_limit = watch_queue_limit
        self._revision = 0
        self._assigned = 0
        self._compacted = 0
        self._live: dict[str, Entry] = {}
        self._keys: list[str] = []
        self._inflight: dict[str, WatchEvent] = {}
        self._hub = WatchHub(0, history_size, watch_queue_limit)
        self._writer: LogWriter | None = None
        self._reader: LogReader | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._compactor: asyncio.Task[None] | None = None
        self._failure: StorageError | None = None
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compacted_revision(self) -> int:
        return self._compacted

    @property
    def watcher_count(self) -> int:
        """Open watchers (a closed or overflowed watcher no longer counts)."""
        return self._hub.watcher_count

    async def open(self) -> None:
        if self._writer is not None or self._closed:
            raise StorageError("the store can be opened only once")
        loop = asyncio.get_running_loop()
        write_conn, read_conn = await asyncio.to_thread(self._connect)
        self._write_conn = write_conn
        self._reader = LogReader(read_conn)
        rows, revision, compacted = await asyncio.to_thread(self._reader.load)
        for key, mod_revision, create_revision, value in rows:
            self._live[key] = Entry(key, value, mod_revision, create_revision, _labels(value))
        self._keys = sorted(self._live)
        self._revision = self._assigned = revision
        self._compacted = compacted
        self._hub = WatchHub(revision, self._history_size, self._watch_queue_limit)
        self._writer = LogWriter(write_conn, loop, self._committed)
        self._writer.start()
        if self.compaction_interval > 0:
            self._compactor = asyncio.create_task(self._compact_periodically())

    def _connect(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        write_conn = connect(self.path, self._synchronous)
        write_conn.executescript(SCHEMA)
        return write_conn, connect(self.path, self._synchronous)

    async def close(self) -> None:
        """Stop compaction, commit what is queued, end every watch and close the file."""
        if self._closed:
            return
        self._closed = True
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
        if self._writer is not None:
            self._writer.stop()
            await asyncio.to_thread(self._writer.join)
            # Commit callbacks were scheduled before the join returned, so they have run.
        self._hub.close_all()
        if self._reader is not None:
            await asyncio.to_thread(self._reader.close)
        if self._write_conn is not None:  # the writer thread has exited
            self._write_conn.close()

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        return self._live.get(key)

    def list(self, prefix: str) -> tuple[builtins.list[Entry], int]:
        keys, live = self._keys, self._live
        low, high = prefix_bounds(prefix)
        end = len(keys) if high is None else bisect_left(keys, high)
        return [live[key] for key in keys[bisect_left(keys, low) : end]], self._revision

    async def list_at(
        self, prefix: str, revision: int, start_after: str = "", limit: int = 0
    ) -> builtins.list[Entry]:
        if revision > self._revision:
            raise FutureRevisionError(revision, self._revision)
        if revision < self._compacted:
            raise CompactedError(revision, self._compacted)
        if revision == self._revision:
            entries, _ = self.list(prefix)
            if start_after:
                entries = entries[bisect_left([e.key for e in entries], start_after + "\x00") :]
            return entries[:limit] if limit > 0 else entries
        reader = self._require_reader()
        try:
            rows, compacted = await asyncio.to_thread(
                reader.state_at, prefix, revision, start_after, limit
            )
        except sqlite3.Error as exc:
            raise StorageError(f"reading the log at revision {revision}: {exc}") from exc
        if revision < compacted:
            raise CompactedError(revision, compacted)
        return [_entry(row) for row in rows]

    # -- writes --------------------------------------------------------------------------

    async def create(self, key: str, obj: dict[str, Any]) -> Entry:
        self._check_writable()
        if self._current(key) is not None:
            raise KeyExistsError(key)
        revision = self._assigned + 1
        value, labels = _stamp(obj, revision)
        return await self._submit("ADDED", Entry(key, value, revision, revision, labels), None)

    async def update(
        self, key: str, obj: dict[str, Any], expected_revision: int | None = None
    ) -> Entry:
        self._check_writable()
        current = self._current(key)
        if current is None:
            raise KeyNotFoundError(key)
        if expected_revision is not None and current.mod_revision != expected_revision:
            raise ConflictError(
                f"{key}: expected revision {expected_revision}, have {current.mod_revision}"
            )
        revision = self._assigned + 1
        value, labels = _stamp(obj, revision)
        entry = Entry(key, value, revision, current.create_revision, labels)
        return await self._submit("MODIFIED", entry, current)

    async def delete(self, key: str, expected_revision: int | None = None) -> Entry:
        self._check_writable()
        current = self._current(key)
        if current is None:
            raise KeyNotFoundError(key)
        if expected_revision is not None and current.mod_revision != expected_revision:
            raise ConflictError(
                f"{key}: expected revision {expected_revision}, have {current.mod_revision}"
            )
        revision = self._assigned + 1
        value, _ = _stamp(orjson.loads(current.value), revision)
        entry = Entry(key, value, revision, current.create_revision, current.labels)
        return await self._submit("DELETED", entry, current)

    def _current(self, key: str) -> Entry | None:
        """The newest state of ``key`` counting writes in flight (None: absent or deleted)."""
        pending = self._inflight.get(key)
        if pending is not None:
            return None if pending.type == "DELETED" else pending.entry
        return self._live.get(key)

    def _check_writable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._writer is None or self._closed:
            raise StorageError("the store is not open")

    async def _submit(self, type_: EventType, entry: Entry, prev: Entry | None) -> Entry:
        assert self._writer is not None
        event = WatchEvent(type_, entry, prev, entry.mod_revision)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._assigned = event.revision
        self._inflight[entry.key] = event
        self._writer.submit(PendingWrite(event, future))
        # The write stands once submitted: cancelling the caller cancels only its wait.
        return await future

    def _committed(self, writes: builtins.list[PendingWrite], error: BaseException | None) -> None:
        """On the loop, in revision order: make a committed batch visible, then acknowledge."""
        if error is not None:
            self._failure = StorageError(f"the write-ahead transaction failed: {error}")
            for write in writes:
                if not write.future.done():
                    write.future.set_exception(self._failure)
            return
        stats = self.stats
        stats.transactions += 1
        stats.writes += len(writes)
        stats.largest_batch = max(stats.largest_batch, len(writes))
        live, keys, inflight, hub = self._live, self._keys, self._inflight, self._hub
        for write in writes:
            event = write.event
            key = event.entry.key
            if event.type == "DELETED":
                del live[key]
                del keys[bisect_left(keys, key)]
            else:
                if key not in live:
                    insort(keys, key)
                live[key] = event.entry
            if inflight.get(key) is event:
                del inflight[key]
            self._revision = event.revision
            hub.publish(event)
        for write in writes:
            if not write.future.done():
                write.future.set_result(write.event.entry)

    # -- watch ---------------------------------------------------------------------------

    def watch(self, prefix: str, after: int) -> Watcher:
        """Events under ``prefix`` with revision > ``after``. The iterator raises
        `WatchOverflowError` if the consumer falls ``watch_queue_limit`` events behind, and
        `CompactedError` if a compaction overtakes a replay from the log."""
        if self._writer is None or self._closed:
            raise StorageError("the store is not open")
        if after < self._compacted:
            raise CompactedError(after, self._compacted)
        if after > self._revision:
            raise FutureRevisionError(after, self._revision)
        return self._hub.watch(prefix, after, self._replay)

    async def _replay(
        self, prefix: str, after: int, until: int
    ) -> tuple[builtins.list[WatchEvent], bool]:
        reader = self._require_reader()
        rows, compacted = await asyncio.to_thread(reader.changes, prefix, after, until, REPLAY_PAGE)
        if after < compacted:
            raise CompactedError(after, compacted)
        return [_event(row) for row in rows], len(rows) < REPLAY_PAGE

    # -- compaction ----------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Forget history at or below ``revision``; compacting an already compacted revision
        does nothing; a revision ahead of the store raises `FutureRevisionError`."""
        if revision > self._revision:
            raise FutureRevisionError(revision, self._revision)
        if revision <= self._compacted:
            return
        self._check_writable()
        assert self._writer is not None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writer.submit(Compaction(revision, future))
        await asyncio.shield(future)
        self._compacted = max(self._compacted, revision)
        self.stats.compactions += 1

    async def _compact_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.compaction_interval)
            target = self._revision - self.keep_revisions
            if target > self._compacted:
                try:
                    await self.compact(target)
                except Exception:  # the next round retries; the store keeps serving
                    logger.exception("compacting %s at revision %d failed", self.path, target)

    def _require_reader(self) -> LogReader:
        if self._reader is None or self._closed:
            raise StorageError("the store is not open")
        return self._reader


def _stamp(obj: dict[str, Any], revision: int) -> tuple[bytes, dict[str, str]]:
    """Serialize ``obj`` with ``metadata.resourceVersion`` set, leaving the caller's dict as
    is."""
    metadata = obj.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        raise StorageError("metadata must be an object")
    stamped = {**obj, "metadata": {**metadata, "resourceVersion": str(revision)}}
    labels = metadata.get("labels")
    # Sorted keys: what Go's encoding/json writes for maps, so objects read back (and Secret
    # data, labels, ConfigMap data) come in the order kube-apiserver gives them.
    return (
        orjson.dumps(stamped, option=orjson.OPT_SORT_KEYS),
        dict(labels) if isinstance(labels, dict) else {},
    )


def _labels(value: bytes) -> dict[str, str]:
    metadata = orjson.loads(value).get("metadata") or {}
    labels = metadata.get("labels")
    return dict(labels) if isinstance(labels, dict) else {}


def _entry(row: StateRow) -> Entry:
    key, mod_revision, create_revision, value = row
    return Entry(key, value, mod_revision, create_revision, _labels(value))


def _event(row: ChangeRow) -> WatchEvent:
    revision, key, create_revision, deleted, value, prev_rev, prev_create, prev_value = row
    entry = Entry(key, value, revision, create_revision, _labels(value))
    prev: Entry | None = None
    if prev_rev is not None and prev_create is not None and prev_value is not None:
        prev = Entry(key, prev_value, prev_rev, prev_create, _labels(prev_value))
    type_: EventType = "MODIFIED"
    if deleted:
        type_ = "DELETED"
    elif create_revision == revision:
        type_ = "ADDED"
    return WatchEvent(type_, entry, prev, revision)
