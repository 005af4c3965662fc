"""clusterctl's variable substitution: the `${VAR}` language of drone/envsubst, which
clusterctl's simple YAML processor uses for cluster templates.

Why our own: the language is small, its edge cases decide whether an upstream template renders
the same here, and a dependency for ~200 lines is not worth it.

Contract (as drone/envsubst v2 and clusterctl's processor behave):
- Only `${...}` is an expression; a bare `$NAME` is text. `$$` is an escaped `$`.
- Legacy spacing is normalised first: `${ VAR }`, `${ VAR}`, `${VAR }` mean `${VAR}`.
- Names are letters, digits, `_` and `-` (so `${A-b}` names the variable `A-b`).
- Defaults: `${V=d}`, `${V:=d}`, `${V:-d}` give d when V is empty or unset; `${V:+d}` gives d
  when V is set and non-empty; `${V:?msg}` fails when V is empty. Arguments may contain
  nested expressions (`${A:=${B}}`).
- Also: `${#V}` (length), `${V^}` `${V^^}` `${V,}` `${V,,}` (case), `${V:pos}` and
  `${V:pos:len}` (substring), `${V#p}` `${V##p}` `${V%p}` `${V%%p}` (trim a glob prefix/suffix,
  shortest/longest), `${V/p/r}` `${V//p/r}` `${V/#p/r}` `${V/%p/r}` (replace); `\\/` escapes a
  slash in a pattern.
- `variables(text)` lists every variable used, with whether it has a default and the default's
  text (nested variables kept as `${X}`), the way `clusterctl generate --list-variables` reports.
- `substitute(text, lookup)` fails with `MissingVariables` (clusterctl's message) listing every
  variable without a value and without a default, before substituting anything.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_LEGACY = re.compile(r"\$\{\s*([A-Za-z0-9_$]+)\s*\}")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_OPERATORS = (":=", ":-", ":?", ":+", "=", "^^", "^", ",,", ",", "##", "#", "%%", "%",
              "//", "/#", "/%", "/", ":")
DEFAULTING = frozenset({"=", ":=", ":-"})
"""Operators whose argument stands in for an unset variable (clusterctl's "has a default")."""


class TemplateSyntaxError(ValueError):
    """The template is not valid envsubst text (an unterminated `${`)."""


class MissingVariables(KeyError):
    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.names = sorted(names)

    def __str__(self) -> str:
        return (f"value for variables [{', '.join(self.names)}] is not set. Please set the "
                "value using os environment variables or the clusterctl config file")


@dataclass
class Text:
    value: str


@dataclass
class Expr:
    name: str
    operator: str = ""
    args: list[list[Text | Expr]] = field(default_factory=list)


Node = Text | Expr


@dataclass(frozen=True)
class Variable:
    name: str
    required: bool
    default: str = ""


def normalize(text: str) -> str:
    return _LEGACY.sub(lambda m: "${" + m.group(1) + "}", text)


def parse(text: str) -> list[Node]:
    nodes, end = _parse(normalize(text), 0, top=True)
    assert end == len(normalize(text))
    return nodes


def _parse(text: str, i: int, *, top: bool, stop: str = "") -> tuple[list[Node], int]:
    """Nodes from `text[i:]` up to (not including) an unescaped character of `stop` at this
    nesting level (inside an expression's arguments) or the end (top level)."""
    nodes: list[Node] = []
    buf: list[str] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "$" and i + 1 < n and text[i + 1] == "$":
            buf.append("$")
            i += 2
            continue
        if ch == "$" and i + 1 < n and text[i + 1] == "{":
            if buf:
                nodes.append(Text("".join(buf)))
                buf = []
            expr, i = _expression(text, i + 2)
            nodes.append(expr)
            continue
        if not top:
            if ch == "\\" and i + 1 < n and text[i + 1] in "/\\":
                buf.append(text[i + 1])
                i += 2
                continue
            if ch in stop:
                break
        buf.append(ch)
        i += 1
    if buf:
        nodes.append(Text("".join(buf)))
    return nodes, i


def _expression(text: str, i: int) -> tuple[Expr, int]:
    """Parse after `${` up to and including the closing `}`."""
    length = text.startswith("#", i) and _NAME.match(text, i + 1) is not None
    if length:
        i += 1
    m = _NAME.match(text, i)
    if m is None:
        raise TemplateSyntaxError(f"bad variable name at offset {i}: {text[i:i + 20]!r}")
    expr = Expr(m.group(0), "#" if length else "")
    i = m.end()
    if not length:
        for op in _OPERATORS:
            if text.startswith(op, i):
                expr.operator = op
                i += len(op)
                break
    separators = {":": ":", "/": "/", "//": "/", "/#": "/", "/%": "/"}.get(expr.operator, "")
    if expr.operator and expr.operator not in ("^", "^^", ",", ",,") and not length:
        while True:
            arg, i = _parse(text, i, top=False, stop="}" + separators)
            expr.args.append(arg)
            if i < len(text) and text[i] != "}" and text[i] in separators:
                i += 1
                continue
            break
    if i >= len(text) or text[i] != "}":
        raise TemplateSyntaxError(f"unterminated ${{{expr.name} in template")
    return expr, i + 1


# ----------------------------------------------------------------------------- inspection

def variables(text: str) -> list[Variable]:
    """Every variable in `text`, first use deciding required/default, sorted by name."""
    seen: dict[str, Variable] = {}

    def walk(nodes: list[Node]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                continue
            if node.name not in seen:
                if node.args:
                    seen[node.name] = Variable(node.name, False, "".join(
                        _source(a) for a in node.args))
                else:
                    seen[node.name] = Variable(node.name, node.operator == "")
            for arg in node.args:
                walk(arg)

    walk(parse(text))
    return sorted(seen.values(), key=lambda v: v.name)


def _source(nodes: list[Node]) -> str:
    return "".join(n.value if isinstance(n, Text) else "${" + n.name + "}" for n in nodes)


# ----------------------------------------------------------------------------- evaluation

Lookup = Callable[[str], str | None]


def substitute(text: str, lookup: Lookup) -> str:
    nodes = parse(text)
    missing: set[str] = set()

    def check(nodes: list[Node]) -> None:
        for node in nodes:
            if isinstance(node, Expr):
                if not node.args and lookup(node.name) is None:
                    missing.add(node.name)
                for arg in node.args:
                    check(arg)

    check(nodes)
    if missing:
        raise MissingVariables(sorted(missing))
    return _render(nodes, lookup)


def _render(nodes: list[Node], lookup: Lookup) -> str:
    return "".join(n.value if isinstance(n, Text) else _eval(n, lookup) for n in nodes)


def _eval(expr: Expr, lookup: Lookup) -> str:
    value = lookup(expr.name) or ""
    op = expr.operator
    args = [_render(a, lookup) for a in expr.args]
    if op == "":
        return value
    if op in DEFAULTING:
        return value or args[0]
    if op == ":+":
        return args[0] if value else ""
    if op == ":?":
        if not value:
            raise MissingVariables([expr.name])
        return value
    if op == "#" and not args:
        return str(len(value))
    if op == "^":
        return value[:1].upper() + value[1:]
    if op == "^^":
        return value.upper()
    if op == ",":
        return value[:1].lower() + value[1:]
    if op == ",,":
        return value.lower()
    if op == ":":
        return _substring(value, args)
    if op in ("#", "##"):
        return _trim_prefix(value, args[0], longest=op == "##")
    if op in ("%", "%%"):
        return _trim_suffix(value, args[0], longest=op == "%%")
    return _replace(value, op, args)


def _substring(value: str, args: list[str]) -> str:
    """bash's `${V:pos:len}`: an unparsable number leaves V whole; a negative position counts
    from the end."""
    try:
        start = int(args[0])
    except ValueError:
        return value
    if start < 0:
        start = max(0, len(value) + start)
    if len(args) == 1:
        return value[start:]
    try:
        length = int(args[1])
    except ValueError:
        return value
    return value[start:start + length] if start + length < len(value) else value[start:]


def _matches(candidate: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(candidate, pattern)


def _trim_prefix(value: str, pattern: str, *, longest: bool) -> str:
    """Remove the shortest (or longest) non-empty prefix matching the glob `pattern`."""
    ends = range(len(value), 0, -1) if longest else range(1, len(value) + 1)
    for end in ends:
        if _matches(value[:end], pattern):
            return value[end:]
    return value


def _trim_suffix(value: str, pattern: str, *, longest: bool) -> str:
    starts = range(len(value)) if longest else range(len(value) - 1, -1, -1)
    for start in starts:
        if _matches(value[start:], pattern):
            return value[:start]
    return value


def _replace(value: str, op: str, args: list[str]) -> str:
    pattern = args[0] if args else ""
    replacement = args[1] if len(args) > 1 else ""
    if not pattern:
        return value
    if op == "/#":
        return replacement + value[len(pattern):] if value.startswith(pattern) else value
    if op == "/%":
        return value[:-len(pattern)] + replacement if value.endswith(pattern) else value
    if op == "//":
        return value.replace(pattern, replacement)
    return value.replace(pattern, replacement, 1)
