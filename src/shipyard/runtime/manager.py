"""`Manager`: shared informers, the controllers built on them, leader election and shutdown.

One informer per (kind, namespace) is shared by every controller that watches the kind, so a
kind is listed and watched once per process (controller-runtime's cache). `run()`:

1. starts the informers, leader or not, so a standby has a warm cache when it takes over;
2. with leader election, waits to acquire the Lease;
3. starts the controllers, each once its informers have synced;
4. runs until `stop()` or until the Lease is lost. Losing it stops the controllers and makes
   `run()` raise `LeaderElectionLost`: as in controller-runtime the replica must not carry on
   half-alive; its supervisor restarts it as a fresh candidate;
5. shuts down gracefully: queues stop accepting work, in-flight reconciles get
   `graceful_shutdown_timeout` seconds, the Lease is released if configured, informers stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from shipyard.client.interfaces import GVK, ReaderWriter
from shipyard.runtime import logs
from shipyard.runtime.controller import Controller
from shipyard.runtime.handlers import MapFunc, Predicate, for_object, for_owner
from shipyard.runtime.informers import Informer
from shipyard.runtime.leaderelection import LeaderElectionConfig, LeaderElector
from shipyard.runtime.metrics import Metrics, default_metrics
from shipyard.runtime.ratelimiting import RateLimiter
from shipyard.runtime.reconcile import Reconciler

log = logs.get_logger(__name__)


class LeaderElectionLost(Exception):
    """This replica lost its Lease; its controllers have been stopped."""


class Manager:
    def __init__(
        self, client: ReaderWriter, *, namespace: str | None = None,
        leader_election: LeaderElectionConfig | None = None, metrics: Metrics | None = None,
        graceful_shutdown_timeout: float = 30.0, informer_options: dict[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.metrics = metrics or default_metrics()
        self.graceful_shutdown_timeout = graceful_shutdown_timeout
        self.informer_options = informer_options or {}
        self.elector = (LeaderElector(client, leader_election, self.metrics)
                        if leader_election else None)
        self.controllers: list[Controller] = []
        self.elected = asyncio.Event()
        self._informers: dict[tuple[GVK, str | None], Informer] = {}
        self._stopping = asyncio.Event()
        self._running = False

    # ---------------------------------------------------------------- building

    def informer(self, gvk: GVK | tuple[str, str]) -> Informer:
        """The shared informer of a kind (created on first use; started by `run()`)."""
        key = (GVK(*gvk), self.namespace)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, key[0].api_version, key[0].kind, self.namespace,
                                **self.informer_options)
            self._informers[key] = informer
            if self._running:
                informer.start()
        return informer

    def add(self, controller: Controller) -> Controller:
        self.controllers.append(controller)
        return controller

    async def new_controller(
        self, name: str, reconciler: Reconciler, *, for_: GVK | tuple[str, str],
        owns: Iterable[GVK | tuple[str, str]] = (),
        watches: Sequence[tuple[GVK | tuple[str, str], MapFunc]] = (),
        predicate: Predicate | None = None, max_concurrent_reconciles: int = 1,
        rate_limiter: RateLimiter | None = None,
    ) -> Controller:
        """controller-runtime's builder: For one kind, Owns children, Watches anything else."""
        primary = GVK(*for_)
        controller = Controller(name, reconciler,
                                max_concurrent_reconciles=max_concurrent_reconciles,
                                rate_limiter=rate_limiter, metrics=self.metrics)
        controller.watch(self.informer(primary), for_object, predicate)
        if owns:
            mapping = await self.client.mapper.mapping(*primary)
            to_owner = for_owner(primary, owner_namespaced=mapping.namespaced)
            for child in owns:
                controller.watch(self.informer(child), to_owner)
        for gvk, map_fn in watches:
            controller.watch(self.informer(gvk), map_fn)
        return self.add(controller)

    # ---------------------------------------------------------------- running

    def stop(self) -> None:
        """Ask `run()` to shut down gracefully (safe to call from a signal handler)."""
        self._stopping.set()

    async def run(self) -> None:
        self._running = True
        for informer in self._informers.values():
            informer.start()
        stopping = asyncio.create_task(self._stopping.wait())
        holding: asyncio.Task[None] | None = None
        lost = False
        try:
            if self.elector is not None:
                if not await self._until_stopped(self.elector.acquire(), stopping):
                    return
                self.elected.set()
                holding = asyncio.create_task(self.elector.hold())
            starting = asyncio.gather(*(c.start() for c in self.controllers))
            if not await self._until_stopped(starting, stopping):
                return
            log.info("all controllers started")
            waiters: set[asyncio.Future[Any]] = {stopping}
            if holding is not None:
                waiters.add(holding)
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            lost = holding is not None and holding in done
        finally:
            stopping.cancel()
            if holding is not None:
                holding.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await holding
            await self._shutdown(release=not lost)
        if lost:
            raise LeaderElectionLost(self.elector.config.name if self.elector else "")

    async def _until_stopped(self, work: Any, stopping: asyncio.Task[Any]) -> bool:
        """Run `work` unless a stop comes first; True if it completed."""
        task = asyncio.ensure_future(work)
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False

    async def _shutdown(self, release: bool) -> None:
        log.info("stopping controllers")
        await asyncio.gather(*(c.stop(self.graceful_shutdown_timeout)
                               for c in self.controllers))
        if release and self.elector is not None and self.elector.config.release_on_cancel:
            await self.elector.release()
        elif self.elector is not None:
            self.elector.is_leader = False
        await asyncio.gather(*(i.stop() for i in self._informers.values()))
        self._running = False
