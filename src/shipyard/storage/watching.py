"""Watch fan-out and the in-memory event history.

Why this shape: every API watch (informers, kubectl -w) is a `Watcher` on a key prefix. A write
must reach its watchers without scanning all of them, so `WatchHub` indexes watchers by their
exact prefix and, per event, probes only the key's prefixes of the lengths that some watcher
uses: the cost of a publish is (number of distinct prefix lengths) dict look-ups plus one deque
append per interested watcher, whatever the number of watchers.

History: the hub keeps the newest events in a ring. Revisions are global and every revision is
exactly one event, so the ring holds every revision in ``(floor, newest]`` and the events after
``N`` start at index ``N - floor``. A watch starting inside the ring is served from it; an older
one is replayed from the SQLite log by the store (the `Replay` callback), up to the revision
the watcher was registered at. Because registration and the ring copy happen in one synchronous
step on the event loop, and commits are published on the loop too, the replayed range and the
live range meet exactly: nothing is lost or repeated at the switch.

Events (and their entries) are shared by every watcher and the ring: consumers treat them as
read-only.

Slow watchers: a watcher whose undelivered events exceed ``queue_limit`` is dropped from the hub,
its buffer freed, and its iterator raises `WatchOverflowError` (a `StorageError`). kube-apiserver
closes such a watch; the API server should end the stream likewise, and the client re-watches
from the last resourceVersion it saw.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from itertools import islice

from shipyard.storage.interface import StorageError, WatchEvent, WatchOverflowError

# One page of replayed history: ``(events, done)``; raises CompactedError if history is gone.
Replay = Callable[[str, int, int], Awaitable[tuple[list[WatchEvent], bool]]]



class Watcher:
    """An open watch on ``prefix``: an async iterator of events in revision order.

    Three queues, drained in this order: ``_replayed`` (pages replayed from the log), ``_backlog``
    (the ring's events copied at registration) and ``_buffer`` (live events). Only ``_buffer``
    counts towards ``queue_limit``: history is bounded by the ring and the page size already.
    """

    __slots__ = (
        "prefix",
        "_hub",
        "_buffer",
        "_replayed",
        "_backlog",
        "_waiter",
        "_closed",
        "_error",
        "_replay",
        "_replay_after",
        "_replay_until",
    )

    def __init__(self, hub: WatchHub, prefix: str) -> None:
        self.prefix = prefix
        self._hub = hub
        self._buffer: deque[WatchEvent] = deque()
        self._replayed: deque[WatchEvent] = deque()
        self._backlog: deque[WatchEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._replay: Replay | None = None
        self._replay_after = 0
        self._replay_until = 0

    def __aiter__(self) -> Watcher:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._replayed:
                return self._replayed.popleft()
            if self._replay is not None:
                await self._replay_page()
                continue
            if self._backlog:
                return self._backlog.popleft()
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
        """End iteration (nothing more is delivered) and free the watcher."""
        if not self._closed:
            self._closed = True
            self._replay = None
            self._buffer.clear()
            self._replayed.clear()
            self._backlog.clear()
            self._hub.unregister(self)
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    @property
    def closed(self) -> bool:
        return self._closed

    def _push(self, event: WatchEvent) -> None:
        buffer = self._buffer
        buffer.append(event)
        if len(buffer) > self._hub.queue_limit:
            self._fail(WatchOverflowError(f"watch on {self.prefix!r} fell behind and was closed"))
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self.close()

    async def _replay_page(self) -> None:
        replay = self._replay
        assert replay is not None
        try:
            events, done = await replay(self.prefix, self._replay_after, self._replay_until)
        except StorageError as exc:
            self._fail(exc)
            return
        if self._closed:  # closed or overflowed while the query ran
            return
        if events:
            self._replay_after = events[-1].revision
        if done:
            self._replay = None
        self._replayed.extend(events)


class WatchHub:
    """Watchers indexed by prefix, and the ring of recent events."""

    def __init__(self, floor: int, history_size: int, queue_limit: int) -> None:
        self.queue_limit = queue_limit
        self._by_prefix: dict[str, dict[Watcher, None]] = {}
        self._lengths: dict[int, int] = {}  # prefix length -> number of prefixes of that length
        self._length_list: list[int] = []
        self._history: deque[WatchEvent] = deque()
        self._history_size = history_size
        self._floor = floor

    @property
    def watcher_count(self) -> int:
        return sum(len(watchers) for watchers in self._by_prefix.values())

    def publish(self, event: WatchEvent) -> None:
        """Deliver a durable event to every watcher whose prefix matches, and remember it."""
        history = self._history
        history.append(event)
        if len(history) > self._history_size:
            self._floor = history.popleft().revision
        key = event.entry.key
        by_prefix = self._by_prefix
        for length in self._length_list:
            watchers = by_prefix.get(key[:length])
            if watchers is not None:
                for watcher in tuple(watchers):
                    watcher._push(event)

    def watch(self, prefix: str, after: int, replay: Replay) -> Watcher:
        """Register a watcher for revisions > ``after``, at most the newest published one.

        Bounds (compaction, future revisions) are the caller's to check first.
        """
        watcher = Watcher(self, prefix)
        if after >= self._floor:
            start = after - self._floor
            watcher._backlog.extend(
                event
                for event in islice(self._history, start, None)
                if event.entry.key.startswith(prefix)
            )
        else:  # older than the ring: the log supplies (after, floor], the ring the rest
            watcher._replay = replay
            watcher._replay_after = after
            watcher._replay_until = self._floor
            watcher._backlog.extend(
                event for event in self._history if event.entry.key.startswith(prefix)
            )
        self._register(watcher)
        return watcher

    def _register(self, watcher: Watcher) -> None:
        prefix = watcher.prefix
        watchers = self._by_prefix.get(prefix)
        if watchers is None:
            watchers = self._by_prefix[prefix] = {}
            self._lengths[len(prefix)] = self._lengths.get(len(prefix), 0) + 1
            self._length_list = sorted(self._lengths)
        watchers[watcher] = None

    def unregister(self, watcher: Watcher) -> None:
        prefix = watcher.prefix
        watchers = self._by_prefix.get(prefix)
        if watchers is None or watcher not in watchers:
            return
        del watchers[watcher]
        if not watchers:
            del self._by_prefix[prefix]
            remaining = self._lengths[len(prefix)] - 1
            if remaining:
                self._lengths[len(prefix)] = remaining
            else:
                del self._lengths[len(prefix)]
            self._length_list = sorted(self._lengths)

    def close_all(self) -> None:
        for watchers in list(self._by_prefix.values()):
            for watcher in list(watchers):
                watcher.close()
