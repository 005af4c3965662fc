"""Server-side apply and field ownership (``metadata.managedFields``).

Every write records which manager set which fields, as kube-apiserver's field manager does:

* an **Update** (create, PUT, non-apply PATCH) gives its manager the fields it added or changed,
  taking them from whoever owned them, without conflicts;
* an **Apply** merges the applied configuration into the live object by the schema's rules
  (structs and maps merge, associative lists merge by key, sets union, atomic values replace),
  fails with 409 and one ``FieldManagerConflict`` cause per field another manager owns and the
  apply would change (unless ``force``, which takes them), and removes fields the same manager
  applied before, no longer applies, and nobody else owns.

Ownership is per (manager, operation, subresource); the apply configuration's own field set is
what its manager owns afterwards.

Manager "kubectl" gets kube's client-side-apply upgrade: it may take, without conflict, fields
the ``last-applied-configuration`` annotation lists, and its applies keep that annotation current.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard.apimachinery import errors
from shipyard.apimachinery.fieldpath import (
    OBJECT_META_SCHEMA,
    FieldSet,
    Path,
    Schema,
    child_schema,
    from_fields_v1,
    get,
    key_element,
    list_type,
    path_string,
    remove,
    schema_field_set,
    schema_field_sets,
    to_fields_v1,
    value_element,
)

Obj = dict[str, Any]

# Fields nobody owns: identity and server-maintained metadata.
_UNOWNED = frozenset({
    ("f:apiVersion",), ("f:kind",), ("f:metadata", "f:name"), ("f:metadata", "f:namespace"),
    ("f:metadata", "f:uid"), ("f:metadata", "f:resourceVersion"),
    ("f:metadata", "f:generation"), ("f:metadata", "f:creationTimestamp"),
    ("f:metadata", "f:deletionTimestamp"), ("f:metadata", "f:deletionGracePeriodSeconds"),
    ("f:metadata", "f:managedFields"), ("f:metadata", "f:selfLink"),
    ("f:metadata", "f:generateName"),
})


@dataclass(slots=True)
class Manager:
    manager: str
    operation: str  # Apply | Update
    api_version: str
    time: str
    fields: FieldSet
    subresource: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def to_entry(self) -> Obj:
        entry: Obj = {
            "manager": self.manager, "operation": self.operation,
            "apiVersion": self.api_version, "time": self.time,
            "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_managers(entries: Any) -> list[Manager]:
    """Parse ``metadata.managedFields``; 422 when an entry is malformed."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise _invalid_managed("must be a list")
    out = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _invalid_managed(f"[{index}] must be an object")
        fields = entry.get("fieldsV1") or {}
        if entry.get("fieldsType", "FieldsV1") != "FieldsV1" or not isinstance(fields, dict):
            raise _invalid_managed(f"[{index}].fieldsType must be FieldsV1")
        operation = entry.get("operation", "Update")
        if operation not in ("Apply", "Update"):
            raise _invalid_managed(f"[{index}].operation must be Apply or Update")
        out.append(Manager(
            manager=str(entry.get("manager", "")), operation=operation,
            api_version=str(entry.get("apiVersion", "")), time=str(entry.get("time", "")),
            fields=from_fields_v1(fields), subresource=str(entry.get("subresource", "")),
        ))
    return out


def _invalid_managed(message: str) -> errors.Invalid:
    return errors.Invalid(f"metadata.managedFields: Invalid value: {message}", details={
        "causes": [{"reason": "FieldValueInvalid", "message": message,
                    "field": "metadata.managedFields"}]})


def encode_managers(managers: list[Manager]) -> list[Obj]:
    return [m.to_entry() for m in managers if m.fields]


