"""The SQLite revision log: the durable half of `SQLiteStore`.

Why a log and not a table of objects: one append-only table whose integer primary key *is* the
global revision (kine's design) gives, in one structure, the resourceVersion counter, historic
snapshots for paged lists, and the replay source for watches that start behind the in-memory
history. Every write appends a row; a delete appends a tombstone carrying the last state stamped
with the deletion revision, so a replayed DELETED event is exactly the live one.

Threads: `LogWriter` owns the only writing connection on its own thread and commits everything
queued since its last transaction in one transaction (group commit): the fsync of one commit is
shared by every writer that arrived while the previous one was in progress. `LogReader` owns a
second connection (WAL lets it read while the writer writes) used from worker threads under a
lock. Each reader query also returns the compacted revision *from the same snapshot*, so a caller
can tell that a compaction raced it and answer `CompactedError` instead of a silent gap.

Compaction (``compact``) deletes, at or below a revision, tombstones and every row that a newer
row of the same key supersedes: what remains is each key's newest live row, so snapshots at or
after the compacted revision stay exact. The compacted revision is kept in ``meta`` because the
rows that held the newest revisions may be among those deleted.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.storage.interface import Entry, WatchEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_id ON log (key, id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")

_INSERT = (
    "INSERT INTO log (id, key, create_revision, prev_revision, deleted, value)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_COMPACT = (
    "DELETE FROM log WHERE id <= :rev AND (deleted = 1 OR id < ("
    "SELECT MAX(newer.id) FROM log AS newer WHERE newer.key = log.key AND newer.id <= :rev))"
)
_SET_COMPACTED = (
    "INSERT INTO meta (name, value) VALUES ('compact_revision', ?)"
    " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)
_GET_COMPACTED = "SELECT COALESCE(MAX(value), 0) FROM meta WHERE name = 'compact_revision'"

# A change row as replayed: the row itself, then its predecessor (NULLs for ADDED).
ChangeRow = tuple[int, str, int, int, bytes, int | None, int | None, bytes | None]
# A snapshot row: key, mod revision, create revision, value.
StateRow = tuple[str, int, int, bytes]


def connect(path: str, synchronous: str) -> sqlite3.Connection:
    """A connection in WAL mode with autocommit; transactions are begun explicitly."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA journal_size_limit=67108864")
    return conn


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """``[low, high)`` such that ``low <= key < high`` iff ``key.startswith(prefix)``.

    SQLite compares TEXT by its UTF-8 bytes, which orders like code points, so bumping the last
    code point of the prefix gives the exclusive upper bound (None: no bound).
    """
    stem = prefix
    while stem:
        last = ord(stem[-1])
        if last < 0x10FFFF:
            bumped = last + 1 if not 0xD800 <= last + 1 <= 0xDFFF else 0xE000
            return prefix, stem[:-1] + chr(bumped)
        stem = stem[:-1]
    return prefix, None


@dataclass(slots=True)
class PendingWrite:
    """A write whose revision is assigned and whose row waits for the writer thread."""

    event: WatchEvent
    future: asyncio.Future[Entry]

    def row(self) -> tuple[int, str, int, int, int, bytes]:
        event = self.event
        prev = event.prev.mod_revision if event.prev is not None else 0
        deleted = 1 if event.type == "DELETED" else 0
        entry = event.entry
        return (event.revision, entry.key, entry.create_revision, prev, deleted, entry.value)


@dataclass(slots=True)
class Compaction:
    revision: int
    future: asyncio.Future[None]


CommitCallback = Callable[[list[PendingWrite], BaseException | None], None]


