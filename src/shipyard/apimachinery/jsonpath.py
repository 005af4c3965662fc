"""The JSONPath subset CRDs use: additionalPrinterColumns and the scale subresource's paths.

CRD authors write `.spec.replicas`, `.status.conditions[?(@.type=="Ready")].status`,
`.metadata.labels.foo` or `.spec.items[0].name`; kube evaluates them with client-go's jsonpath
(wrapped in `{}`), where a missing member yields no result rather than an error. This module
supports exactly that subset:

* `.name` children (with `\\.` escaping a dot inside a name), `['name']` / `["name"]`;
* `[n]` and negative indexes, `[*]` and `.*` wildcards, `[a:b]` slices;
* `[?(@.path OP literal)]` filters with ==, !=, <, <=, >, >= on strings, numbers, booleans, and
  `[?(@.path)]` for existence.

`evaluate(obj, path)` returns every match (empty when absent); `get_path` / `set_path` work on
plain field paths, as the scale subresource needs. Parse errors raise `JSONPathError`
(a ValueError); CRD validation should call `parse` up front.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["JSONPathError", "evaluate", "get_path", "parse", "set_path"]


class JSONPathError(ValueError):
    pass


@dataclass(frozen=True)
class _Field:
    name: str  # "*" for the wildcard


@dataclass(frozen=True)
class _Index:
    start: int | None
    stop: int | None = None
    is_slice: bool = False


@dataclass(frozen=True)
class _Filter:
    path: tuple[Any, ...]
    op: str  # "" = existence
    literal: Any = None


_Step = _Field | _Index | _Filter
_FILTER = re.compile(
    r"\?\(\s*@((?:\.[^\s=!<>)]+|\[[^\]]*\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)"
)


@functools.lru_cache(maxsize=1024)
def parse(path: str) -> tuple[_Step, ...]:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[_Step] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == ".":
            i += 1
            start, name = i, []
            while i < n and text[i] not in ".[":
                if text[i] == "\\" and i + 1 < n:
                    name.append(text[i + 1])
                    i += 2
                    continue
                name.append(text[i])
                i += 1
            if i == start:
                if i < n and text[i] == "[":
                    continue  # ".[0]" is the same as "[0]"
                raise JSONPathError(f"empty field name in {path!r}")
            steps.append(_Field("".join(name)))
        elif ch == "[":
            end = _closing_bracket(text, i, path)
            steps.append(_bracket(text[i + 1:end].strip(), path))
            i = end + 1
        else:
            raise JSONPathError(f"unexpected {ch!r} at offset {i} in {path!r}")
    return tuple(steps)


_UNESCAPE = re.compile(r"\\(.)")


def _closing_bracket(text: str, start: int, path: str) -> int:
    quote = ""
    for j in range(start + 1, len(text)):
        ch = text[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "]":
            return j
    raise JSONPathError(f"unclosed '[' in {path!r}")


def _bracket(inner: str, path: str) -> _Step:
    if inner == "*":
        return _Field("*")
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        # kube's parser drops the backslash of an escaped character in a quoted name, so
        # ['cluster\.x-k8s\.io/cluster-name'] (CRD printer columns) names the dotted key.
        return _Field(_UNESCAPE.sub(r"\1", inner[1:-1]))
    if inner.startswith("?"):
        m = _FILTER.fullmatch(inner)
        if not m:
            raise JSONPathError(f"unsupported filter {inner!r} in {path!r}")
        sub = parse(m.group(1)) if m.group(1) else ()
        op = m.group(2) or ""
        return _Filter(sub, op, _literal(m.group(3), path) if op else None)
    if ":" in inner:
        lo, _, hi = inner.partition(":")
        try:
            return _Index(int(lo) if lo.strip() else None, int(hi) if hi.strip() else None, True)
        except ValueError:
            raise JSONPathError(f"bad slice [{inner}] in {path!r}") from None
    try:
        return _Index(int(inner))
    except ValueError:
        raise JSONPathError(f"bad index [{inner}] in {path!r}") from None


def _literal(text: str, path: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:
        raise JSONPathError(f"bad literal {text!r} in {path!r}") from None


def _walk(node: Any, steps: tuple[_Step, ...]) -> Iterator[Any]:
    if not steps:
        yield node
        return
    step, rest = steps[0], steps[1:]
    if isinstance(step, _Field):
        if step.name == "*":
            children = node.values() if isinstance(node, Mapping) else (
                node if isinstance(node, list) else ())
            for child in children:
                yield from _walk(child, rest)
        elif isinstance(node, Mapping) and step.name in node:
            yield from _walk(node[step.name], rest)
    elif isinstance(step, _Index):
        if not isinstance(node, list):
            return
        if step.is_slice:
            for child in node[step.start:step.stop]:
                yield from _walk(child, rest)
        elif step.start is not None and -len(node) <= step.start < len(node):
            yield from _walk(node[step.start], rest)
    else:
        items = node if isinstance(node, list) else (
            list(node.values()) if isinstance(node, Mapping) else [])
        for item in items:
            if _matches(item, step):
                yield from _walk(item, rest)


def _matches(item: Any, flt: _Filter) -> bool:
    found = list(_walk(item, flt.path))
    if not flt.op:
        return bool(found)
    if not found:
        return False
    value, want = found[0], flt.literal
    if flt.op == "==":
        return _same(value, want)
    if flt.op == "!=":
        return not _same(value, want)
    comparable = (isinstance(value, int | float) and isinstance(want, int | float)
                  and not isinstance(value, bool) and not isinstance(want, bool))
    if not comparable and not (isinstance(value, str) and isinstance(want, str)):
        return False
    if flt.op == "<":
        return bool(value < want)
    if flt.op == "<=":
        return bool(value <= want)
    if flt.op == ">":
        return bool(value > want)
    return bool(value >= want)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def evaluate(obj: Any, path: str) -> list[Any]:
    """Every value `path` selects in `obj`; [] when nothing matches."""
    return list(_walk(obj, parse(path)))


def _field_names(path: str) -> list[str]:
    steps = parse(path)
    names = []
    for step in steps:
        if not isinstance(step, _Field) or step.name == "*":
            raise JSONPathError(f"{path!r} is not a plain field path")
        names.append(step.name)
    if not names:
        raise JSONPathError(f"{path!r} selects the whole object")
    return names


def get_path(obj: Any, path: str) -> Any | None:
    """The first value at `path`, or None if absent."""
    found = evaluate(obj, path)
    return found[0] if found else None


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set a plain field path like `.spec.replicas` in place, creating missing objects."""
    names = _field_names(path)
    node: Any = obj
    for name in names[:-1]:
        child = node.get(name)
        if not isinstance(child, dict):
            child = {}
            node[name] = child
        node = child
    node[names[-1]] = value
