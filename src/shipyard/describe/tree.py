"""The object tree behind ``shipyard describe cluster``: clusterctl's `ObjectTree`.

Why: a Cluster is dozens of objects; the tree folds them into what a person scans at a glance.
The contract, as upstream clusterctl (`cmd/clusterctl/client/tree`, v1beta2 conditions):

- `ObjectTree.add(parent, node, ...)` places a node under a parent. A node added with
  ``no_echo`` (a Machine's infrastructure or bootstrap object) is dropped unless the tree's
  ``echo`` option is set, when its Ready condition is True or has the same status and reason
  as its parent's Ready (it would only repeat the parent).
- A parent marked *grouping* (the control plane, a MachineDeployment, or a MachineSet when
  MachineSets are shown) merges children of the same kind whose Available, Ready and UpToDate
  conditions have the same status and reason into one group node ("3 Machines..."), which
  counts how many of them are Available, Ready and UpToDate, and keeps the earliest Ready
  transition time; grouped objects' own children are not shown.
- ``show_conditions`` (clusterctl's ``--show-conditions``): comma separated ``all``, ``Kind``
  or ``Kind/name``; a trailing ``+`` on an entry shows only the conditions that are not in
  their normal state. Marked nodes print every condition in rows of their own.

Nodes wrap the plain object dicts read from the API; nothing here does I/O.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

Object = dict[str, Any]
Condition = dict[str, Any]
ShowConditions = Literal["", "all", "nonzero"]

GROUP_ITEMS_SEPARATOR = ", "
NON_ZERO_SUFFIX = "+"

_ids = itertools.count()


@dataclass
class Node:
    """One row of the tree: a real object (``obj``) or a virtual one (Workers, a group)."""

    kind: str
    name: str
    obj: Object | None = None
    meta_name: str = ""
    contract: str = ""
    """"ControlPlane" for control-plane providers' objects: they show replica counters."""
    children: list[Node] = field(default_factory=list)
    parent: Node | None = field(default=None, repr=False)
    grouping: bool = False
    show_conditions: ShowConditions = ""
    group_items: list[str] = field(default_factory=list)
    group_available: int = 0
    group_ready: int = 0
    group_up_to_date: int = 0
    group_conditions: dict[str, Condition] = field(default_factory=dict)
    uid: str = field(default_factory=lambda: f"node-{next(_ids)}")

    @classmethod
    def of(cls, obj: Object, *, meta_name: str = "", contract: str = "") -> Node:
        meta = obj.get("metadata") or {}
        return cls(str(obj.get("kind", "")), str(meta.get("name", "")), obj,
                   meta_name=meta_name, contract=contract,
                   uid=str(meta.get("uid") or f"node-{next(_ids)}"))

    @classmethod
    def virtual(cls, kind: str, name: str) -> Node:
        return cls(kind, name)

    @property
    def is_group(self) -> bool:
        return bool(self.group_items)

    @property
    def is_virtual(self) -> bool:
        return self.obj is None

    @property
    def deleting(self) -> bool:
        return bool(((self.obj or {}).get("metadata") or {}).get("deletionTimestamp"))

    def conditions(self) -> list[Condition]:
        """The object's v1beta2 conditions (``status.v1beta2.conditions`` for providers still
        on the v1beta1 contract, else ``status.conditions``)."""
        if self.is_group:
            return list(self.group_conditions.values())
        status = (self.obj or {}).get("status") or {}
        v1beta2 = (status.get("v1beta2") or {}).get("conditions")
        found = v1beta2 if v1beta2 is not None else status.get("conditions")
        return [c for c in found or [] if isinstance(c, dict)]

    def condition(self, type_: str) -> Condition | None:
        for c in self.conditions():
            if c.get("type") == type_:
                return c
        return None

    def row_name(self) -> str:
        """The NAME column without colour: "3 Machines...", "Workers", "Kind/name",
        "ControlPlane - Kind/name"."""
        if self.is_group:
            return f"{len(self.group_items)} {pluralize(self.kind.removesuffix('Group'))}..."
        if self.is_virtual:
            return self.meta_name or self.name
        name = f"{self.kind}/{self.name}"
        return f"{self.meta_name} - {name}" if self.meta_name else name


