"""Print an `ObjectTree` as clusterctl's v1beta2 table (``internal/util/tree``).

Columns: NAME, REPLICAS, AVAILABLE, READY, UP TO DATE, STATUS, REASON, SINCE, MESSAGE. What a
row shows depends on the object, as upstream:

- Cluster: control-plane plus worker counters from ``status.controlPlane``/``status.workers``,
  and its Available condition;
- MachineDeployment / MachineSet: ``status.replicas``/``spec.replicas`` and the counters;
  a MachineDeployment shows Available, a MachineSet no condition;
- Machine: 1, and 0/1 from its Available, Ready and UpToDate conditions; shows Ready;
- a control-plane provider's object: the contract's replica counters and Available;
- any other object: its Ready condition; a group: its counters and the shared Ready, with
  "See a, b, ..." as the message.

Messages are wrapped at 100 columns, continuation lines get rows of their own. Status is green
when the condition is in its normal state (True, or False for negative-polarity conditions such
as Paused or ScalingUp), red when not, yellow when Unknown. Colour is ANSI escapes, only when
asked for (the CLI asks on a terminal).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from shipyard.describe.tree import Condition, Node, ObjectTree, ordered

HEADER = ["NAME", "REPLICAS", "AVAILABLE", "READY", "UP TO DATE", "STATUS", "REASON", "SINCE",
          "MESSAGE"]
FIRST, LAST, PIPE, INDENT = "├─", "└─", "│ ", "  "
NEGATIVE_POLARITY = frozenset({"Paused", "Deleting", "RollingOut", "ScalingUp", "ScalingDown",
                               "Updating", "Remediating"})
GRAY, RED, GREEN, YELLOW, CYAN, BOLD, WHITE_BOLD = "90", "31", "32", "33", "36", "1", "37;1"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, code: str, text: str) -> str:
        if not self.color or not text:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery's `duration.HumanDuration`: 45s, 3m20s, 15m, 5h3m, 3d4h, 400d."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def format_paragraph(text: str, width: int = 100) -> str:
    """Wrap at ``width``, keeping line breaks, the indentation of each line and the hanging
    indent of "* " bullets (upstream's `formatParagraph`)."""
    lines: list[str] = []
    for line in text.split("\n"):
        lead = line[: len(line) - len(line.lstrip(" "))]
        indent = lead + ("  " if line.strip().startswith("* ") else "")
        current = lead
        for word in line.split():
            if len(current) + len(word) < width:
                current += (" " if current.strip() else "") + word
                continue
            lines.append(current)
            current = indent + word
        lines.append(current)
    return "\n".join(lines)


def _since(c: Condition, now: datetime) -> str:
    raw = c.get("lastTransitionTime")
    if not raw:
        return ""
    try:
        at = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return human_duration((now - at).total_seconds())


class _Row:
    def __init__(self) -> None:
        self.replicas = self.available = self.ready = self.up_to_date = ""
        self.status = self.reason = self.since = self.message = ""


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Printer:
    def __init__(self, tree: ObjectTree, *, color: bool = False,
                 now: datetime | None = None) -> None:
        self.tree = tree
        self.style = Style(color)
        self.now = now or datetime.now(UTC)
        self.rows: list[list[str]] = []

    def render(self) -> str:
        self._object("", self.tree.root)
        table = [list(HEADER), *self.rows]
        widths = [max(_width(r[i]) for r in table) for i in range(len(HEADER))]
        out = []
        for row in table:
            cells = [cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)]
            out.append("  ".join(cells).rstrip())
        return "\n".join(out) + "\n"

    # ------------------------------------------------------------------ rows

    def _condition(self, row: _Row, c: Condition | None, positive: bool = True) -> None:
        if c is None:
            return
        code, status = self._status(c, positive)
        row.status = self.style(code, status)
        row.reason = str(c.get("reason") or "")
        row.since = _since(c, self.now)
        row.message = format_paragraph(str(c.get("message") or ""))

    @staticmethod
    def _status(c: Condition, positive: bool) -> tuple[str, str]:
        status = str(c.get("status") or "")
        if status == "Unknown":
            return YELLOW, status
        if status in ("True", "False"):
            return (GREEN if (status == "True") == positive else RED), status
        return GRAY, status

    def _describe(self, node: Node) -> _Row:
        row = _Row()
        obj = node.obj or {}
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if node.is_group:
            row.available = str(node.group_available)
            row.ready = str(node.group_ready)
            row.up_to_date = str(node.group_up_to_date)
            self._condition(row, node.condition("Ready"))
            items = node.group_items
            see = ", ".join(items[:2]) + (", ..." if len(items) > 2 else "")
            row.message = self.style(GRAY, f"See {see}")
        elif node.is_virtual:
            self._condition(row, node.condition("Ready"))
        elif node.kind == "Cluster":
            cp, workers = status.get("controlPlane") or {}, status.get("workers") or {}

            def total(key: str) -> str:
                values = [_int(cp.get(key)), _int(workers.get(key))]
                return "" if values == [None, None] else str(sum(v or 0 for v in values))

            if any(k in d for d in (cp, workers) for k in ("replicas", "desiredReplicas")):
                row.replicas = f"{total('replicas') or 0}/{total('desiredReplicas') or 0}"
            row.available = total("availableReplicas")
            row.ready = total("readyReplicas")
            row.up_to_date = total("upToDateReplicas")
            self._condition(row, node.condition("Available"))
        elif node.kind in ("MachineDeployment", "MachineSet") or node.contract == "ControlPlane":
            desired = _int(spec.get("replicas"))
            if desired is not None:
                row.replicas = f"{_int(status.get('replicas')) or 0}/{desired}"
            for attr, key in (("available", "availableReplicas"), ("ready", "readyReplicas"),
                              ("up_to_date", "upToDateReplicas")):
                value = _int(status.get(key))
                if value is not None:
                    setattr(row, attr, str(value))
            if node.kind == "MachineDeployment":
                self._condition(row, node.condition("Available"))
            elif node.kind != "MachineSet":
                self._condition(row, node.condition("Available") or node.condition("Ready"))
        elif node.kind == "Machine":
            row.replicas = "1"
            row.available = str(int(_true(node.condition("Available"))))
            row.ready = str(int(_true(node.condition("Ready"))))
            row.up_to_date = str(int(_true(node.condition("UpToDate"))))
            self._condition(row, node.condition("Ready"))
        else:
            self._condition(row, node.condition("Ready"))
        return row

    def _name(self, node: Node) -> str:
        if node.is_group:
            return self.style(WHITE_BOLD, node.row_name())
        if node.is_virtual:
            return node.row_name()
        name = f"{node.kind}/{self.style(BOLD, node.name)}"
        if node.meta_name:
            name = f"{node.meta_name} - {self.style(GRAY, name)}"
        if node.deleting:
            name = f"{self.style(RED, '!! DELETED !!')} {name}"
        return name

    def _object(self, prefix: str, node: Node) -> None:
        row = self._describe(node)
        if node.show_conditions:
            row.status = row.reason = row.since = row.message = ""
        lines = row.message.split("\n")
        self.rows.append([self.style(GRAY, prefix) + self._name(node), row.replicas,
                          row.available, row.ready, row.up_to_date, row.status, row.reason,
                          row.since, lines[0]])
        more = _continuation(prefix) + (PIPE if node.children else "")
        for line in lines[1:]:
            self.rows.append([self.style(GRAY, more), "", "", "", "", "", "", "", line])
        if node.show_conditions:
            self._conditions(prefix, node)
        children = ordered(node.children)
        for i, child in enumerate(children):
            self._object(_child_prefix(prefix, i, len(children)), child)

    def _conditions(self, prefix: str, node: Node) -> None:
        shown = node.conditions()
        if node.show_conditions == "nonzero":
            shown = [c for c in shown if c.get("type") in ("Available", "Ready")
                     or not _is_zero(c, c.get("type") not in NEGATIVE_POLARITY)]
        base = prefix + (PIPE if node.children else INDENT) + " " * 10
        for i, c in enumerate(shown):
            child = _child_prefix(base, i, len(shown))
            row = _Row()
            self._condition(row, c, c.get("type") not in NEGATIVE_POLARITY)
            lines = row.message.split("\n")
            self.rows.append([self.style(GRAY, child) + self.style(CYAN, str(c.get("type"))),
                              "", "", "", "", row.status, row.reason, row.since, lines[0]])
            for line in lines[1:]:
                self.rows.append([self.style(GRAY, _multiline(child)), "", "", "", "", "", "",
                                  "", line])


def _true(c: Condition | None) -> bool:
    return c is not None and c.get("status") == "True"


def _is_zero(c: Condition, positive: bool) -> bool:
    """A condition in its normal state with nothing to say (hidden by ``Kind+``)."""
    status = c.get("status")
    if status == "Unknown" or (status == "True") != positive:
        return False
    return not c.get("message")


def _width(cell: str) -> int:
    return len(_ANSI.sub("", cell))


def _continuation(prefix: str) -> str:
    return prefix.replace(FIRST, PIPE).replace(LAST, INDENT)


def _child_prefix(prefix: str, index: int, count: int) -> str:
    return _continuation(prefix) + (FIRST if index < count - 1 else LAST)


def _multiline(prefix: str) -> str:
    if prefix.endswith(FIRST):
        return prefix[: -len(FIRST)] + PIPE
    if prefix.endswith(LAST):
        return prefix[: -len(LAST)]
    return "?"


def render(tree: ObjectTree, *, color: bool = False, now: datetime | None = None) -> str:
    """The table as text, ending with a newline."""
    return Printer(tree, color=color, now=now).render()
