"""`Controller`: workers taking requests off a work queue and running the reconciler.

The reconcile handler is controller-runtime's (`pkg/internal/controller`):

- an exception → `add_rate_limited` (per-item exponential backoff), result label "error";
- `TerminalError` → `forget`, not requeued, result label "error", counted as terminal;
- `Result(requeue_after=s)` → `forget`, then `add_after(s)`, label "requeue_after";
- `Result(requeue=True)` → `add_rate_limited`, label "requeue";
- otherwise → `forget`, label "success".

`max_concurrent_reconciles` workers share the queue; the queue guarantees one request is never
reconciled by two workers at once. Each reconcile runs with a fresh reconcileID bound, with the
controller and object, into the log context. `stop()` shuts the queue (nothing new is taken) and
waits up to a timeout for in-flight reconciles before cancelling them.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from shipyard.runtime import logs
from shipyard.runtime.clock import Clock
from shipyard.runtime.handlers import (
    EnqueueHandler,
    MapFunc,
    Predicate,
    RequestSink,
    UpdatePredicate,
    for_object,
)
from shipyard.runtime.informers import Informer
from shipyard.runtime.metrics import Metrics, default_metrics
from shipyard.runtime.queueing import ShutDown, WorkQueue
from shipyard.runtime.ratelimiting import RateLimiter
from shipyard.runtime.reconcile import Reconciler, Request, TerminalError

log = logs.get_logger(__name__)


class CacheSyncTimeout(Exception):
    """A controller's informers did not sync in time."""


class Controller:
    def __init__(
        self, name: str, reconciler: Reconciler, *, max_concurrent_reconciles: int = 1,
        rate_limiter: RateLimiter | None = None, metrics: Metrics | None = None,
        cache_sync_timeout: float = 120.0, clock: Clock | None = None,
    ) -> None:
        if max_concurrent_reconciles < 1:
            raise ValueError("max_concurrent_reconciles must be at least 1")
        self.name = name
        self.reconciler = reconciler
        self.max_concurrent_reconciles = max_concurrent_reconciles
        self.cache_sync_timeout = cache_sync_timeout
        self.metrics = metrics or default_metrics()
        self.queue: WorkQueue[Request] = WorkQueue(name, rate_limiter, self.metrics, clock)
        self.sources: list[Informer] = []
        self._workers: list[asyncio.Task[None]] = []
        self._started = False
        self._reconcile_total = {
            result: self.metrics.reconcile_total.labels(controller=name, result=result)
            for result in ("success", "error", "requeue", "requeue_after")
        }
        self._errors = self.metrics.reconcile_errors.labels(controller=name)
        self._terminal = self.metrics.terminal_errors.labels(controller=name)
        self._time = self.metrics.reconcile_time.labels(controller=name)
        self._active = self.metrics.active_workers.labels(controller=name)

    def watch(self, informer: Informer, map_fn: MapFunc = for_object,
              predicate: Predicate | None = None,
              update_predicate: UpdatePredicate | None = None,
              delay: float = 0.0) -> None:
        """Enqueue `map_fn(obj)` for every event of `informer` (filtered by `predicate`;
        updates also by `update_predicate(old, new)`). With `delay`, requests are added that
        many seconds later, and all events for one request within that window coalesce into
        one reconcile (the queue keeps the earliest pending time): for a reconcile that reads
        many objects (a Cluster summarising its Machines) woken by each of them."""
        if informer not in self.sources:
            self.sources.append(informer)
        sink: RequestSink = self.queue if delay <= 0 else _Delayed(self.queue, delay)
        informer.add_event_handler(EnqueueHandler(sink, map_fn, predicate, update_predicate))

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> None:
        """Wait for every source to sync, then start the workers."""
        if self._started:
            return
        for informer in self.sources:
            if not await informer.wait_for_sync(self.cache_sync_timeout):
                raise CacheSyncTimeout(f"controller {self.name}: {informer} did not sync")
        self._started = True
        self.metrics.max_concurrent.labels(controller=self.name).set(
            self.max_concurrent_reconciles)
        log.info("starting workers", extra={"controller": self.name,
                                            "workers": self.max_concurrent_reconciles})
        self._workers = [asyncio.create_task(self._worker(), name=f"{self.name} worker {i}")
                         for i in range(self.max_concurrent_reconciles)]

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work; let in-flight reconciles finish for up to `timeout` seconds."""
        self.queue.shutdown()
        if not self._workers:
            return
        _, pending = await asyncio.wait(self._workers, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled reconciles still running after %ss", timeout,
                        extra={"controller": self.name})
            await asyncio.wait(pending)
        self._workers = []

    async def wait(self) -> None:
        """Until every worker has returned."""
        if self._workers:
            await asyncio.wait(self._workers)

    async def _worker(self) -> None:
        while True:
            try:
                req = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.reconcile_handler(req)
            finally:
                self.queue.done(req)

    async def reconcile_handler(self, req: Request) -> None:
        reconcile_id = str(uuid.uuid4())
        with logs.bound(controller=self.name, namespace=req.namespace or None, object_name=req.name,
                        reconcileID=reconcile_id):
            self._active.inc()
            start = time.perf_counter()
            try:
                result = await self.reconciler.reconcile(req)
            except TerminalError as e:
                self.queue.forget(req)
                self._reconcile_total["error"].inc()
                self._errors.inc()
                self._terminal.inc()
                log.error("terminal reconciler error, not requeued: %s", e)
                return
            except Exception as e:
                self.queue.add_rate_limited(req)
                self._reconcile_total["error"].inc()
                self._errors.inc()
                log.error("reconciler error, requeued with backoff: %s", e, exc_info=True)
                return
            finally:
                self._time.observe(time.perf_counter() - start)
                self._active.dec()
            if result.requeue_after:
                self.queue.forget(req)
                self.queue.add_after(req, result.requeue_after)
                self._reconcile_total["requeue_after"].inc()
            elif result.requeue:
                self.queue.add_rate_limited(req)
                self._reconcile_total["requeue"].inc()
            else:
                self.queue.forget(req)
                self._reconcile_total["success"].inc()


class _Delayed:
    """A RequestSink adding to a work queue after a fixed delay."""

    def __init__(self, queue: WorkQueue[Request], delay: float) -> None:
        self.queue = queue
        self.delay = delay

    def add(self, item: Request) -> None:
        self.queue.add_after(item, self.delay)