class LogWriter:
    """The single writer thread: drains its queue into one transaction per round."""

    def __init__(
        self, conn: sqlite3.Connection, loop: asyncio.AbstractEventLoop, on_commit: CommitCallback
    ) -> None:
        self._conn = conn
        self._loop = loop
        self._on_commit = on_commit
        self._cond = threading.Condition()
        self._queue: list[PendingWrite | Compaction] = []
        self._stopping = False
        self._failure: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="shipyard-sqlite-writer", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def submit(self, op: PendingWrite | Compaction) -> None:
        with self._cond:
            self._queue.append(op)
            self._cond.notify()

    def stop(self) -> None:
        """Ask the thread to commit what is queued and exit; `join` waits for it."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            writes = [op for op in batch if isinstance(op, PendingWrite)]
            if writes:
                self._commit(writes)
            for op in batch:
                if isinstance(op, Compaction):
                    self._compact(op)

    def _commit(self, writes: list[PendingWrite]) -> None:
        # After a failed commit nothing more is written: later revisions would leave a gap.
        error = self._failure
        if error is None:
            error = self._failure = self._transact(writes)
        self._call(self._on_commit, writes, error)

    def _transact(self, writes: list[PendingWrite]) -> BaseException | None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(_INSERT, [w.row() for w in writes])
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except Exception as exc:  # reported to every waiting writer on the loop
            return exc
        return None

    def _compact(self, op: Compaction) -> None:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(_COMPACT, {"rev": op.revision})
                self._conn.execute(_SET_COMPACTED, (op.revision,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            # PASSIVE never waits for readers; the WAL is reused once fully checkpointed.
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception as exc:
            self._call(_fail, op.future, exc)
        else:
            self._call(_succeed, op.future)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            pass


def _succeed(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class LogReader:
    """Snapshot queries on a second connection, called from worker threads."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close the connection once no query runs on it; later queries raise."""
        with self._lock:
            self._closed = True
            self._conn.close()

    def load(self) -> tuple[list[StateRow], int, int]:
        """Every live key's newest row, the newest revision and the compacted revision."""
        with self._lock, _snapshot(self._conn):
            rows: list[StateRow] = self._conn.execute(
                "SELECT log.key, log.id, log.create_revision, log.value FROM log"
                " JOIN (SELECT MAX(id) AS id FROM log GROUP BY key) AS newest"
                " ON log.id = newest.id WHERE log.deleted = 0"
            ).fetchall()
            (newest,) = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM log").fetchone()
            (compacted,) = self._conn.execute(_GET_COMPACTED).fetchone()
        return rows, max(int(newest), int(compacted)), int(compacted)

    def state_at(
        self, prefix: str, revision: int, start_after: str, limit: int
    ) -> tuple[list[StateRow], int]:
        """Live keys under ``prefix`` as of ``revision``, sorted, after ``start_after``."""
        low, high = prefix_bounds(prefix)
        low = max(low, start_after + "\x00") if start_after else low
        sql = (
            "SELECT log.key, log.id, log.create_revision, log.value FROM log JOIN ("
            "SELECT MAX(id) AS id FROM log WHERE id <= ? AND key >= ?"
            + (" AND key < ?" if high is not None else "")
            + " GROUP BY key) AS newest ON log.id = newest.id"
            " WHERE log.deleted = 0 ORDER BY log.key LIMIT ?"
        )
        args: list[object] = [revision, low] + ([high] if high is not None else [])
        args.append(limit if limit > 0 else -1)
        with self._lock, _snapshot(self._conn):
            rows: list[StateRow] = self._conn.execute(sql, args).fetchall()
            (compacted,) = self._conn.execute(_GET_COMPACTED).fetchone()
        return rows, int(compacted)

    def changes(
        self, prefix: str, after: int, until: int, limit: int
    ) -> tuple[list[ChangeRow], int]:
        """Rows under ``prefix`` with ``after < id <= until`` in revision order, each joined
        with the row it superseded."""
        low, high = prefix_bounds(prefix)
        sql = (
            "SELECT l.id, l.key, l.create_revision, l.deleted, l.value,"
            " p.id, p.create_revision, p.value"
            " FROM log AS l LEFT JOIN log AS p ON p.id = l.prev_revision"
            " WHERE l.id > ? AND l.id <= ? AND l.key >= ?"
            + (" AND l.key < ?" if high is not None else "")
            + " ORDER BY l.id LIMIT ?"
        )
        args: list[object] = [after, until, low] + ([high] if high is not None else [])
        args.append(limit)
        with self._lock, _snapshot(self._conn):
            rows: list[ChangeRow] = self._conn.execute(sql, args).fetchall()
            (compacted,) = self._conn.execute(_GET_COMPACTED).fetchone()
        return rows, int(compacted)


class _snapshot:
    """One read transaction, so several SELECTs see the same committed state."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
