"""The informer's store: the last state seen of every object, by key, with secondary indexes.

Controllers read from here instead of the API server (controller-runtime's cache reader), so a
reconcile costs no request for what it only reads. Keys are client-go's: "namespace/name", or
"name" for cluster-scoped objects. Objects handed out are the stored dicts themselves, not copies:
treat them as read-only (copy before mutating, as with client-go's cache).

Indexers map an object to index values (`add_indexer("byOwner", fn)`); `by_index(name, value)`
returns the objects indexed under the value. The "namespace" index always exists.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable

from shipyard.apimachinery.selectors import parse_label_selector
from shipyard.client.interfaces import Object

IndexFunc = Callable[[Object], Iterable[str]]
NAMESPACE_INDEX = "namespace"


def object_key(obj: Object) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def _namespace_of(obj: Object) -> list[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


class Cache:
    def __init__(self) -> None:
        self._items: dict[str, Object] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self.add_indexer(NAMESPACE_INDEX, _namespace_of)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        if name in self._indexers:
            raise ValueError(f"indexer {name!r} already exists")
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in fn(obj):
                index.setdefault(value, set()).add(key)
        self._indices[name] = index

    def get(self, name: str, namespace: str | None = None) -> Object | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def get_by_key(self, key: str) -> Object | None:
        return self._items.get(key)

    def keys(self) -> list[str]:
        return list(self._items)

    def list(self, namespace: str | None = None,
             label_selector: str | None = None) -> list[Object]:
        if namespace:
            items = [self._items[k] for k in sorted(
                self._indices[NAMESPACE_INDEX].get(namespace, ()))]
        else:
            items = [self._items[k] for k in sorted(self._items)]
        if label_selector:
            selector = parse_label_selector(label_selector)
            items = [o for o in items if selector.matches(o["metadata"].get("labels"))]
        return items

    def by_index(self, name: str, value: str) -> builtins.list[Object]:
        if name not in self._indices:
            raise KeyError(f"no indexer {name!r}")
        return [self._items[k] for k in sorted(self._indices[name].get(value, ()))]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        return sorted(self._indices[name].get(value, ()))

    # ---------------------------------------------------------------- informer side

    def upsert(self, obj: Object) -> Object | None:
        """Store `obj`; returns the previous state, if any."""
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name, fn in self._indexers.items():
            for value in fn(obj):
                self._indices[name].setdefault(value, set()).add(key)
        return old

    def remove(self, obj: Object) -> Object | None:
        key = object_key(obj)
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _unindex(self, key: str, obj: Object) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
