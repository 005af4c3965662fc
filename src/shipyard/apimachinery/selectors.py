"""Label and field selectors, parsed and matched the way kube-apiserver does it.

`?labelSelector=` and `?fieldSelector=` arrive as strings; metav1.LabelSelector objects arrive
inside specs (MachineDeployment.spec.selector, ...). Both must select exactly what
kube-apiserver would select, and a malformed selector must fail with kube's 400 message, because
kubectl prints it verbatim (`unable to parse requirement: ...`).

Contract:

* `parse_label_selector(text)` follows k8s.io/apimachinery/pkg/labels: `k=v`, `k==v`, `k!=v`,
  `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>1`, `k<1`. Raises `errors.BadRequest`.
* `label_selector_from_dict(sel)` is LabelSelectorAsSelector: `None` selects nothing, `{}`
  selects everything. Raises `errors.BadRequest` for bad keys, values or operators.
* `parse_field_selector(text)` follows k8s.io/apimachinery/pkg/fields: `=`, `==`, `!=` terms
  joined by `,`, with `\\,` `\\=` `\\\\` escapes in values. A missing field reads as "".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.apimachinery.errors import BadRequest
from shipyard.apimachinery.validation import go_repr, is_qualified_name, is_valid_label_value

__all__ = [
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "field_value",
    "label_selector_from_dict",
    "label_selector_to_string",
    "parse_field_selector",
    "parse_label_selector",
]

# selection.Operator values.
IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GT, LT = "exists", "!", "gt", "lt"
_BINARY = [IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GT, LT]
_INT64 = re.compile(r"[+-]?[0-9]+")


class _SelectorError(Exception):
    pass


def _field_error(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {go_repr(value)}: {detail}"


def _aggregate(messages: list[str]) -> str:
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _is_int64(text: str) -> bool:
    return bool(_INT64.fullmatch(text)) and -(2**63) <= int(text) < 2**63


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def new(cls, key: str, operator: str, values: list[str]) -> Requirement:
        """labels.NewRequirement: validate, or raise _SelectorError with kube's message."""
        errs: list[str] = []
        key_errs = is_qualified_name(key)
        if key_errs:
            errs.append(_field_error("key", key, "; ".join(key_errs)))
        if operator in (IN, NOT_IN) and not values:
            errs.append(_field_error("values", values,
                                     "for 'in', 'notin' operators, values set can't be empty"))
        elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
            errs.append(_field_error("values", values,
                                     "exact-match compatibility requires one single value"))
        elif operator in (EXISTS, DOES_NOT_EXIST) and values:
            errs.append(_field_error("values", values,
                                     "values set must be empty for exists and does not exist"))
        elif operator in (GT, LT):
            if len(values) != 1:
                errs.append(_field_error("values", values,
                                         "for 'Gt', 'Lt' operators, exactly one value is required"))
            for i, v in enumerate(values):
                if not _is_int64(v):
                    errs.append(_field_error(f"values[{i}]", v, "for 'Gt', 'Lt' operators, the "
                                                                "value must be an integer"))
        for i, v in enumerate(values):
            value_errs = is_valid_label_value(v)
            if value_errs:
                errs.append(_field_error(f"values[{i}][{key}]", v, "; ".join(value_errs)))
        if errs:
            raise _SelectorError(_aggregate(errs))
        return cls(key, operator, tuple(values))

    def matches(self, labels: Mapping[str, str]) -> bool:
        op, present = self.operator, self.key in labels
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if op == EXISTS:
            return present
        if op == DOES_NOT_EXIST:
            return not present
        if op in (GT, LT):
            if not present or not _is_int64(labels[self.key]) or len(self.values) != 1:
                return False
            have, want = int(labels[self.key]), int(self.values[0])
            return have > want if op == GT else have < want
        return False

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({values})"
        symbol = {GT: ">", LT: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{values}"


@dataclass(frozen=True)
class LabelSelector:
    """AND of requirements, sorted by key. `nothing` is labels.Nothing() (a nil LabelSelector)."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# -- label selector string parser (a port of the grammar, not of the code) --------------------

_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")
_ID, _END, _OPEN, _CLOSE, _COMMA, _NOT = "id", "end", "(", ")", ",", "!"
_SYMBOLS = {")": _CLOSE, ",": _COMMA, "!": _NOT, "==": DOUBLE_EQUALS, "=": EQUALS, ">": GT,
            "<": LT, "!=": NOT_EQUALS, "(": _OPEN}
_KEYWORDS = {"in": IN, "notin": NOT_IN}


def _lex(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= n:
            tokens.append((_END, ""))
            return tokens
        if text[pos] in _SPECIAL:
            best: tuple[str, str] | None = None
            end = pos
            while end < n and text[end] in _SPECIAL:
                candidate = text[pos:end + 1]
                if candidate in _SYMBOLS:
                    best = (_SYMBOLS[candidate], candidate)
                elif best is not None:
                    break
                end += 1
            if best is None:
                raise _SelectorError(f"error expected: keyword found '{text[pos:end]}'")
            tokens.append(best)
            pos += len(best[1])
            continue
        start = pos
        while pos < n and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        tokens.append((_KEYWORDS.get(word, _ID), word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[str, str]:
        return self._as(self.items[self.pos], values)

    def take(self, values: bool = True) -> tuple[str, str]:
        item = self.items[self.pos]
        self.pos += 1
        return self._as(item, values)

    @staticmethod
    def _as(item: tuple[str, str], values: bool) -> tuple[str, str]:
        # In value position the keywords 'in'/'notin' are plain identifiers.
        if values and item[0] in (IN, NOT_IN):
            return _ID, item[1]
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok == _END:
                return reqs
            if tok not in (_ID, _NOT):
                raise _SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except _SelectorError as e:
                raise _SelectorError(f"unable to parse requirement: {e}") from None
            tok, lit = self.take()
            if tok == _END:
                return reqs
            if tok != _COMMA:
                raise _SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok2, lit2 = self.peek()
            if tok2 not in (_ID, _NOT):
                raise _SelectorError(f"found '{lit2}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        operator = ""
        tok, key = self.take()
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, key = self.take()
        if tok != _ID:
            raise _SelectorError(f"found '{key}', expected: identifier")
        key_errs = is_qualified_name(key)
        if key_errs:
            raise _SelectorError(_field_error("<nil>", key, "; ".join(key_errs)))
        if operator == DOES_NOT_EXIST:
            return Requirement.new(key, DOES_NOT_EXIST, [])
        if self.peek()[0] in (_END, _COMMA):
            return Requirement.new(key, EXISTS, [])
        tok, lit = self.take(values=False)
        if tok not in _BINARY:
            raise _SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_SPELLED)}")
        values = self.set_values() if tok in (IN, NOT_IN) else self.exact_value()
        return Requirement.new(key, tok, sorted(values))

    def set_values(self) -> set[str]:
        tok, lit = self.take()
        if tok != _OPEN:
            raise _SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok == _CLOSE:
            self.take()
            return {""}
        if tok not in (_ID, _COMMA):
            raise _SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != _CLOSE:
            raise _SelectorError(f"found '{lit}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok == _ID:
                values.add(lit)
                tok2, lit2 = self.peek()
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return values
                raise _SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")
                tok2, _ = self.peek()
                if tok2 == _CLOSE:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    self.take()
                    values.add("")
                continue
            raise _SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in (_END, _COMMA):
            return {""}
        tok, lit = self.take()
        if tok == _ID:
            return {lit}
        raise _SelectorError(f"found '{lit}', expected: identifier")


_BINARY_SPELLED = ["in", "notin", "=", "==", "!=", "gt", "lt"]


def parse_label_selector(text: str) -> LabelSelector:
    """labels.Parse; an empty string selects everything."""
    try:
        reqs = _Parser(text).parse()
    except _SelectorError as e:
        raise BadRequest(str(e)) from None
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


_EXPRESSION_OPERATORS = {
    "In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST,
}


def label_selector_from_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, an empty selector everything."""
    if sel is None:
        return LabelSelector(nothing=True)
    match_labels = sel.get("matchLabels") or {}
    expressions = sel.get("matchExpressions") or []
    reqs: list[Requirement] = []
    try:
        for key, value in match_labels.items():
            reqs.append(Requirement.new(str(key), EQUALS, [str(value)]))
        for expr in expressions:
            op = _EXPRESSION_OPERATORS.get(expr.get("operator", ""))
            if op is None:
                raise _SelectorError(
                    f"{go_repr(str(expr.get('operator', '')))} is not a valid label selector "
                    "operator"
                )
            values = [str(v) for v in expr.get("values") or []]
            reqs.append(Requirement.new(str(expr.get("key", "")), op, values))
    except _SelectorError as e:
        raise BadRequest(str(e)) from None
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


def label_selector_to_string(sel: Mapping[str, Any] | None) -> str:
    """The string form kube publishes in Scale status.selector (empty selects everything)."""
    return str(label_selector_from_dict(sel))


# -- field selectors ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSelector:
    """AND of (field, op, value) terms; op is "=" or "!=" ("==" is stored as "=")."""

    requirements: tuple[tuple[str, str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, get: Callable[[str], str | None]) -> bool:
        for field, op, value in self.requirements:
            have = get(field) or ""
            if (have == value) != (op == "="):
                return False
        return True

    def requires_exact_match(self, field: str) -> str | None:
        """The value `field` must equal, if some term pins it (for index lookups)."""
        for f, op, value in self.requirements:
            if f == field and op == "=":
                return value
        return None

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{_escape_value(v)}" for f, op, v in self.requirements)


def _escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_terms(text: str) -> list[str]:
    terms, start, escaped = [], 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _unescape_value(value: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise BadRequest(
                    f"invalid field selector: invalid escape sequence: \\{ch}"
                )
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            # Go prints the rune with %v, i.e. as its code point.
            raise BadRequest(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise BadRequest("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(text: str) -> FieldSelector:
    """fields.ParseSelector; an empty string selects everything."""
    if not text:
        return FieldSelector()
    reqs: list[tuple[str, str, str]] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        for i in range(len(term)):
            op = next((o for o in ("!=", "==", "=") if term.startswith(o, i)), None)
            if op is not None:
                lhs, rhs = term[:i], term[i + len(op):]
                break
        else:
            raise BadRequest(f"invalid selector: '{text}'; can't understand '{term}'")
        reqs.append((lhs, "!=" if op == "!=" else "=", _unescape_value(rhs)))
    return FieldSelector(tuple(reqs))


def field_value(obj: Mapping[str, Any], path: str) -> str | None:
    """Read a dotted field path as the string kube's field-selector index would hold."""
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if node is None:
        return None
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int | float | str):
        return str(node)
    return None
