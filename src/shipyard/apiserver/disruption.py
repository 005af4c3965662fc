"""Keep PodDisruptionBudget status current, as kube-controller-manager's disruption controller.

Shipyard runs no controller manager, yet clients read a budget's status (``kubectl get pdb``
prints ALLOWED DISRUPTIONS; tools wait for ``status.observedGeneration``). One watch over Pods
and one over PodDisruptionBudgets mark their namespace dirty; a worker recomputes every budget of
a dirty namespace (`pods.disruption_status`) and writes the status subresource when it changed.
The eviction subresource does not depend on this: it computes the same status afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shipyard.apimachinery import errors
from shipyard.apiserver import meta as metarules
from shipyard.apiserver.objects import Objects, WriteOptions
from shipyard.apiserver.pods import Obj, disruption_status
from shipyard.apiserver.registry import Registry
from shipyard.storage import Store

log = logging.getLogger(__name__)

RETRY_DELAY = 0.5
PODS_PREFIX = "/registry/core/pods/"
PDBS_PREFIX = "/registry/policy/poddisruptionbudgets/"


class DisruptionController:
    def __init__(self, store: Store, objects: Objects, registry: Registry) -> None:
        self.store = store
        self.objects = objects
        self.registry = registry
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def _enqueue(self, namespace: str) -> None:
        if namespace and namespace not in self._queued:
            self._queued.add(namespace)
            self._queue.put_nowait(namespace)

    def start(self) -> None:
        entries, revision = self.store.list(PDBS_PREFIX)
        for entry in entries:
            self._enqueue(_namespace_of(entry.key))
        self._tasks = [
            asyncio.create_task(self._watch(PODS_PREFIX, revision), name="disruption-pods"),
            asyncio.create_task(self._watch(PDBS_PREFIX, revision), name="disruption-pdbs"),
            asyncio.create_task(self._work(), name="disruption-worker"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self, prefix: str, after: int) -> None:
        watch = self.store.watch(prefix, after)
        try:
            async for event in watch:
                self._enqueue(_namespace_of(event.entry.key))
        finally:
            watch.close()

    async def _work(self) -> None:
        while True:
            namespace = await self._queue.get()
            self._queued.discard(namespace)
            try:
                await self.sync(namespace)
            except Exception:
                log.exception("computing disruption budgets of namespace %s", namespace)
                asyncio.get_running_loop().call_later(RETRY_DELAY, self._enqueue, namespace)

    async def sync(self, namespace: str) -> None:
        """Recompute the status of every budget in ``namespace``."""
        info = self.registry.lookup("policy", "v1", "poddisruptionbudgets")
        if info is None:
            return
        budgets = self.store.list(f"{PDBS_PREFIX}{namespace}/")[0]
        if not budgets:
            return
        pods = [entry.object() for entry in self.store.list(f"{PODS_PREFIX}{namespace}/")[0]]
        write = WriteOptions(field_manager="kube-controller-manager", subresource="status")
        for entry in budgets:
            budget = entry.object()
            if (budget.get("metadata") or {}).get("deletionTimestamp"):
                continue
            status = disruption_status(budget, pods, metarules.now())
            if status == budget.get("status"):
                continue

            def put(current: Obj, status: Obj = status) -> Obj:
                current["status"] = status
                return current

            with contextlib.suppress(errors.NotFound):
                await self.objects.mutate(info, namespace, budget["metadata"]["name"], put,
                                          write)


def _namespace_of(key: str) -> str:
    """``/registry/<group>/<resource>/<namespace>/<name>`` -> namespace."""
    parts = key.split("/")
    return parts[4] if len(parts) > 5 else ""