@dataclass(slots=True)
class Scope:
    """Which part of the object a write may own: the main resource or one subresource."""

    schema: Schema | None
    subresource: str = ""  # "" or "status"
    status_separate: bool = False  # the kind has a status subresource

    def owned(self, paths: FieldSet) -> FieldSet:
        def keep(path: Path) -> bool:
            if path in _UNOWNED or path == ("f:metadata",):
                return False
            top = path[0]
            if self.subresource == "status":
                return top == "f:status"
            if self.status_separate and top == "f:status":
                return False
            return True

        return frozenset(p for p in paths if keep(p))

    def field_set(self, obj: Obj) -> tuple[FieldSet, FieldSet]:
        members, leaves = schema_field_set(obj, self.schema)
        return self.owned(members), self.owned(leaves)

    def node_set(self, obj: Obj) -> tuple[FieldSet, FieldSet]:
        """(nodes, leaves): every path the object has, as an Update compares them."""
        _, leaves, nodes = schema_field_sets(obj, self.schema)
        return self.owned(nodes), self.owned(leaves)


def _changes(scope: Scope, old: Obj, new: Obj) -> tuple[FieldSet, FieldSet, FieldSet]:
    """(added, removed, modified) nodes between two states of one object."""
    old_nodes, old_leaves = scope.node_set(old)
    new_nodes, new_leaves = scope.node_set(new)
    added = new_nodes - old_nodes
    removed = old_nodes - new_nodes
    modified = frozenset(
        p for p in old_leaves & new_leaves if get(old, p) != get(new, p)
    )
    return added, removed, modified


def _upsert(managers: list[Manager], entry: Manager) -> list[Manager]:
    out = [m for m in managers if m.key != entry.key]
    out.append(entry)
    return out


def record_update(
    scope: Scope, old: Obj | None, new: Obj, managers: list[Manager], manager: str,
    api_version: str,
) -> list[Manager]:
    """Ownership after an Update: the manager takes what it added or changed."""
    added, removed, modified = _changes(scope, old or {}, new)
    taken = added | modified
    if not taken and not removed:
        return managers
    out = []
    for m in managers:
        fields = m.fields - removed
        if m.key != (manager, "Update", scope.subresource):
            fields = fields - taken
        if fields != m.fields:
            m = Manager(m.manager, m.operation, m.api_version, now(), fields, m.subresource)
        out.append(m)
    mine = next((m for m in out if m.key == (manager, "Update", scope.subresource)), None)
    base = mine.fields if mine else frozenset()
    entry = Manager(manager, "Update", api_version, now(), (base | taken) - removed,
                    scope.subresource)
    return [m for m in _upsert(out, entry) if m.fields]


def apply(
    scope: Scope, live: Obj | None, config: Obj, managers: list[Manager], manager: str,
    api_version: str, force: bool,
) -> tuple[Obj, list[Manager]]:
    """Merge ``config`` into ``live`` as ``manager``'s apply; raise 409 on conflicts."""
    config_set, _ = scope.field_set(config)
    base = copy.deepcopy(live) if live is not None else {}
    merged = merge(base, config, scope.schema, ())
    added, _removed, modified = _changes(scope, live or {}, merged)
    changing = added | modified
    mine_key = (manager, "Apply", scope.subresource)
    conflicts: list[tuple[Manager, Path]] = []
    for m in managers:
        if m.key == mine_key:
            continue
        for path in sorted(m.fields & changing & config_set):
            conflicts.append((m, path))
    if conflicts and not force and not _upgrading_client_side_apply(scope, live, manager,
                                                                     conflicts):
        raise conflict_error(conflicts)
    taken = frozenset(p for _, p in conflicts)
    previous = next((m.fields for m in managers if m.key == mine_key), frozenset())
    others: list[Manager] = []
    for m in managers:
        if m.key == mine_key:
            continue
        fields = m.fields - taken if taken else m.fields
        if fields != m.fields:
            m = Manager(m.manager, m.operation, m.api_version, now(), fields, m.subresource)
        others.append(m)
    # Fields this manager applied before and dropped now, owned by nobody else, go away. A
    # map or struct it owned as a whole (kube's "." entry, e.g. after kubectl migrated a
    # client-side apply) stays while anything beneath it is still applied or owned: kube
    # adds those back with their parents after pruning.
    owned_by_others = frozenset().union(*(m.fields for m in others)) if others else frozenset()
    kept = config_set | owned_by_others
    holding = {p[:i] for p in kept for i in range(1, len(p))}
    for path in sorted(previous - kept - holding, key=len, reverse=True):
        remove(merged, path)
    if manager == KUBECTL and _last_applied(merged) is not None:
        merged["metadata"]["annotations"][LAST_APPLIED] = build_last_applied(config)
    entry = Manager(manager, "Apply", api_version, now(), config_set, scope.subresource)
    return merged, [m for m in _upsert(others, entry) if m.fields]


