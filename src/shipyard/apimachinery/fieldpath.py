"""Field paths and field sets of server-side apply, in structured-merge-diff's terms.

A path is a tuple of path elements, each a string in FieldsV1's spelling:

* ``f:<name>``   a field of an object (struct or map);
* ``k:<json>``   an item of an associative list, by its key fields (``{"name":"a"}``);
* ``v:<json>``   an item of a set (a list of scalars with list-type set);
* ``i:<n>``      an item of a list without keys, by index.

A field set is a plain ``frozenset`` of paths. ``schema_field_set`` turns an object into the set
of paths it sets, using its OpenAPI schema to tell structs from maps and atomic lists from
associative ones: scalars and atomic values are leaves, map entries and list items are members
too. FieldsV1 is the tree encoding of such a set (``"."`` marks a member that also has children).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

Path = tuple[str, ...]
FieldSet = frozenset[Path]
Schema = dict[str, Any]

# ObjectMeta as server-side apply sees it (labels and annotations granular maps, finalizers a
# set, ownerReferences keyed by uid), whatever the kind's own schema says about metadata.
OBJECT_META_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"},
                       "x-kubernetes-list-type": "set"},
        "ownerReferences": {
            "type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
            "items": {"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                "name": {"type": "string"}, "uid": {"type": "string"},
                "controller": {"type": "boolean"}, "blockOwnerDeletion": {"type": "boolean"},
            }},
        },
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "generateName": {"type": "string"},
    },
}


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def field(name: str) -> str:
    return "f:" + name


def key_element(item: dict[str, Any], keys: Iterable[str]) -> str:
    return "k:" + _json({k: item.get(k) for k in keys if k in item})


def value_element(value: Any) -> str:
    return "v:" + _json(value)


def list_type(schema: Schema | None) -> str:
    if not schema:
        return "atomic"
    return str(schema.get("x-kubernetes-list-type", "atomic"))


def _is_struct(schema: Schema | None) -> bool:
    return bool(schema) and "properties" in schema  # type: ignore[operator]


def child_schema(schema: Schema | None, name: str) -> Schema | None:
    if not schema:
        return None
    props = schema.get("properties")
    if isinstance(props, dict) and name in props:
        sub: Schema = props[name]
        return sub
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    return None


class _Walker:
    """Collects member paths, leaf paths (scalars and atomic values) and every node visited."""

    def __init__(self) -> None:
        self.members: set[Path] = set()
        self.leaves: set[Path] = set()
        self.nodes: set[Path] = set()

    def leaf(self, path: Path) -> None:
        self.members.add(path)
        self.leaves.add(path)
        self.nodes.add(path)

    def walk(self, value: Any, schema: Schema | None, path: Path) -> None:
        if path:
            self.nodes.add(path)
        if isinstance(value, dict):
            if schema and schema.get("x-kubernetes-map-type") == "atomic":
                self.leaf(path)
                return
            struct = _is_struct(schema)
            for name, child in value.items():
                sub_path = (*path, field(name))
                sub = child_schema(schema, name)
                if path == () and name == "metadata":
                    sub = OBJECT_META_SCHEMA
                self.walk(child, sub, sub_path)
                if not struct or name not in (schema or {}).get("properties", {}):
                    self.members.add(sub_path)
        elif isinstance(value, list):
            kind = list_type(schema)
            items = (schema or {}).get("items")
            if kind == "set":
                for item in value:
                    self.leaf((*path, value_element(item)))
            elif kind == "map":
                keys = (schema or {}).get("x-kubernetes-list-map-keys") or []
                for item in value:
                    if not isinstance(item, dict):
                        continue
                    item_path = (*path, key_element(item, keys))
                    self.walk(item, items, item_path)
                    self.members.add(item_path)
            else:
                self.leaf(path)
        else:
            self.leaf(path)


def schema_field_set(obj: dict[str, Any], schema: Schema | None) -> tuple[FieldSet, FieldSet]:
    """(members, leaves) of an object under its schema."""
    members, leaves, _ = schema_field_sets(obj, schema)
    return members, leaves


def schema_field_sets(obj: dict[str, Any],
                      schema: Schema | None) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(members, leaves, nodes) of an object under its schema. ``nodes`` holds every path the
    object has, structs and maps included: an Update owns each node it adds (structured-merge-
    diff's comparison reports a struct or map that appears as added, hence kube's ``"."`` under
    ``f:spec`` of a created custom resource or ``f:data`` of a created ConfigMap), while an
    Apply's set holds members only."""
    walker = _Walker()
    walker.walk(obj, schema, ())
    return frozenset(walker.members), frozenset(walker.leaves), frozenset(walker.nodes)


