"""CustomResourceDefinitions come alive: a CRD object becomes served `ResourceInfo`s.

`infos_from_crd` is the pure translation; `CRDController` keeps the registry in step with stored
CRDs, reports the NamesAccepted and Established conditions (kubectl wait and the e2e suites read
them), keeps ``status.storedVersions``, and on deletion empties the resource before letting the
CRD go (finalizer ``customresourcecleanup.apiextensions.k8s.io``), as apiextensions-apiserver
does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from shipyard.apimachinery import errors
from shipyard.apiserver import meta as metarules
from shipyard.apiserver.conversion import Converter
from shipyard.apiserver.objects import Objects, WriteOptions
from shipyard.apiserver.registry import Registry
from shipyard.apiserver.resources import PrinterColumn, ResourceInfo, ScaleSubresource
from shipyard.storage import Store

log = logging.getLogger(__name__)

MANAGER = "kube-apiserver"  # the field manager its writes are recorded under
WRITE = WriteOptions(field_manager=MANAGER)  # never mutated

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
# The order kube-apiserver lists a custom resource's verbs in discovery (not sorted).
CR_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
CRD_PREFIX = "/registry/apiextensions.k8s.io/customresourcedefinitions/"


def infos_from_crd(
    crd: dict[str, Any], converters: Mapping[str, Converter] | None = None
) -> list[ResourceInfo]:
    spec = crd.get("spec") or {}
    strategy = (spec.get("conversion") or {}).get("strategy", "None")
    converter = (converters or {}).get(spec.get("group", "")) if strategy == "Webhook" else None
    if strategy == "Webhook" and converter is None:
        log.warning("CRD %s asks for webhook conversion and no converter is registered for "
                    "its group: versions are relabelled only",
                    (crd.get("metadata") or {}).get("name"))
    names = spec.get("names") or {}
    group = spec.get("group", "")
    versions = spec.get("versions") or []
    storage = next((v["name"] for v in versions if v.get("storage")), "")
    infos = []
    for version in versions:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        scale = subresources.get("scale")
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        columns = tuple(
            PrinterColumn(
                name=c["name"], type=c.get("type", "string"), json_path=c.get("jsonPath", ""),
                format=c.get("format", ""), description=c.get("description", ""),
                priority=int(c.get("priority", 0)),
            )
            for c in version.get("additionalPrinterColumns") or []
        )
        infos.append(ResourceInfo(
            group=group,
            version=version["name"],
            resource=names.get("plural", ""),
            kind=names.get("kind", ""),
            list_kind=names.get("listKind") or names.get("kind", "") + "List",
            singular=names.get("singular") or names.get("kind", "").lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            verbs=CR_VERBS,
            status="status" in subresources,
            scale=ScaleSubresource(
                scale.get("specReplicasPath", ".spec.replicas"),
                scale.get("statusReplicasPath", ".status.replicas"),
                scale.get("labelSelectorPath"),
            ) if isinstance(scale, dict) else None,
            schema=schema if isinstance(schema, dict) else None,
            printer_columns=columns,
            selectable_fields=tuple(
                f["jsonPath"] for f in version.get("selectableFields") or [] if "jsonPath" in f
            ),
            storage_version=storage,
            extra={"converter": converter} if converter is not None else {},
        ))
    return infos


def _condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": status, "lastTransitionTime": metarules.now(),
            "reason": reason, "message": message}


class CRDController:
    def __init__(
        self,
        store: Store,
        objects: Objects,
        registry: Registry,
        converters: Mapping[str, Converter] | None = None,
    ) -> None:
        self.converters = dict(converters or {})
        self.store = store
        self.objects = objects
        self.registry = registry
        self._task: asyncio.Task[None] | None = None
        self._crd_info: ResourceInfo | None = None
        self._synced: dict[str, Any] = {}  # CRD name -> the spec last turned into infos
        self._cleanups: dict[str, asyncio.Task[None]] = {}

    @property
    def crd_info(self) -> ResourceInfo:
        if self._crd_info is None:
            info = self.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            assert info is not None
            self._crd_info = info
        return self._crd_info

    def load(self) -> int:
        """Serve every stored CRD; returns the revision read at (for the watch that follows)."""
        entries, revision = self.store.list(CRD_PREFIX)
        for entry in entries:
            self.sync(entry.object())
        return revision

    def sync(self, crd: dict[str, Any]) -> None:
        """Serve what a CRD object says (synchronously, right after it is written)."""
        name = crd["metadata"]["name"]
        spec = crd.get("spec")
        if self._synced.get(name) == spec:
            return
        self.registry.set_crd(name, infos_from_crd(crd, self.converters))
        self._synced[name] = spec

    def forget(self, name: str) -> None:
        self._synced.pop(name, None)
        self.registry.set_crd(name, [])

    def start(self, after: int) -> None:
        self._task = asyncio.create_task(self._run(after), name="crd-controller")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._cleanups.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, after: int) -> None:
        for entry in self.store.list(CRD_PREFIX)[0]:
            await self._reconcile_safely(entry.object())
        watch = self.store.watch(CRD_PREFIX, after)
        try:
            async for event in watch:
                if event.type == "DELETED":
                    self.forget(event.entry.key.rsplit("/", 1)[-1])
                    continue
                await self._reconcile_safely(event.entry.object())
        finally:
            watch.close()

    async def _reconcile_safely(self, crd: dict[str, Any]) -> None:
        try:
            await self.reconcile(crd)
        except errors.NotFound:
            pass
        except Exception:
            log.exception("reconciling CRD %s", crd.get("metadata", {}).get("name"))

    async def reconcile(self, crd: dict[str, Any]) -> None:
        meta = crd["metadata"]
        name = meta["name"]
        if meta.get("deletionTimestamp"):
            running = self._cleanups.get(name)
            if CLEANUP_FINALIZER in (meta.get("finalizers") or []) and (
                running is None or running.done()
            ):
                # Emptying a resource can wait on its objects' finalizers: never block the
                # controller's loop (other CRDs) on it.
                self._cleanups[name] = asyncio.create_task(self._cleanup_safely(crd))
            return
        self.sync(crd)
        if CLEANUP_FINALIZER not in (meta.get("finalizers") or []):
            def add_finalizer(obj: dict[str, Any]) -> dict[str, Any]:
                obj["metadata"].setdefault("finalizers", []).append(CLEANUP_FINALIZER)
                return obj

            await self.objects.mutate(self.crd_info, None, name, add_finalizer, WRITE)
        await self._update_status(name)

    async def _update_status(self, name: str) -> None:
        def status(obj: dict[str, Any]) -> dict[str, Any]:
            spec = obj.get("spec") or {}
            st = obj.setdefault("status", {})
            names = dict(spec.get("names") or {})
            names.setdefault("singular", names.get("kind", "").lower())
            names.setdefault("listKind", names.get("kind", "") + "List")
            st["acceptedNames"] = names
            conditions = {c["type"]: c for c in st.get("conditions") or []}
            for kind, reason, message in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ):
                if conditions.get(kind, {}).get("status") != "True":
                    conditions[kind] = _condition(kind, "True", reason, message)
            st["conditions"] = list(conditions.values())
            stored = list(st.get("storedVersions") or [])
            for version in spec.get("versions") or []:
                if version.get("storage") and version["name"] not in stored:
                    stored.append(version["name"])
            st["storedVersions"] = stored
            return obj

        await self.objects.mutate(self.crd_info, None, name, status,
                                  WriteOptions(subresource="status", field_manager=MANAGER))

    async def _cleanup_safely(self, crd: dict[str, Any]) -> None:
        try:
            await self._cleanup(crd)
        except errors.NotFound:
            pass
        except Exception:
            log.exception("cleaning up CRD %s", crd["metadata"]["name"])

    async def _cleanup(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        spec = crd.get("spec") or {}
        infos = infos_from_crd(crd) or self.registry.by_kind(spec.get("group", ""),
                                                             spec.get("names", {}).get("kind", ""))
        while infos:
            info = infos[0]
            entries, _ = self.store.list(info.prefix())
            if not entries:
                break
            for entry in entries:
                meta = entry.object()["metadata"]
                if meta.get("deletionTimestamp"):
                    continue
                with contextlib.suppress(errors.NotFound):
                    await self.objects.delete(info, meta.get("namespace"), meta["name"], {},
                                              WRITE)
            await asyncio.sleep(0.2)
        self.forget(name)

        def drop(obj: dict[str, Any]) -> dict[str, Any]:
            obj["metadata"]["finalizers"] = [
                f for f in obj["metadata"].get("finalizers") or [] if f != CLEANUP_FINALIZER
            ]
            return obj

        await self.objects.mutate(self.crd_info, None, name, drop, WRITE)
