"""`FakeClient`: an in-memory API server behind the same `Reader`/`Writer` protocols.

For unit tests of controllers and of the runtime: no HTTP, no SQLite, deterministic. It keeps the
rules controllers depend on (checked against the real server in tests/client/test_fake.py):
resourceVersion bumps on every write and optimistic concurrency on update, AlreadyExists /
NotFound / Conflict, generation bumps outside metadata and status, the status subresource,
finalizers holding a delete with deletionTimestamp set (a delete answers with the object
then, and with a Success Status when the object is gone), label and metadata field selectors, paged
lists, and watches replayed from a resourceVersion with `Expired` once `compact()` dropped it.

Not modelled: garbage collection of dependents (propagation policies are accepted and ignored),
admission and schema validation, managedFields (an `apply` patch merges the intent like a merge
patch and never conflicts), and periodic bookmarks.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from shipyard.apimachinery.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Expired,
    UnsupportedMediaType,
    conflict,
    not_found,
)
from shipyard.apimachinery.patching import apply_json_patch, apply_merge_patch
from shipyard.apimachinery.selectors import (
    field_value,
    parse_field_selector,
    parse_label_selector,
)
from shipyard.apimachinery.strategic import apply_strategic_merge_patch, patch_meta_for
from shipyard.client.interfaces import (
    GVK,
    NoKindMatchError,
    Object,
    ObjectList,
    PatchType,
    Preconditions,
    PropagationPolicy,
    RESTMapping,
    WatchEvent,
)

BUILTIN_KINDS = (
    RESTMapping("", "v1", "ConfigMap", "configmaps", True),
    RESTMapping("", "v1", "Secret", "secrets", True),
    RESTMapping("", "v1", "Namespace", "namespaces", False, frozenset({"status"})),
    RESTMapping("", "v1", "Pod", "pods", True, frozenset({"status"})),
    RESTMapping("coordination.k8s.io", "v1", "Lease", "leases", True),
)

# Built-in kinds whose registry strategies leave metadata.generation alone.
NO_GENERATION = frozenset({("", "ConfigMap"), ("", "Secret"), ("", "Namespace"), ("", "Event"),
                           ("", "Node"), ("", "ServiceAccount"), ("coordination.k8s.io", "Lease"),
                           ("events.k8s.io", "Event")})

_Key = tuple[str, str, str, str]  # group, kind, namespace, name
_T = TypeVar("_T")


def _copy(obj: _T) -> _T:
    copied: _T = orjson.loads(orjson.dumps(obj))
    return copied


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeMapper:
    def __init__(self, kinds: Iterable[RESTMapping]) -> None:
        self.kinds = {(m.api_version, m.kind): m for m in kinds}

    async def mapping(self, api_version: str, kind: str) -> RESTMapping:
        return self.lookup(api_version, kind)

    def lookup(self, api_version: str, kind: str) -> RESTMapping:
        found = self.kinds.get((api_version, kind))
        if found is None:
            raise NoKindMatchError(api_version, kind)
        return found


class FakeClient:
    def __init__(self, kinds: Iterable[RESTMapping] = BUILTIN_KINDS) -> None:
        self.mapper = FakeMapper(kinds)
        self.objects: dict[_Key, Object] = {}
        self.revision = 0
        self.compacted = 0
        self._history: list[tuple[int, _Key, WatchEvent]] = []
        self._watchers: set[asyncio.Queue[tuple[_Key, WatchEvent]]] = set()

    def add_kind(self, mapping: RESTMapping) -> None:
        self.mapper.kinds[(mapping.api_version, mapping.kind)] = mapping

    def compact(self) -> None:
        """Forget history up to now: watches from an older resourceVersion get `Expired`."""
        self.compacted = self.revision
        self._history.clear()

    # ------------------------------------------------------------------ internals

    def _key(self, api_version: str, kind: str, namespace: str | None,
             name: str) -> tuple[RESTMapping, _Key]:
        m = self.mapper.lookup(api_version, kind)
        return m, (m.group, m.kind, (namespace or "") if m.namespaced else "", name)

    def _existing(self, m: RESTMapping, key: _Key) -> Object:
        obj = self.objects.get(key)
        if obj is None:
            raise not_found(m.resource, m.group, key[3])
        return obj

    def _emit(self, key: _Key, type_: str, obj: Object) -> None:
        event: WatchEvent = {"type": type_, "object": _copy(obj)}  # type: ignore[typeddict-item]
        self._history.append((self.revision, key, event))
        for queue in self._watchers:
            queue.put_nowait((key, event))

    def _store(self, key: _Key, obj: Object, type_: str) -> Object:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        self.objects[key] = obj
        self._emit(key, type_, obj)
        return _copy(obj)

    def _remove(self, key: _Key, obj: Object) -> Object:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        del self.objects[key]
        self._emit(key, "DELETED", obj)
        return _copy(obj)

    # ------------------------------------------------------------------ Reader

    async def get(self, api_version: str, kind: str, name: str,
                  namespace: str | None = None) -> Object:
        m, key = self._key(api_version, kind, namespace, name)
        return _copy(self._existing(m, key))

    def _matching(self, m: RESTMapping, namespace: str | None, label_selector: str | None,
                  field_selector: str | None) -> list[tuple[_Key, Object]]:
        labels = parse_label_selector(label_selector or "")
        fields = parse_field_selector(field_selector or "")
        out = []
        for key in sorted(self.objects):
            if key[:2] != (m.group, m.kind) or (namespace and m.namespaced
                                                and key[2] != namespace):
                continue
            obj = self.objects[key]
            if labels.matches(obj["metadata"].get("labels")) and fields.matches(
                    lambda path, o=obj: field_value(o, path)):  # type: ignore[misc]
                out.append((key, obj))
        return out

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, *,
        label_selector: str | None = None, field_selector: str | None = None,
        limit: int | None = None, continue_: str | None = None,
        resource_version: str | None = None,
    ) -> ObjectList:
        m = self.mapper.lookup(api_version, kind)
        items = self._matching(m, namespace, label_selector, field_selector)
        if continue_:
            after = tuple(orjson.loads(continue_))
            items = [(k, o) for k, o in items if k > after]
        meta: dict[str, Any] = {"resourceVersion": str(self.revision)}
        if limit and len(items) > limit:
            items = items[:limit]
            meta["continue"] = orjson.dumps(list(items[-1][0])).decode()
        return {"apiVersion": m.api_version, "kind": f"{m.kind}List", "metadata": meta,
                "items": [_copy(o) for _, o in items]}

    async def watch(
        self, api_version: str, kind: str, namespace: str | None = None, *,
        resource_version: str | None = None, allow_bookmarks: bool = True,
        timeout_seconds: int | None = None, label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncGenerator[WatchEvent, None]:
        m = self.mapper.lookup(api_version, kind)
        queue: asyncio.Queue[tuple[_Key, WatchEvent]] = asyncio.Queue()
        if resource_version in (None, "", "0"):
            for key, obj in self._matching(m, namespace, label_selector, field_selector):
                queue.put_nowait((key, {"type": "ADDED", "object": _copy(obj)}))
        else:
            since = int(str(resource_version))
            if since < self.compacted:
                raise Expired(f"too old resource version: {since} ({self.compacted})")
            for rv, key, event in self._history:
                if rv > since:
                    queue.put_nowait((key, event))
        labels = parse_label_selector(label_selector or "")
        fields = parse_field_selector(field_selector or "")
        self._watchers.add(queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds if timeout_seconds else None
        try:
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                # asyncio.timeout, not wait_for: on 3.11 wait_for drops a cancellation that
                # lands as the get completes, and a cancelled informer would never stop.
                try:
                    async with asyncio.timeout(remaining):
                        key, event = await queue.get()
                except TimeoutError:
                    return
                obj = event["object"]
                if key[:2] != (m.group, m.kind) or (namespace and m.namespaced
                                                    and key[2] != namespace):
                    continue
                if labels.matches(obj["metadata"].get("labels")) and fields.matches(
                        lambda path, o=obj: field_value(o, path)):  # type: ignore[misc]
                    yield {"type": event["type"], "object": _copy(obj)}
        finally:
            self._watchers.discard(queue)

    # ------------------------------------------------------------------ Writer

    async def create(self, obj: Object, *, field_manager: str | None = None) -> Object:
        new = _copy(obj)
        meta = new.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise BadRequest("resource name may not be empty")
        m, key = self._key(*GVK.of(new), meta.get("namespace"), meta["name"])
        if key in self.objects:
            raise AlreadyExists(f'{m.resource} "{meta["name"]}" already exists',
                                details={"name": meta["name"], "group": m.group,
                                         "kind": m.resource})
        if not m.namespaced:
            meta.pop("namespace", None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now())
        meta.pop("generation", None)
        if (m.group, m.kind) not in NO_GENERATION:
            meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        return self._store(key, new, "ADDED")

    async def update(self, obj: Object, *, field_manager: str | None = None) -> Object:
        return self._update(_copy(obj), status=False, check_rv=True)

    async def update_status(self, obj: Object, *,
                            field_manager: str | None = None) -> Object:
        return self._update(_copy(obj), status=True, check_rv=True)

    def _update(self, new: Object, *, status: bool, check_rv: bool) -> Object:
        meta = new.setdefault("metadata", {})
        m, key = self._key(*GVK.of(new), meta.get("namespace"), str(meta.get("name", "")))
        old = self._existing(m, key)
        rv = meta.get("resourceVersion")
        if check_rv and rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(m.resource, m.group, key[3])
        if status:
            updated = _copy(old)
            if "status" in new:
                updated["status"] = new["status"]
            else:
                updated.pop("status", None)
        else:
            updated = new
            keep = ("uid", "creationTimestamp", "generation", "deletionTimestamp")
            for field in keep:
                if field in old["metadata"]:
                    meta[field] = old["metadata"][field]
            if "status" in m.subresources:
                if "status" in old:
                    updated["status"] = old["status"]
                else:
                    updated.pop("status", None)
            body = {k: v for k, v in updated.items() if k not in ("metadata", "status")}
            before = {k: v for k, v in old.items() if k not in ("metadata", "status")}
            if body != before and (m.group, m.kind) not in NO_GENERATION:
                meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if updated == old:
            return _copy(old)
        if updated["metadata"].get("deletionTimestamp") and not updated["metadata"].get(
                "finalizers"):
            return self._remove(key, updated)
        return self._store(key, updated, "MODIFIED")

    async def patch(
        self, api_version: str, kind: str, name: str, patch: Any,
        namespace: str | None = None, *, patch_type: PatchType = "merge",
        field_manager: str | None = None, force: bool | None = None,
        subresource: str | None = None,
    ) -> Object:
        m, key = self._key(api_version, kind, namespace, name)
        old = self.objects.get(key)
        if old is None:
            if patch_type != "apply":
                raise not_found(m.resource, m.group, name)
            return await self.create(patch, field_manager=field_manager)
        if patch_type in ("merge", "apply"):
            new = apply_merge_patch(old, patch)
        elif patch_type == "json":
            new = apply_json_patch(old, patch)
        else:
            meta = patch_meta_for(m.group, m.kind)
            if meta is None:
                raise UnsupportedMediaType(
                    "the body of the request was in an unknown format - accepted media types "
                    "include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml")
            new = apply_strategic_merge_patch(old, patch, meta)
        rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(
            patch, dict) else None
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(m.resource, m.group, name)
        new.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
        return self._update(new, status=subresource == "status", check_rv=False)

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
        propagation_policy: PropagationPolicy | None = None,
        preconditions: Preconditions | None = None,
    ) -> Object:
        m, key = self._key(api_version, kind, namespace, name)
        obj = self._existing(m, key)
        meta = obj["metadata"]
        qualified = f"{m.kind}.{m.group}" if m.group else m.kind
        for field, label, hint in (("uid", "UID", "deleted and then recreated"),
                                   ("resourceVersion", "ResourceVersion", "modified")):
            want = (preconditions or {}).get(field)
            if want and want != meta.get(field):
                raise Conflict(
                    f'Operation cannot be fulfilled on {qualified} "{name}": the {label} in the '
                    f"precondition ({want}) does not match the {label} in record "
                    f"({meta.get(field)}). The object might have been {hint}",
                    details={"name": name, "group": m.group, "kind": m.kind})
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return _copy(obj)
            updated = _copy(obj)
            updated["metadata"]["deletionTimestamp"] = _now()
            return self._store(key, updated, "MODIFIED")
        gone = self._remove(key, _copy(obj))
        details = {"name": name, "group": m.group, "kind": m.resource,
                   "uid": gone["metadata"]["uid"]}
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {k: v for k, v in details.items() if v}}