# ------------------------------------------------- kubectl's client-side to server-side upgrade

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KUBECTL = "kubectl"


def _last_applied(live: Obj | None) -> str | None:
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(LAST_APPLIED)
    return value if isinstance(value, str) else None


def _upgrading_client_side_apply(scope: Scope, live: Obj | None, manager: str,
                                 conflicts: list[tuple[Manager, Path]]) -> bool:
    """kube's lastAppliedManager: ``kubectl apply --server-side`` (manager "kubectl") on an
    object last applied client-side may take, without conflict, the fields that the
    last-applied annotation lists."""
    text = _last_applied(live) if manager == KUBECTL else None
    if text is None:
        return False
    try:
        last = json.loads(text)
    except ValueError:
        return False
    if not isinstance(last, dict):
        return False
    allowed, _ = scope.field_set(last)
    return all(path in allowed for _, path in conflicts)


def build_last_applied(config: Obj) -> str:
    """kube's lastAppliedUpdater: the applied configuration, less the annotation itself, as
    Go's encoding/json writes it (sorted keys, HTML-safe escapes, a trailing newline)."""
    doc = copy.deepcopy(config)
    annotations = (doc.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            del doc["metadata"]["annotations"]
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text + "\n"


def conflict_error(conflicts: list[tuple[Manager, Path]]) -> errors.Conflict:
    """409 as kube-apiserver words it: one cause per conflicting field."""
    causes: list[errors.StatusCause] = []
    by_manager: dict[str, list[str]] = {}
    for m, path in conflicts:
        who = f'"{m.manager}"'
        if m.subresource:
            who += f' with subresource "{m.subresource}"'
        # kube names appliers without their apiVersion (it is not part of an applier's
        # manager identity), updaters with it.
        label = who if m.operation == "Apply" else f"{who} using {m.api_version}"
        by_manager.setdefault(label, []).append(path_string(path))
        causes.append({"reason": "FieldManagerConflict",
                       "message": f"conflict with {label}", "field": path_string(path)})
    count = len(conflicts)
    noun = "conflict" if count == 1 else "conflicts"
    parts = []
    for label, paths in by_manager.items():
        if len(paths) == 1:
            parts.append(f"conflict with {label}: {paths[0]}")
        else:
            parts.append(f"conflicts with {label}:\n" + "\n".join(f"- {p}" for p in paths))
    message = f"Apply failed with {count} {noun}: " + "\n".join(parts)
    return errors.Conflict(message, details={"causes": causes})


# ------------------------------------------------------------------------------ merging


def merge(live: Any, config: Any, schema: Schema | None, path: Path) -> Any:
    """``config`` merged onto ``live`` by the schema's element relationships."""
    if isinstance(config, dict) and isinstance(live, dict):
        if schema and schema.get("x-kubernetes-map-type") == "atomic":
            return copy.deepcopy(config)
        out = dict(live)
        for name, value in config.items():
            sub = OBJECT_META_SCHEMA if path == () and name == "metadata" else \
                child_schema(schema, name)
            out[name] = merge(live.get(name), value, sub, (*path, "f:" + name))
        return out
    if isinstance(config, list) and isinstance(live, list):
        kind = list_type(schema)
        if kind == "set":
            out_list = list(live)
            seen = {value_element(v) for v in live}
            for item in config:
                if value_element(item) not in seen:
                    out_list.append(copy.deepcopy(item))
            return out_list
        if kind == "map":
            keys = (schema or {}).get("x-kubernetes-list-map-keys") or []
            items_schema = (schema or {}).get("items")
            index = {key_element(i, keys): n for n, i in enumerate(live) if isinstance(i, dict)}
            out_list = list(live)
            for item in config:
                if not isinstance(item, dict):
                    continue
                element = key_element(item, keys)
                if element in index:
                    n = index[element]
                    out_list[n] = merge(live[n], item, items_schema, (*path, element))
                else:
                    out_list.append(copy.deepcopy(item))
            return out_list
    return copy.deepcopy(config)

