"""Owner-reference garbage collection, as kube-controller-manager's garbage collector does it.

An index of every object by uid and of dependents by owner uid is kept from one watch over
the whole store. Then:

* a dependent none of whose owners exists any more is deleted (Background);
* an owner being deleted with the ``orphan`` finalizer has its uid removed from its dependents'
  ownerReferences, then loses the finalizer;
* an owner being deleted with ``foregroundDeletion`` has its dependents deleted, and loses the
  finalizer once no dependent with ``blockOwnerDeletion: true`` remains.

Work is keyed by uid and de-duplicated, so bursts of events cost one pass per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from shipyard.apimachinery import errors
from shipyard.apiserver.objects import FOREGROUND, ORPHAN, Objects, WriteOptions
from shipyard.apiserver.registry import Registry
from shipyard.storage import Store

log = logging.getLogger(__name__)

MANAGER = "kube-controller-manager"  # the field manager its writes are recorded under
WRITE = WriteOptions(field_manager=MANAGER)  # never mutated

RETRY_DELAY = 0.5


class _Node:
    __slots__ = ("key", "owners", "deleting", "finalizers")

    def __init__(self, key: str, owners: list[dict[str, Any]], deleting: bool,
                 finalizers: list[str]) -> None:
        self.key = key
        self.owners = owners
        self.deleting = deleting
        self.finalizers = finalizers


class GarbageCollector:
    def __init__(self, store: Store, objects: Objects, registry: Registry) -> None:
        self.store = store
        self.objects = objects
        self.registry = registry
        self.nodes: dict[str, _Node] = {}  # uid -> node
        self.dependents: dict[str, set[str]] = {}  # owner uid -> dependent uids
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # --------------------------------------------------------------- indexing

    def _observe(self, obj: dict[str, Any], key: str) -> str:
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        self._forget(uid)
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("uid")]
        self.nodes[uid] = _Node(key, owners, bool(meta.get("deletionTimestamp")),
                                list(meta.get("finalizers") or []))
        for owner in owners:
            self.dependents.setdefault(owner["uid"], set()).add(uid)
        return uid

    def _forget(self, uid: str) -> None:
        node = self.nodes.pop(uid, None)
        if node is None:
            return
        for owner in node.owners:
            deps = self.dependents.get(owner["uid"])
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    del self.dependents[owner["uid"]]

    def _enqueue(self, uid: str) -> None:
        if uid and uid not in self._queued:
            self._queued.add(uid)
            self._queue.put_nowait(uid)

    # ---------------------------------------------------------------- running

    def start(self) -> None:
        entries, revision = self.store.list("/registry/")
        for entry in entries:
            uid = self._observe(entry.object(), entry.key)
            self._enqueue(uid)
        self._tasks = [
            asyncio.create_task(self._watch(revision), name="gc-watch"),
            asyncio.create_task(self._work(), name="gc-worker"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self, after: int) -> None:
        watch = self.store.watch("/registry/", after)
        try:
            async for event in watch:
                obj = event.entry.object()
                uid = str((obj.get("metadata") or {}).get("uid", ""))
                if event.type == "DELETED":
                    node = self.nodes.get(uid)
                    self._forget(uid)
                    # Its dependents may now be orphans; its owners may now be unblocked.
                    for dep in list(self.dependents.get(uid, ())):
                        self._enqueue(dep)
                    for owner in node.owners if node is not None else ():
                        self._enqueue(owner["uid"])
                    continue
                self._observe(obj, event.entry.key)
                self._enqueue(uid)
                # A dependent disappearing or losing blockOwnerDeletion may unblock owners.
                for owner in (obj.get("metadata") or {}).get("ownerReferences") or []:
                    self._enqueue(owner.get("uid", ""))
        finally:
            watch.close()

    async def _work(self) -> None:
        while True:
            uid = await self._queue.get()
            self._queued.discard(uid)
            try:
                await self._process(uid)
            except errors.NotFound:
                pass
            except Exception:
                log.exception("garbage collecting %s", uid)
                asyncio.get_running_loop().call_later(RETRY_DELAY, self._enqueue, uid)

    async def _process(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        info = self.registry.for_key(node.key)
        if info is None:
            return
        name = node.key.rsplit("/", 1)[-1]
        namespace = node.key.split("/")[4] if info.namespaced else None
        if node.owners and not node.deleting:
            if not any(owner["uid"] in self.nodes for owner in node.owners):
                await self.objects.delete(info, namespace, name,
                                          {"propagationPolicy": "Background"}, WRITE)
                return
        if node.deleting and ORPHAN in node.finalizers:
            await self._orphan(uid)
            await self._drop_finalizer(info, namespace, name, ORPHAN)
        elif node.deleting and FOREGROUND in node.finalizers:
            blocking = False
            for dep_uid in list(self.dependents.get(uid, ())):
                dep = self.nodes.get(dep_uid)
                if dep is None:
                    continue
                ref = next((o for o in dep.owners if o["uid"] == uid), {})
                if ref.get("blockOwnerDeletion"):
                    blocking = True
                if not dep.deleting:
                    dep_info = self.registry.for_key(dep.key)
                    if dep_info is not None:
                        dep_ns = dep.key.split("/")[4] if dep_info.namespaced else None
                        with contextlib.suppress(errors.NotFound):
                            await self.objects.delete(
                                dep_info, dep_ns, dep.key.rsplit("/", 1)[-1],
                                {"propagationPolicy": "Foreground"}, WRITE,
                            )
            if not blocking:
                await self._drop_finalizer(info, namespace, name, FOREGROUND)

    async def _orphan(self, owner_uid: str) -> None:
        for dep_uid in list(self.dependents.get(owner_uid, ())):
            dep = self.nodes.get(dep_uid)
            if dep is None:
                continue
            info = self.registry.for_key(dep.key)
            if info is None:
                continue
            ns = dep.key.split("/")[4] if info.namespaced else None

            def strip(obj: dict[str, Any]) -> dict[str, Any]:
                refs = obj["metadata"].get("ownerReferences") or []
                kept = [r for r in refs if r.get("uid") != owner_uid]
                if kept:
                    obj["metadata"]["ownerReferences"] = kept
                else:
                    obj["metadata"].pop("ownerReferences", None)
                return obj

            with contextlib.suppress(errors.NotFound):
                await self.objects.mutate(info, ns, dep.key.rsplit("/", 1)[-1], strip,
                                          WRITE)

    async def _drop_finalizer(
        self, info: Any, namespace: str | None, name: str, finalizer: str
    ) -> None:
        def drop(obj: dict[str, Any]) -> dict[str, Any]:
            obj["metadata"]["finalizers"] = [
                f for f in obj["metadata"].get("finalizers") or [] if f != finalizer
            ]
            return obj

        await self.objects.mutate(info, namespace, name, drop, WRITE)
