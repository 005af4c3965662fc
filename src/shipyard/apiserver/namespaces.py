"""Namespace lifecycle: the four system namespaces, admission of writes into namespaces, and
deletion that empties a namespace before it goes (the ``kubernetes`` spec finalizer).

A namespace being deleted is ``Terminating``: new objects are refused (403 Forbidden, cause
NamespaceTerminating), every namespaced object in it is deleted, and once nothing is left the
``kubernetes`` finalizer is removed through ``/finalize`` and the namespace disappears.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from shipyard.apimachinery import errors
from shipyard.apiserver.objects import Objects, WriteOptions
from shipyard.apiserver.registry import Registry
from shipyard.apiserver.resources import ResourceInfo
from shipyard.storage import Store

log = logging.getLogger(__name__)

MANAGER = "kube-controller-manager"  # the field manager its writes are recorded under
WRITE = WriteOptions(field_manager=MANAGER)  # never mutated

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
NS_PREFIX = "/registry/core/namespaces/"
POLL = 0.25


class NamespaceController:
    def __init__(self, store: Store, objects: Objects, registry: Registry) -> None:
        self.store = store
        self.objects = objects
        self.registry = registry
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def info(self) -> ResourceInfo:
        info = self.registry.lookup("", "v1", "namespaces")
        assert info is not None
        return info

    def check_writable(self, namespace: str) -> None:
        """Admission for creates into ``namespace``: it must exist and not be terminating."""
        entry = self.store.get(NS_PREFIX + namespace)
        if entry is None:
            raise errors.not_found("namespaces", "", namespace)
        obj = entry.object()
        if obj["metadata"].get("deletionTimestamp"):
            raise errors.Forbidden(
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated",
                details={"name": namespace, "kind": "namespaces", "causes": [{
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace",
                }]},
            )

    async def ensure_system_namespaces(self) -> None:
        for name in SYSTEM_NAMESPACES:
            if self.store.get(NS_PREFIX + name) is None:
                with contextlib.suppress(errors.AlreadyExists):
                    await self.objects.create(
                        self.info, None,
                        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                        WRITE,
                    )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="namespace-controller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        watcher = asyncio.create_task(self._watch())
        try:
            while True:
                terminating = [
                    e.object() for e in self.store.list(NS_PREFIX)[0]
                ]
                terminating = [o for o in terminating if o["metadata"].get("deletionTimestamp")]
                for ns in terminating:
                    try:
                        await self._finalize(ns)
                    except errors.NotFound:
                        pass
                    except Exception:
                        log.exception("finalizing namespace %s", ns["metadata"]["name"])
                self._wake.clear()
                if terminating:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(POLL):
                            await self._wake.wait()
                else:
                    await self._wake.wait()
        finally:
            watcher.cancel()

    async def _watch(self) -> None:
        watch = self.store.watch(NS_PREFIX, self.store.revision)
        try:
            async for event in watch:
                if event.type != "DELETED":
                    self._wake.set()
        finally:
            watch.close()

    def _namespaced_infos(self) -> list[ResourceInfo]:
        seen: dict[str, ResourceInfo] = {}
        for info in self.registry.all():
            if info.namespaced:
                prefix = info.prefix()
                current = seen.get(prefix)
                if current is None or info.version == (info.storage_version or info.version):
                    seen[prefix] = info
        return list(seen.values())

    async def _finalize(self, ns: dict[str, Any]) -> None:
        name = ns["metadata"]["name"]
        remaining = 0
        for info in self._namespaced_infos():
            entries, _ = self.store.list(info.prefix(name))
            remaining += len(entries)
            for entry in entries:
                meta = entry.object()["metadata"]
                if meta.get("deletionTimestamp"):
                    continue
                with contextlib.suppress(errors.NotFound):
                    await self.objects.delete(info, name, meta["name"],
                                              {"propagationPolicy": "Background"},
                                              WRITE)
        if remaining:
            return

        def finalize(obj: dict[str, Any]) -> dict[str, Any]:
            spec = obj.setdefault("spec", {})
            spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != "kubernetes"]
            return obj

        await self.objects.mutate(self.info, None, name, finalize,
                                  WriteOptions(subresource="finalize", field_manager=MANAGER))
