"""x-kubernetes-validations: compile every CEL rule of a schema once, evaluate per request.

The engine sits behind `CelEngine` so another CEL implementation can replace cel-expr-python.
Semantics follow kube-apiserver's `schema/cel/validation.go`:

* `self` is the value at the rule's node (objects as maps, lists, scalars); at the resource root
  `metadata` only carries `name` and `generateName`.
* A rule that mentions `oldSelf` is a transition rule: it runs only on update, where an old value
  exists at that path. Old values follow object properties and map keys; list items correlate only
  for `x-kubernetes-list-type: map` (by keys) and `set` (by value). With `optionalOldSelf: true`
  the rule always runs and `oldSelf` is an optional (`optional.none()` on create).
* A false rule gives `field.Invalid(path, <schema type>, message)`; `reason` picks Forbidden,
  Required or Duplicate instead; `fieldPath` is appended to the path; `messageExpression` wins over
  `message` when it evaluates to a non-empty single-line string; the default message is
  ``failed rule: <rule>``. Evaluation errors read ``<error> evaluating rule: <rule>``.

Libraries: cel-expr-python's strings, math, encoders, optional and bindings extensions, plus the
cheap Kubernetes list functions `isSorted`, `sum`, `min`, `max` and the regex `find`/`findAll`.
Not provided: cost limits, `quantity`, `url`, `ip`/`cidr`, `format`, list `indexOf`/`lastIndexOf`
(their names clash with the strings extension's declarations).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_encoders, ext_math, ext_optional, ext_strings

from shipyard.apimachinery.errors import StatusCause

from . import fielderrors as fe
from .validation import json_equal

_T = cel.Type
_OLD_SELF = re.compile(r"\boldSelf\b")
_REASONS = ["FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid",
            "FieldValueRequired"]


class CelProgram(Protocol):
    def evaluate(self, variables: dict[str, Any]) -> tuple[Any, str | None]:
        """(result, None) or (None, error text)."""


class CelEngine(Protocol):
    def compile(self, expression: str, self_type: str, *, optional_old_self: bool = False,
                result: str = "bool") -> CelProgram:
        """Compile for `self`/`oldSelf` of OpenAPI type `self_type`; raise CelCompileError."""


class CelCompileError(Exception):
    pass


# --- cel-expr-python ---------------------------------------------------------------------------


def _is_sorted(lst: list[Any]) -> bool:
    return all(lst[i] <= lst[i + 1] for i in range(len(lst) - 1))


def _find(s: str, pattern: str) -> str:
    m = re.search(pattern, s)
    return m.group(0) if m else ""


def _find_all(s: str, pattern: str) -> list[str]:
    return [m.group(0) for m in re.finditer(pattern, s)]


def _k8s_functions() -> list[Any]:
    dyn_list = _T.List(_T.DYN)

    def member(name: str, ret: Any, params: list[Any], impl: Any) -> Any:
        return cel.FunctionDecl(name, [cel.Overload(f"k8s_{name}", ret, params, is_member=True,
                                                    impl=impl)])

    return [
        member("isSorted", _T.BOOL, [dyn_list], _is_sorted),
        member("sum", _T.DYN, [dyn_list], lambda lst: sum(lst)),
        member("min", _T.DYN, [dyn_list], lambda lst: min(lst)),
        member("max", _T.DYN, [dyn_list], lambda lst: max(lst)),
        member("find", _T.STRING, [_T.STRING, _T.STRING], _find),
        member("findAll", _T.List(_T.STRING), [_T.STRING, _T.STRING], _find_all),
    ]


def _cel_type(openapi_type: str) -> Any:
    return {"string": _T.STRING, "integer": _T.INT, "number": _T.DOUBLE, "boolean": _T.BOOL,
            "object": _T.Map(_T.STRING, _T.DYN), "array": _T.List(_T.DYN)}.get(openapi_type,
                                                                               _T.DYN)


def _clean(err: str) -> str:
    err = re.sub(r"^[A-Z_]+: ", "", err)
    err = re.sub(r" \[[A-Z_]+\]$", "", err)
    m = re.match(r'Key not found in map : "(.*)"$', err)
    return f"no such key: {m.group(1)}" if m else err


class _ExprProgram:
    __slots__ = ("_expr", "_optional")

    def __init__(self, expr: Any, optional: bool) -> None:
        self._expr = expr
        self._optional = optional

    def evaluate(self, variables: dict[str, Any]) -> tuple[Any, str | None]:
        if self._optional:
            old = variables.get("oldSelf")
            variables = {"self": variables["self"], "__old": old,
                         "__hasOld": "oldSelf" in variables}
        value = self._expr.eval(data=variables)
        if value.type().name() == "ERROR":
            return None, _clean(str(value.value()))
        return value.plain_value(), None


class CelExprEngine:
    """`CelEngine` over cel-expr-python; environments are cached per `self` type."""

    def __init__(self) -> None:
        self._envs: dict[tuple[str, bool], Any] = {}

    def _env(self, self_type: str, optional: bool) -> Any:
        env = self._envs.get((self_type, optional))
        if env is None:
            t = _cel_type(self_type)
            variables = {"self": t, "__old": t, "__hasOld": _T.BOOL} if optional else {
                "self": t, "oldSelf": t}
            env = cel.NewEnv(
                variables=variables,
                extensions=[ext_strings.ExtStrings(), ext_math.ExtMath(),
                            ext_encoders.ExtEncoders(), ext_optional.ExtOptional(),
                            ext_bindings.ExtBindings()],
                functions=_k8s_functions(),
            )
            self._envs[(self_type, optional)] = env
        return env

    def compile(self, expression: str, self_type: str, *, optional_old_self: bool = False,
                result: str = "bool") -> CelProgram:
        source = expression
        if optional_old_self:
            source = ("cel.bind(oldSelf, __hasOld ? optional.of(__old) : optional.none(), "
                      f"{expression})")
        try:
            expr = self._env(self_type, optional_old_self).compile(source)
        except RuntimeError as err:
            raise CelCompileError("compilation failed: " + _clean(str(err))) from None
        ret = expr.return_type()
        want = _T.BOOL if result == "bool" else _T.STRING
        if not (ret == want or ret == _T.DYN):
            raise CelCompileError(f"cel expression must evaluate to a {result}")
        return _ExprProgram(expr, optional_old_self)


DEFAULT_ENGINE = CelExprEngine()


# --- compiling a schema's rules ----------------------------------------------------------------


@dataclass(slots=True)
class _Rule:
    source: dict[str, Any]
    program: CelProgram
    message_program: CelProgram | None
    transition: bool
    optional_old_self: bool
    field_suffix: str


@dataclass(slots=True)
class _RuleNode:
    schema_type: str
    rules: list[_Rule] = field(default_factory=list)
    properties: dict[str, _RuleNode] = field(default_factory=dict)
    additional: _RuleNode | None = None
    items: _RuleNode | None = None
    list_type: str = ""
    list_keys: list[str] = field(default_factory=list)


def rule_repr(rule: dict[str, Any]) -> str:
    """Go's `%#v` of an apiextensions.ValidationRule, as compile errors print it."""
    reason = "(*apiextensions.FieldValueErrorReason)(nil)"
    if rule.get("reason"):
        reason = f"(*apiextensions.FieldValueErrorReason)({fe.go_quote(rule['reason'])})"
    optional = "(*bool)(nil)"
    if "optionalOldSelf" in rule:
        optional = f"(*bool)({str(bool(rule['optionalOldSelf'])).lower()})"
    return (f"apiextensions.ValidationRule{{Rule:{fe.go_quote(rule.get('rule', ''))}, "
            f"Message:{fe.go_quote(rule.get('message', ''))}, "
            f"MessageExpression:{fe.go_quote(rule.get('messageExpression', ''))}, "
            f"Reason:{reason}, FieldPath:{fe.go_quote(rule.get('fieldPath', ''))}, "
            f"OptionalOldSelf:{optional}}}")


