"""The work queue between informers and reconcilers (client-go's rate-limiting workqueue).

Its guarantees are what make level-based reconcilers safe and cheap:

- de-duplication: an item added many times before a worker takes it is processed once;
- no concurrent processing of one item: an item added while a worker holds it is marked dirty
  and handed out again only after that worker calls `done()`;
- `add_after()` delays an add; among several pending delays for one item the earliest wins;
- `add_rate_limited()` delays by the rate limiter's backoff for that item, and `forget()` resets
  it after a success;
- `shutdown()` stops accepting adds and wakes every waiting `get()` with `ShutDown`; items still
  queued are dropped (in-flight ones finish: the controller waits for its workers).

Time comes from an injectable `Clock` (the event loop's by default; `FakeClock` in tests).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from shipyard.runtime.clock import Cancellable, Clock, LoopClock
from shipyard.runtime.metrics import Metrics, default_metrics
from shipyard.runtime.ratelimiting import RateLimiter, default_controller_rate_limiter

T = TypeVar("T", bound=Hashable)


class ShutDown(Exception):
    """The queue is shutting down: workers should return."""


class WorkQueue(Generic[T]):
    def __init__(self, name: str = "", rate_limiter: RateLimiter | None = None,
                 metrics: Metrics | None = None, clock: Clock | None = None) -> None:
        self.name = name
        self.clock = clock or LoopClock()
        self.rate_limiter = rate_limiter or default_controller_rate_limiter(self._now)
        self._metrics = metrics or default_metrics()
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._waiting: dict[T, tuple[float, Cancellable]] = {}
        self._added_at: dict[T, float] = {}
        self._started_at: dict[T, float] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        labels = {"controller": name, "name": name}
        self._depth = self._metrics.depth.labels(**labels)
        self._adds = self._metrics.adds.labels(**labels)
        self._retries = self._metrics.retries.labels(**labels)
        self._queue_duration = self._metrics.queue_duration.labels(**labels)
        self._work_duration = self._metrics.work_duration.labels(**labels)

    def _now(self) -> float:
        return self.clock.now()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def processing(self) -> frozenset[T]:
        return frozenset(self._processing)

    def add(self, item: T) -> None:
        if self._shutting_down or item in self._dirty:
            return
        self._adds.inc()
        self._dirty.add(item)
        self._added_at.setdefault(item, self._now())
        if item in self._processing:
            return
        self._push(item)

    def _push(self, item: T) -> None:
        self._queue.append(item)
        self._depth.set(len(self._queue))
        self._wake_one()

    async def get(self) -> T:
        """The next item; the caller must call `done(item)` when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                # pass the wake-up on if we were woken and cancelled at once
                if getter.done() and not getter.cancelled() and self._queue:
                    self._wake_one()
                raise
        if self._shutting_down:
            raise ShutDown
        item = self._queue.popleft()
        self._depth.set(len(self._queue))
        self._processing.add(item)
        self._dirty.discard(item)
        now = self._now()
        added = self._added_at.pop(item, None)
        if added is not None:
            self._queue_duration.observe(now - added)
        self._started_at[item] = now
        return item

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def done(self, item: T) -> None:
        self._processing.discard(item)
        started = self._started_at.pop(item, None)
        if started is not None:
            self._work_duration.observe(self._now() - started)
        if item in self._dirty and not self._shutting_down:
            self._push(item)

    def add_after(self, item: T, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        ready = self._now() + delay
        pending = self._waiting.get(item)
        if pending is not None:
            if pending[0] <= ready:
                return
            pending[1].cancel()
        handle = self.clock.call_at(ready, lambda: self._ready(item))
        self._waiting[item] = (ready, handle)

    def _ready(self, item: T) -> None:
        self._waiting.pop(item, None)
        self.add(item)

    def add_rate_limited(self, item: T) -> None:
        self._retries.inc()
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)

    def shutdown(self) -> None:
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        self._queue.clear()
        self._dirty.clear()
        self._depth.set(0)
        for getter in self._getters:
            if not getter.done():
                getter.set_result(None)
        self._getters.clear()
