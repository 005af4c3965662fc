"""Informers: keep a `Cache` of one kind in step with the API server, and tell handlers.

The loop is client-go's reflector: list (paged with limit/continue) and replace the cache, then
watch from the list's resourceVersion with bookmarks so the resumption point keeps moving even when
nothing we select changes. A watch that ends is resumed from the last resourceVersion seen. A 410
(`Gone`/`Expired`: the server compacted past our resourceVersion) means events were lost, so we
relist (a list that fails, or a continue token that expired, also relists from scratch); the
replace diffs the new list against the cache and reports the adds, updates and
deletes that were missed. Other watch failures back off exponentially (0.8 s doubling to 30 s,
with jitter) and resume the watch from the last resourceVersion. An optional
resync re-delivers every cached object as an update.

Handlers run synchronously on the informer's task and must be quick: the runtime's handlers only
map the object to requests and add them to a work queue.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import aclosing
from typing import Protocol

from shipyard.apimachinery.errors import Gone
from shipyard.client.interfaces import Object, Reader
from shipyard.runtime.cache import Cache, IndexFunc, object_key

log = logging.getLogger(__name__)


class EventHandler(Protocol):
    def on_add(self, obj: Object) -> None: ...

    def on_update(self, old: Object, new: Object) -> None: ...

    def on_delete(self, obj: Object) -> None: ...


class Informer:
    def __init__(
        self, reader: Reader, api_version: str, kind: str, namespace: str | None = None, *,
        label_selector: str | None = None, field_selector: str | None = None,
        page_size: int = 500, resync_period: float | None = None,
        min_watch_timeout: int = 300, backoff_initial: float = 0.8, backoff_max: float = 30.0,
    ) -> None:
        self.reader = reader
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.page_size = page_size
        self.resync_period = resync_period
        self.min_watch_timeout = min_watch_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.cache = Cache()
        self.last_sync_resource_version = ""
        self.relists = 0
        self._handlers: list[EventHandler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backoff = backoff_initial

    def __repr__(self) -> str:
        return f"Informer({self.api_version}, {self.kind}, namespace={self.namespace!r})"

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        self.cache.add_indexer(name, fn)

    def add_event_handler(self, handler: EventHandler) -> None:
        """Register a handler; one added after the first sync is told of every cached object."""
        self._handlers.append(handler)
        if self.has_synced:
            for obj in self.cache.list():
                self._call(handler.on_add, obj)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"informer {self.kind}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def run(self) -> None:
        resync = asyncio.create_task(self._resync()) if self.resync_period else None
        self._backoff = self.backoff_initial
        try:
            while True:
                try:
                    rv = await self._list_and_replace()
                except Exception as e:  # noqa: BLE001 - any failure: back off and relist
                    await self._back_off("list", e)
                    continue
                self._backoff = self.backoff_initial
                try:
                    while True:
                        try:
                            started = asyncio.get_running_loop().time()
                            rv, events = await self._watch(rv)
                            if events == 0 and (asyncio.get_running_loop().time() - started
                                                < 1.0):
                                # client-go's "very short watch": don't spin on a server that
                                # ends every watch at once
                                await self._back_off("watch", TimeoutError("very short watch"))
                            else:
                                self._backoff = self.backoff_initial
                        except Gone:
                            raise
                        except Exception as e:  # noqa: BLE001 - resume from the last RV
                            await self._back_off("watch", e)
                except Gone as e:
                    log.info("%s: %s; relisting", self, e)
                    self.relists += 1
        finally:
            if resync is not None:
                resync.cancel()

    async def _back_off(self, what: str, e: Exception) -> None:
        log.warning("%s: %s failed: %s: %s; retrying in %.2fs", self, what, type(e).__name__, e,
                    self._backoff)
        await asyncio.sleep(self._backoff * (1 + random.random() * 0.1))
        self._backoff = min(self._backoff * 2, self.backoff_max)

    # ---------------------------------------------------------------- list and watch

    async def _list_and_replace(self) -> str:
        items: list[Object] = []
        token: str | None = None
        while True:
            page = await self.reader.list(
                self.api_version, self.kind, self.namespace, label_selector=self.label_selector,
                field_selector=self.field_selector, limit=self.page_size, continue_=token)
            for item in page["items"]:
                item.setdefault("apiVersion", self.api_version)
                item.setdefault("kind", self.kind)
            items.extend(page["items"])
            token = page["metadata"].get("continue") or None
            if not token:
                break
        self._replace(items)
        rv = str(page["metadata"].get("resourceVersion", ""))
        self.last_sync_resource_version = rv
        self._synced.set()
        return rv

    def _replace(self, items: list[Object]) -> None:
        fresh = {object_key(o) for o in items}
        for key in self.cache.keys():
            if key not in fresh:
                old = self.cache.get_by_key(key)
                if old is not None:
                    self.cache.remove(old)
                    self._notify_delete(old)
        for obj in items:
            old = self.cache.upsert(obj)
            if old is None:
                self._notify_add(obj)
            elif _rv(old) != _rv(obj):
                self._notify_update(old, obj)

    async def _watch(self, rv: str) -> tuple[str, int]:
        """Follow one watch to its end; the last resourceVersion and how many events came."""
        count = 0
        timeout = int(self.min_watch_timeout * (1 + random.random()))
        stream = self.reader.watch(
            self.api_version, self.kind, self.namespace, resource_version=rv,
            allow_bookmarks=True, timeout_seconds=timeout, label_selector=self.label_selector,
            field_selector=self.field_selector)
        async with aclosing(stream) as events:
            async for event in events:
                count += 1
                obj = event["object"]
                new_rv = _rv(obj)
                if event["type"] == "BOOKMARK":
                    rv = new_rv or rv
                    continue
                if event["type"] == "DELETED":
                    self.cache.remove(obj)
                    self._notify_delete(obj)
                else:
                    old = self.cache.upsert(obj)
                    if old is None:
                        self._notify_add(obj)
                    else:
                        self._notify_update(old, obj)
                rv = new_rv or rv
                self.last_sync_resource_version = rv
        return rv, count

    async def _resync(self) -> None:
        assert self.resync_period
        while True:
            await asyncio.sleep(self.resync_period)
            if self.has_synced:
                for obj in self.cache.list():
                    self._notify_update(obj, obj)

    # ---------------------------------------------------------------- handlers

    def _call(self, fn: Callable[..., None], *args: Object) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s: event handler failed", self)

    def _notify_add(self, obj: Object) -> None:
        for h in self._handlers:
            self._call(h.on_add, obj)

    def _notify_update(self, old: Object, new: Object) -> None:
        for h in self._handlers:
            self._call(h.on_update, old, new)

    def _notify_delete(self, obj: Object) -> None:
        for h in self._handlers:
            self._call(h.on_delete, obj)


def _rv(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