def _field_suffix(field_path: str) -> str | None:
    out = ""
    for m in re.finditer(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\['([^']*)'\]|\[(\d+)\]|(.)", field_path):
        name, quoted, idx, bad = m.groups()
        if bad is not None:
            return None
        out += f".{name}" if name else f".{quoted}" if quoted is not None else f"[{idx}]"
    return out


def _node_type(s: dict[str, Any]) -> str:
    if s.get("x-kubernetes-int-or-string") or s.get("x-kubernetes-preserve-unknown-fields") and \
            not s.get("type"):
        return ""
    return str(s.get("type", ""))


def _compile(s: dict[str, Any], path: str, engine: CelEngine,
             errors: list[StatusCause]) -> _RuleNode | None:
    node = _RuleNode(schema_type=_node_type(s), list_type=s.get("x-kubernetes-list-type") or "",
                     list_keys=list(s.get("x-kubernetes-list-map-keys") or []))
    for i, rule in enumerate(s.get("x-kubernetes-validations") or []):
        rpath = fe.index(fe.child(path, "x-kubernetes-validations"), i)
        compiled = _compile_rule(rule, node.schema_type, rpath, engine, errors)
        if compiled is not None:
            node.rules.append(compiled)
    for k, sub in sorted((s.get("properties") or {}).items()):
        c = _compile(sub, fe.key(fe.child(path, "properties"), k), engine, errors)
        if c is not None:
            node.properties[k] = c
    if isinstance(s.get("additionalProperties"), dict):
        node.additional = _compile(s["additionalProperties"],
                                   fe.child(path, "additionalProperties"), engine, errors)
    if isinstance(s.get("items"), dict):
        node.items = _compile(s["items"], fe.child(path, "items"), engine, errors)
    if node.rules or node.properties or node.additional or node.items:
        return node
    return None