# ------------------------------------------------------------------------------ navigation


def _find_item(items: list[Any], element: str) -> int | None:
    kind, _, raw = element.partition(":")
    if kind == "i":
        index = int(raw)
        return index if 0 <= index < len(items) else None
    wanted = orjson.loads(raw)
    for index, item in enumerate(items):
        if kind == "v" and item == wanted:
            return index
        if kind == "k" and isinstance(item, dict) and all(
            item.get(k) == v for k, v in wanted.items()
        ):
            return index
    return None


_MISSING = object()


def get(obj: Any, path: Path) -> Any:
    """The value at ``path``, or `MISSING`."""
    node = obj
    for element in path:
        if element.startswith("f:"):
            if not isinstance(node, dict) or element[2:] not in node:
                return _MISSING
            node = node[element[2:]]
        else:
            if not isinstance(node, list):
                return _MISSING
            index = _find_item(node, element)
            if index is None:
                return _MISSING
            node = node[index]
    return node


MISSING = _MISSING


def remove(obj: Any, path: Path) -> None:
    """Delete what ``path`` points at, if present."""
    if not path:
        return
    parent = get(obj, path[:-1])
    last = path[-1]
    if last.startswith("f:"):
        if isinstance(parent, dict):
            parent.pop(last[2:], None)
    elif isinstance(parent, list):
        index = _find_item(parent, last)
        if index is not None:
            del parent[index]


# ------------------------------------------------------------------------------ rendering


def path_string(path: Path) -> str:
    """structured-merge-diff's Path.String(): ``.spec.containers[name="a"].image``."""
    out = []
    for element in path:
        kind, _, raw = element.partition(":")
        if kind == "f":
            out.append("." + raw)
        elif kind == "k":
            keys = orjson.loads(raw)
            out.append("[" + ",".join(f"{k}={_json(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            out.append("[=" + raw + "]")
        else:
            out.append("[" + raw + "]")
    return "".join(out)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """Encode a set as FieldsV1 (nested objects; ``"."`` for members with children)."""
    root: dict[str, Any] = {}
    members: set[Path] = set(paths)
    for path in sorted(members):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    def mark(node: dict[str, Any], prefix: Path) -> None:
        for element, child in node.items():
            if element == ".":
                continue
            sub = (*prefix, element)
            if child:
                mark(child, sub)
                if sub in members:
                    child["."] = {}
    mark(root, ())
    return _sorted(root)


def _sorted(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted(node[k]) for k in sorted(node, key=lambda e: (e != ".", e))}


def from_fields_v1(tree: dict[str, Any]) -> FieldSet:
    out: set[Path] = set()

    def walk(node: dict[str, Any], prefix: Path) -> None:
        for element, child in node.items():
            if element == ".":
                out.add(prefix)
                continue
            sub = (*prefix, element)
            if not isinstance(child, dict) or not child:
                out.add(sub)
            else:
                walk(child, sub)

    walk(tree, ())
    return frozenset(out)


def iter_prefixes(path: Path) -> Iterator[Path]:
    for i in range(1, len(path)):
        yield path[:i]
