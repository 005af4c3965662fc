"""Event handlers: map an informer's events to reconcile `Request`s on a work queue.

As controller-runtime's `pkg/handler`, the mapping is all a handler does; which event it was is
dropped (level-based). Three mappings cover what controllers need:

- `for_object`: the object itself (`For(...)`);
- `for_owner(owner)`: the owner named by an ownerReference with `controller: true` whose
  group and kind match (the version is ignored, as upstream); a namespaced owner lives in the
  child's namespace, a cluster-scoped one in none (`Owns(...)`, EnqueueRequestForOwner);
- any function from an object to requests, e.g. by labels (`Watches(..., map_fn)`).

For an update, both the old and the new object are mapped, so a child that moves to a new owner
wakes both owners. An `UpdatePredicate(old, new)` drops updates that do not matter to the
watcher (controller-runtime's `UpdateFunc` predicates, e.g. upstream's "cluster infrastructure
became provisioned"): a Cluster whose status counters change on every Machine event must not
wake all of its Machines each time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from shipyard.client.interfaces import GVK, Object
from shipyard.runtime.reconcile import Request

MapFunc = Callable[[Object], Iterable[Request]]
Predicate = Callable[[Object], bool]
UpdatePredicate = Callable[[Object, Object], bool]


class RequestSink(Protocol):
    def add(self, item: Request) -> None: ...


def for_object(obj: Object) -> list[Request]:
    meta = obj.get("metadata") or {}
    return [Request(str(meta.get("namespace") or ""), str(meta["name"]))]


def for_owner(owner: GVK, *, owner_namespaced: bool = True,
              controller_only: bool = True) -> MapFunc:
    def owners(obj: Object) -> list[Request]:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "") if owner_namespaced else ""
        out = []
        for ref in meta.get("ownerReferences") or []:
            if controller_only and not ref.get("controller"):
                continue
            if ref.get("kind") != owner.kind:
                continue
            if GVK(str(ref.get("apiVersion", "")), owner.kind).group != owner.group:
                continue
            out.append(Request(namespace, str(ref["name"])))
        return out

    return owners


class EnqueueHandler:
    """An `EventHandler` adding the mapped requests to a queue (optionally filtered)."""

    def __init__(self, queue: RequestSink, map_fn: MapFunc = for_object,
                 predicate: Predicate | None = None,
                 update_predicate: UpdatePredicate | None = None) -> None:
        self.queue = queue
        self.map_fn = map_fn
        self.predicate = predicate
        self.update_predicate = update_predicate

    def _enqueue(self, *objs: Object) -> None:
        seen: set[Request] = set()
        for obj in objs:
            if self.predicate is not None and not self.predicate(obj):
                continue
            for req in self.map_fn(obj):
                if req not in seen:
                    seen.add(req)
                    self.queue.add(req)

    def on_add(self, obj: Object) -> None:
        self._enqueue(obj)

    def on_update(self, old: Object, new: Object) -> None:
        if self.update_predicate is not None and not self.update_predicate(old, new):
            return
        self._enqueue(old, new)

    def on_delete(self, obj: Object) -> None:
        self._enqueue(obj)