def _compile_rule(rule: dict[str, Any], self_type: str, rpath: str, engine: CelEngine,
                  errors: list[StatusCause]) -> _Rule | None:
    source = rule.get("rule", "")
    if not source.strip():
        errors.append(fe.required(fe.child(rpath, "rule"), ""))
        return None
    reason = rule.get("reason")
    if reason is not None and reason not in _REASONS:
        errors.append(fe.not_supported(fe.child(rpath, "reason"), reason, _REASONS))
    suffix = _field_suffix(rule.get("fieldPath", "") or "")
    if suffix is None:
        errors.append(fe.invalid(fe.child(rpath, "fieldPath"), rule.get("fieldPath", ""),
                                 "must be a valid path"))
        suffix = ""
    optional = bool(rule.get("optionalOldSelf"))
    transition = bool(_OLD_SELF.search(source))
    if optional and not transition:
        errors.append(fe.invalid(fe.child(rpath, "optionalOldSelf"), True,
                                 "may not be set if oldSelf is not used in rule"))
    try:
        program = engine.compile(source, self_type, optional_old_self=optional)
    except CelCompileError as err:
        errors.append(fe.invalid(fe.child(rpath, "rule"), rule, "") | {
            "message": f"Invalid value: {rule_repr(rule)}: {err}"})
        return None
    message_program = None
    if rule.get("messageExpression"):
        try:
            message_program = engine.compile(rule["messageExpression"], self_type,
                                             optional_old_self=optional, result="string")
        except CelCompileError as err:
            errors.append({"reason": "FieldValueInvalid",
                           "field": fe.child(rpath, "messageExpression"),
                           "message": f"Invalid value: {rule_repr(rule)}: "
                                      f"messageExpression {err}"})
    return _Rule(rule, program, message_program, transition, optional, suffix)


