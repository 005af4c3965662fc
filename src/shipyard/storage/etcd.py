"""`EtcdStore`: the `Store` on an etcd cluster, for API servers that share state (stacked etcd).

Why this shape: the `Store` protocol reads synchronously (``get``, ``list``, ``revision``),
because SQLiteStore serves reads from memory. Here too: like kube-apiserver's watch cache, the
store keeps a *mirror* of every key under its prefix, loaded by a paged range at one revision and
then kept current by a single etcd watch from the revision after it. Writes go straight to
etcd; a write's coroutine returns only once the mirror has applied that write's revision, so a
caller reads its own writes, and the write's event has been published to watchers by then.

Contract, as `interface` states it, with etcd doing the hard parts:

* Compare-and-swap is an etcd transaction: create compares ``create_revision == 0``, update
  and delete compare ``mod_revision == expected`` (or ``create_revision != 0`` for "exists");
  the failure branch reads the key to tell `KeyNotFoundError` from `ConflictError`.
  It is linearized by etcd, so several API servers on one etcd cannot both win.
* resourceVersion: etcd assigns the revision at commit, so it cannot be written into the value
  beforehand. As kube-apiserver does, the value is stored *without* ``metadata.resourceVersion``
  and every decode stamps ``resourceVersion = mod_revision`` (sorted keys, as SQLiteStore
  writes them), so an `Entry` still satisfies ``value.metadata.resourceVersion ==
  str(mod_revision)``.
* Revisions are etcd's: global across the cluster, so writes elsewhere in etcd (other prefixes)
  leave gaps, and a fresh etcd starts at revision 1, its first write being 2. `revision` is
  the newest revision the mirror has applied; with several API servers on one etcd, one may
  be handed a resourceVersion its mirror has not reached yet (`wait_for_revision`).
* ``list_at`` reads etcd at that revision (paged, at one revision). ``compact`` is etcd's
  compaction; `compacted_revision` is found at open (etcd does not report it) and kept current.
* ``watch``: from the mirror's ring of recent events when ``after`` is inside it (see
  `etcd_watch.RingHub`), otherwise from a watch stream of its own that etcd replays from
  ``after + 1`` (`etcd_watch.StreamWatch`).

Keys: the store key ``k`` lives at etcd key ``prefix + k``. The API server's keys already begin
with ``/registry/``, so the default empty prefix gives kube-apiserver's layout; a prefix lets
several stores (tests, separate Shipyard servers) share one etcd. Values that are not JSON
objects under the prefix are ignored with a warning.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import heapq
import logging
import ssl
from bisect import bisect_left, insort
from typing import Any

import orjson

from shipyard.storage.etcd_gateway import (
    JSON,
    EtcdClient,
    EtcdCompactedError,
    EtcdError,
    EtcdFutureRevisionError,
    b64,
    key_range,
    range_end,
    unb64,
)
from shipyard.storage.etcd_watch import RingHub, StreamWatch, decode, encode
from shipyard.storage.interface import (
    CompactedError,
    ConflictError,
    Entry,
    FutureRevisionError,
    KeyExistsError,
    KeyNotFoundError,
    StorageError,
    Watch,
    WatchEvent,
)
from shipyard.storage.sqlitelog import prefix_bounds

PAGE = 1000
RETRY_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)

logger = logging.getLogger(__name__)


class EtcdStore:
    """The `Store` protocol on etcd's JSON gateway; see the module docstring."""

    def __init__(
        self,
        endpoints: builtins.list[str],
        prefix: str = "",
        *,
        compaction_interval: float = 300.0,
        keep_revisions: int = 1000,
        history_size: int = 10_000,
        watch_queue_limit: int = 10_000,
        request_timeout: float = 30.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.endpoints = list(endpoints)
        self.prefix = prefix
        self.compaction_interval = compaction_interval
        self.keep_revisions = keep_revisions
        self._client = EtcdClient(self.endpoints, request_timeout=request_timeout, tls=tls)
        self._raw_prefix = prefix.encode()
        self._history_size = history_size
        self._watch_queue_limit = watch_queue_limit
        self._revision = 0
        self._compacted = 0
        self._live: dict[str, Entry] = {}
        self._keys: builtins.list[str] = []
        self._hub = RingHub(0, history_size, watch_queue_limit)
        self._streams: dict[StreamWatch, None] = {}
        self._waiters: builtins.list[tuple[int, int, asyncio.Future[None]]] = []
        self._tasks: builtins.list[asyncio.Task[None]] = []
        self._opened = False
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
        """Open watchers, from the ring and on streams of their own."""
        return self._hub.watcher_count + len(self._streams)

    async def open(self) -> None:
        if self._opened or self._closed:
            raise StorageError("the store can be opened only once")
        self._opened = True
        await self._client.start()
        try:
            await self._load()
        except BaseException:
            await self._client.close()
            raise
        self._tasks.append(asyncio.create_task(self._follow()))
        if self.compaction_interval > 0:
            self._tasks.append(asyncio.create_task(self._compact_periodically()))

    async def _load(self) -> None:
        """Mirror every key under the prefix at one revision, then find the compacted one."""
        entries, revision = await self._range(b"", 0, "", 0)
        self._live = {e.key: e for e in entries}
        self._keys = [e.key for e in entries]
        self._revision = revision
        self._compacted = await self._client.compacted_revision(revision)
        self._hub = RingHub(revision, self._history_size, self._watch_queue_limit)

    async def close(self) -> None:
        """Stop following etcd, end every watch and release the connections."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._hub.close_all()
        streams = list(self._streams)
        for stream in streams:
            stream.close()
        for stream in streams:
            await stream.wait_closed()
        self._release_waiters(StorageError("the store was closed"))
        await self._client.close()

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
        entries, _ = await self._range(prefix.encode(), revision, start_after, limit)
        return entries

    async def _range(
        self, prefix: bytes, revision: int, start_after: str, limit: int
    ) -> tuple[builtins.list[Entry], int]:
        """Keys under ``prefix`` at ``revision`` (0: now) after ``start_after``, read in pages
        at one revision; returns them and that revision."""
        full = self._raw_prefix + prefix
        low = full or b"\0"
        if start_after:
            low = max(low, self._raw_prefix + start_after.encode() + b"\0")
        entries: builtins.list[Entry] = []
        pages = self._client.range_pages(low, range_end(full), revision,
                                         PAGE if limit <= 0 else min(PAGE, limit))
        try:
            async with contextlib.aclosing(pages):
                async for kvs, revision in pages:
                    entries.extend(e for e in map(self._decode_kv, kvs) if e is not None)
                    if 0 < limit <= len(entries):
                        return entries[:limit], revision
        except EtcdCompactedError:
            self._note_compacted(await self._client.compacted_revision(self._revision))
            raise CompactedError(revision, self._compacted) from None
        except EtcdFutureRevisionError:
            raise FutureRevisionError(revision, self._revision) from None
        return entries, revision

    # -- writes --------------------------------------------------------------------------

    async def create(self, key: str, obj: dict[str, Any]) -> Entry:
        self._check_writable()
        raw_key, value = self._key(key), encode(obj)
        answer = await self._txn(
            [{"target": "CREATE", "result": "EQUAL", "key": b64(raw_key), "create_revision": 0}],
            {"request_put": {"key": b64(raw_key), "value": b64(value)}},
            raw_key,
        )
        if not answer.get("succeeded"):
            raise KeyExistsError(key)
        revision = int(answer["header"]["revision"])
        await self._caught_up(revision)
        return decode(key, value, revision, revision)

    async def update(
        self, key: str, obj: dict[str, Any], expected_revision: int | None = None
    ) -> Entry:
        self._check_writable()
        raw_key, value = self._key(key), encode(obj)
        answer = await self._txn(
            [self._precondition(raw_key, expected_revision)],
            {"request_put": {"key": b64(raw_key), "value": b64(value), "prev_kv": True}},
            raw_key,
        )
        self._raise_for_failure(key, answer, expected_revision)
        revision = int(answer["header"]["revision"])
        prev = answer["responses"][0]["response_put"].get("prev_kv") or {}
        await self._caught_up(revision)
        return decode(key, value, revision, int(prev.get("create_revision", revision)))

    async def delete(self, key: str, expected_revision: int | None = None) -> Entry:
        self._check_writable()
        raw_key = self._key(key)
        answer = await self._txn(
            [self._precondition(raw_key, expected_revision)],
            {"request_delete_range": {"key": b64(raw_key), "prev_kv": True}},
            raw_key,
        )
        self._raise_for_failure(key, answer, expected_revision)
        revision = int(answer["header"]["revision"])
        prev_kvs = answer["responses"][0]["response_delete_range"].get("prev_kvs") or [{}]
        prev = prev_kvs[0]
        await self._caught_up(revision)
        return decode(key, unb64(prev.get("value")), revision, int(prev.get("create_revision", 0)))

    def _key(self, key: str) -> bytes:
        return self._raw_prefix + key.encode()

    @staticmethod
    def _precondition(raw_key: bytes, expected_revision: int | None) -> JSON:
        if expected_revision is None:  # the key exists
            return {"target": "CREATE", "result": "NOT_EQUAL", "key": b64(raw_key),
                    "create_revision": 0}
        return {"target": "MOD", "result": "EQUAL", "key": b64(raw_key),
                "mod_revision": expected_revision}

    async def _txn(self, compare: builtins.list[JSON], success: JSON, raw_key: bytes) -> JSON:
        """One compare-then-write transaction; the failure branch reads the key."""
        return await self._client.txn({
            "compare": compare,
            "success": [success],
            "failure": [{"request_range": {"key": b64(raw_key)}}],
        })

    @staticmethod
    def _raise_for_failure(key: str, answer: JSON, expected_revision: int | None) -> None:
        if answer.get("succeeded"):
            return
        responses = answer.get("responses") or [{}]
        kvs = responses[0].get("response_range", {}).get("kvs") or []
        if not kvs:
            raise KeyNotFoundError(key)
        have = kvs[0].get("mod_revision", "?")
        raise ConflictError(f"{key}: expected revision {expected_revision}, have {have}")

    def _check_writable(self) -> None:
        if not self._opened or self._closed:
            raise StorageError("the store is not open")

    async def _caught_up(self, revision: int) -> None:
        """Wait until the mirror has applied ``revision`` (and published its event)."""
        if self._revision >= revision:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (revision, id(future), future))
        await future

    async def wait_for_revision(self, revision: int, timeout: float) -> bool:
        """Whether the mirror reaches ``revision`` within ``timeout`` seconds. Another API
        server on the same etcd may hand out a resourceVersion this one has not seen yet;
        kube-apiserver's watch cache waits (up to 3 s) for it before answering "too large
        resource version". Not part of the `Store` protocol."""
        self._check_writable()
        try:
            await asyncio.wait_for(self._caught_up(revision), timeout)
        except TimeoutError:
            return False
        return True

    def _release_waiters(self, error: BaseException | None = None) -> None:
        waiters = self._waiters
        while waiters and (error is not None or waiters[0][0] <= self._revision):
            _, _, future = heapq.heappop(waiters)
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    # -- the mirror ----------------------------------------------------------------------

    async def _follow(self) -> None:
        """Keep the mirror current from one etcd watch; reconnect after failures, reload
        (ending every ring watch) if etcd compacted past the mirror meanwhile."""
        failures = 0
        while True:
            request = {**key_range(self._raw_prefix), "start_revision": self._revision + 1}
            try:
                async for response in self._client.watch(request):
                    failures = 0
                    if response.get("canceled"):
                        compacted = int(response.get("compact_revision", 0))
                        if compacted:
                            await self._reload(compacted)
                            break
                        raise EtcdError(f"etcd canceled the watch: {response}")
                    events = response.get("events")
                    if events:
                        self._apply(events)
            except Exception as exc:  # whatever broke the stream, follow again from the mirror
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                logger.warning("following etcd at %s failed (%s); retrying in %.2f s",
                               self._client.endpoints, exc, delay)
                await asyncio.sleep(delay)

    def _apply(self, events: builtins.list[JSON]) -> None:
        live, keys, hub = self._live, self._keys, self._hub
        for event in events:
            kv = event["kv"]
            revision = int(kv["mod_revision"])
            key = unb64(kv["key"])[len(self._raw_prefix) :].decode(errors="replace")
            prev = live.get(key)
            if event.get("type") == "DELETE":
                if prev is not None:
                    del live[key]
                    del keys[bisect_left(keys, key)]
                    gone = decode(key, prev.value, revision, prev.create_revision)
                    hub.publish(WatchEvent("DELETED", gone, prev, revision))
            else:
                entry = self._decode_kv(kv)
                if entry is not None:
                    if prev is None:
                        insort(keys, key)
                    live[key] = entry
                    hub.publish(WatchEvent("ADDED" if prev is None else "MODIFIED", entry, prev,
                                           revision))
            self._revision = max(self._revision, revision)
        self._release_waiters()

    async def _reload(self, compacted: int) -> None:
        logger.warning("etcd compacted past the mirror (revision %d < %d): reloading",
                       self._revision, compacted)
        old_hub = self._hub
        await self._load()
        error = CompactedError(old_hub.newest, self._compacted)
        old_hub.fail_all(error)
        self._release_waiters()

    def _decode_kv(self, kv: JSON) -> Entry | None:
        key = unb64(kv["key"])[len(self._raw_prefix) :].decode(errors="replace")
        try:
            return decode(key, unb64(kv.get("value")), int(kv["mod_revision"]),
                          int(kv["create_revision"]))
        except (orjson.JSONDecodeError, StorageError) as exc:
            logger.warning("ignoring etcd key %r: %s", key, exc)
            return None

    # -- watch ---------------------------------------------------------------------------

    def watch(self, prefix: str, after: int) -> Watch:
        """Events under ``prefix`` with revision > ``after``: from the ring if it still holds
        them, else from an etcd watch stream of its own."""
        if not self._opened or self._closed:
            raise StorageError("the store is not open")
        if after < self._compacted:
            raise CompactedError(after, self._compacted)
        if after > self._revision:
            raise FutureRevisionError(after, self._revision)
        watcher = self._hub.watch_from_ring(prefix, after)
        if watcher is not None:
            return watcher
        stream = StreamWatch(self._client, self._raw_prefix, prefix, after,
                             self._watch_queue_limit, on_close=self._streams.pop,
                             on_compacted=self._note_compacted)
        self._streams[stream] = None
        stream.start()
        return stream

    # -- compaction ----------------------------------------------------------------------

    def _note_compacted(self, revision: int) -> None:
        """etcd reported compaction at ``revision`` (perhaps another server compacted)."""
        self._compacted = max(self._compacted, revision)

    async def compact(self, revision: int) -> None:
        """Compact etcd at ``revision``; an already compacted revision does nothing, one ahead
        of the store raises `FutureRevisionError`."""
        if revision > self._revision:
            raise FutureRevisionError(revision, self._revision)
        if revision <= self._compacted:
            return
        self._check_writable()
        try:
            await self._client.compact(revision)
        except EtcdCompactedError:  # someone compacted further already
            revision = await self._client.compacted_revision(self._revision)
        self._compacted = max(self._compacted, revision)

    async def _compact_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.compaction_interval)
            target = self._revision - self.keep_revisions
            if target > self._compacted:
                try:
                    await self.compact(target)
                except Exception:  # the next round retries; the store keeps serving
                    logger.exception("compacting etcd at revision %d failed", target)