def pluralize(kind: str) -> str:
    """English plural of a kind, as clusterctl's flect does for the kinds it meets."""
    if kind.endswith(("s", "x", "ch", "sh")):
        return kind + "es"
    if kind.endswith("y") and kind[-2:-1] not in "aeiou":
        return kind[:-1] + "ies"
    return kind + "s"


def _same(a: Condition | None, b: Condition | None) -> bool:
    if (a is None) != (b is None):
        return False
    return a is None or b is None or (
        a.get("status") == b.get("status") and a.get("reason") == b.get("reason"))


def _key_conditions(node: Node) -> tuple[Condition | None, Condition | None, Condition | None]:
    return node.condition("Available"), node.condition("Ready"), node.condition("UpToDate")


def _true(c: Condition | None) -> bool:
    return c is not None and c.get("status") == "True"


def show_conditions_for(node: Node, spec: str) -> ShowConditions:
    """Whether ``--show-conditions spec`` selects this node: "all", "nonzero" or ""."""
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        mode: ShowConditions = "all"
        if entry.endswith(NON_ZERO_SUFFIX):
            entry, mode = entry[: -len(NON_ZERO_SUFFIX)], "nonzero"
        if entry.lower() == "all":
            return mode
        kind, slash, name = entry.partition("/")
        if kind == node.kind and (not slash or name == node.name):
            return mode
    return ""


@dataclass
class TreeOptions:
    show_conditions: str = ""
    show_machine_sets: bool = False
    show_templates: bool = False
    echo: bool = False
    grouping: bool = True


class ObjectTree:
    def __init__(self, root: Node, options: TreeOptions) -> None:
        self.root = root
        self.options = options
        root.show_conditions = show_conditions_for(root, options.show_conditions)

    def add(self, parent: Node | None, node: Node | None, *, no_echo: bool = False,
            grouping: bool = False) -> bool:
        """Add ``node`` under ``parent``; True if it got a row of its own (a node merged
        into a group or dropped as an echo did not, so its own children should be skipped)."""
        if parent is None or node is None:
            return False
        node.show_conditions = show_conditions_for(node, self.options.show_conditions)
        if no_echo and not self.options.echo:
            ready = node.condition("Ready")
            if _true(ready) or _same(parent.condition("Ready"), ready):
                return False
        if parent.grouping:
            available, ready, up_to_date = _key_conditions(node)
            for sibling in sorted(parent.children, key=lambda s: s.kind):
                s_available, s_ready, s_up_to_date = _key_conditions(sibling)
                if not (_same(available, s_available) and _same(ready, s_ready)
                        and _same(up_to_date, s_up_to_date)):
                    continue
                if sibling.is_group:
                    if sibling.kind == node.kind + "Group":
                        self._join(sibling, node)
                        return False
                    continue
                if sibling.kind != node.kind:
                    continue
                group = Node.virtual(node.kind + "Group", "")
                group.parent = parent
                self._join(group, sibling)
                self._join(group, node)
                parent.children[parent.children.index(sibling)] = group
                return False
        if grouping and self.options.grouping:
            node.grouping = True
        node.parent = parent
        parent.children.append(node)
        return True

    @staticmethod
    def _join(group: Node, node: Node) -> None:
        group.group_items = sorted([*group.group_items, node.name])
        available, ready, up_to_date = _key_conditions(node)
        group.group_available += _true(available)
        group.group_ready += _true(ready)
        group.group_up_to_date += _true(up_to_date)
        for type_, c in (("Available", available), ("Ready", ready), ("UpToDate", up_to_date)):
            if c is None:
                continue
            summary = {k: v for k, v in c.items() if k != "message"}
            held = group.group_conditions.get(type_)
            if type_ != "Ready":
                summary.pop("lastTransitionTime", None)
            elif held is not None and str(held.get("lastTransitionTime", "")) \
                    < str(c.get("lastTransitionTime", "")):
                summary["lastTransitionTime"] = held.get("lastTransitionTime")
            group.group_conditions[type_] = summary

    def walk(self) -> list[Node]:
        """Every node, depth first, children in print order."""
        out: list[Node] = []

        def visit(n: Node) -> None:
            out.append(n)
            for c in ordered(n.children):
                visit(c)

        visit(self.root)
        return out


def ordered(children: list[Node]) -> list[Node]:
    """Print order: groups first, then by row name (clusterctl sorts by its coloured name,
    which puts the bold group rows first)."""
    return sorted(children, key=lambda n: (not n.is_group, n.row_name()))