class CompiledRules:
    """Every x-kubernetes-validations rule of one schema, compiled; `errors` are compile errors
    (paths relative to `path` given to `compile_rules`)."""

    def __init__(self, root: _RuleNode | None, errors: list[StatusCause]) -> None:
        self._root = root
        self.errors = errors

    @property
    def empty(self) -> bool:
        return self._root is None

    def validate(self, new: Any, old: Any = None) -> list[StatusCause]:
        out: list[StatusCause] = []
        if self._root is not None:
            root_new = _root_view(new)
            root_old = _root_view(old) if old is not None else None
            _eval(self._root, root_new, root_old, old is not None, "", out)
        return out


def compile_rules(schema: dict[str, Any], path: str = "spec.validation.openAPIV3Schema",
                  engine: CelEngine | None = None) -> CompiledRules:
    errors: list[StatusCause] = []
    root = _compile(schema, path, engine or DEFAULT_ENGINE, errors)
    return CompiledRules(root, errors)


def _root_view(obj: Any) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        meta = {k: obj["metadata"][k] for k in ("name", "generateName") if k in obj["metadata"]}
        return {**obj, "metadata": meta}
    return obj


def _eval(n: _RuleNode, v: Any, old: Any, has_old: bool, path: str,
          out: list[StatusCause]) -> None:
    for rule in n.rules:
        if rule.transition and not has_old and not rule.optional_old_self:
            continue
        variables: dict[str, Any] = {"self": v}
        if has_old:
            variables["oldSelf"] = old
        result, err = rule.program.evaluate(variables)
        target = path + rule.field_suffix if rule.field_suffix else path
        src = rule.source
        if err is not None:
            out.append(fe.invalid(path, n.schema_type,
                                  f"{err} evaluating rule: {_rule_error_string(src)}"))
        elif result is not True:
            out.append(_failure(rule, n.schema_type, target, variables))
    if isinstance(v, dict):
        for k, sub in n.properties.items():
            if k in v:
                sub_old = old.get(k) if has_old and isinstance(old, dict) else None
                sub_has = has_old and isinstance(old, dict) and k in old
                _eval(sub, v[k], sub_old, sub_has, fe.child(path, k), out)
        if n.additional is not None:
            for k in sorted(v):
                if k not in n.properties:
                    sub_has = has_old and isinstance(old, dict) and k in old
                    _eval(n.additional, v[k], old.get(k) if sub_has else None, sub_has,
                          fe.child(path, k), out)
    elif isinstance(v, list) and n.items is not None:
        for i, item in enumerate(v):
            old_item, item_has = _correlate(n, item, old if has_old else None)
            _eval(n.items, item, old_item, item_has, fe.index(path, i), out)


def _correlate(n: _RuleNode, item: Any, old: Any) -> tuple[Any, bool]:
    if not isinstance(old, list):
        return None, False
    if n.list_type == "set":
        return (item, True) if any(json_equal(item, o) for o in old) else (None, False)
    if n.list_type == "map" and n.list_keys and isinstance(item, dict):
        for o in old:
            if isinstance(o, dict) and all(
                    json_equal(o.get(k), item.get(k)) for k in n.list_keys):
                return o, True
    return None, False


def _rule_error_string(rule: dict[str, Any]) -> str:
    return str(rule.get("message") or rule.get("rule", "")).strip()


def _failure(rule: _Rule, schema_type: str, path: str, variables: dict[str, Any]) -> StatusCause:
    src = rule.source
    detail = ""
    if rule.message_program is not None:
        msg, err = rule.message_program.evaluate(variables)
        if err is None and isinstance(msg, str) and msg.strip() and "\n" not in msg:
            detail = msg
    if not detail:
        detail = (str(src["message"]).strip() if src.get("message")
                  else f"failed rule: {_rule_error_string(src)}")
    reason = src.get("reason") or "FieldValueInvalid"
    if reason == "FieldValueForbidden":
        return fe.forbidden(path, detail)
    if reason == "FieldValueRequired":
        return fe.required(path, detail)
    if reason == "FieldValueDuplicate":
        return fe.duplicate(path, schema_type)
    return fe.invalid(path, schema_type, detail)
