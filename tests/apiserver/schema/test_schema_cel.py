"""x-kubernetes-validations rules: messages, reasons, fieldPath, transition rules, libraries."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.apiserver.schema.cel import CelExprEngine, compile_rules


def spec_schema(rules: list[dict[str, Any]], **props: Any) -> dict[str, Any]:
    properties = {"replicas": {"type": "integer"}, "name": {"type": "string"},
                  "items": {"type": "array", "items": {"type": "integer"}}}
    properties.update(props)
    return {"type": "object", "properties": {"spec": {
        "type": "object", "properties": properties, "x-kubernetes-validations": rules}}}


def run(rules: list[dict[str, Any]], new: Any, old: Any = None, **props: Any) -> list[Any]:
    compiled = compile_rules(spec_schema(rules, **props))
    assert compiled.errors == []
    return [(c["field"], c["reason"], c["message"]) for c in compiled.validate(new, old)]


def test_passing_rule() -> None:
    assert run([{"rule": "self.replicas >= 0"}], {"spec": {"replicas": 1}}) == []


def test_default_message() -> None:
    assert run([{"rule": "self.replicas >= 0"}], {"spec": {"replicas": -1}}) == [
        ("spec", "FieldValueInvalid", 'Invalid value: "object": failed rule: self.replicas >= 0')]


def test_message_reason_and_field_path() -> None:
    rules = [{"rule": "self.replicas >= 0", "message": "replicas must not be negative",
              "reason": "FieldValueForbidden", "fieldPath": ".replicas"}]
    assert run(rules, {"spec": {"replicas": -1}}) == [
        ("spec.replicas", "FieldValueForbidden", "Forbidden: replicas must not be negative")]


def test_required_and_duplicate_reasons() -> None:
    assert run([{"rule": "has(self.name)", "reason": "FieldValueRequired",
                 "message": "name is required"}], {"spec": {}}) == [
        ("spec", "FieldValueRequired", "Required value: name is required")]
    assert run([{"rule": "false", "reason": "FieldValueDuplicate"}], {"spec": {}}) == [
        ("spec", "FieldValueDuplicate", 'Duplicate value: "object"')]


def test_message_expression() -> None:
    rules = [{"rule": "self.replicas < 5", "message": "fallback",
              "messageExpression": "'too many: ' + string(self.replicas)"}]
    assert run(rules, {"spec": {"replicas": 7}}) == [
        ("spec", "FieldValueInvalid", 'Invalid value: "object": too many: 7')]


def test_message_expression_falls_back_on_empty_result() -> None:
    rules = [{"rule": "false", "message": "fallback", "messageExpression": "''"}]
    assert run(rules, {"spec": {}})[0][2] == 'Invalid value: "object": fallback'


def test_evaluation_error() -> None:
    assert run([{"rule": "self.replicas > 0"}], {"spec": {}}) == [
        ("spec", "FieldValueInvalid",
         'Invalid value: "object": no such key: replicas evaluating rule: self.replicas > 0')]


def test_scalar_rules_see_typed_self() -> None:
    rules: list[dict[str, Any]] = []
    name = {"type": "string", "x-kubernetes-validations": [
        {"rule": "self.lowerAscii() == self", "message": "must be lower case"}]}
    assert run(rules, {"spec": {"name": "Abc"}}, name=name) == [
        ("spec.name", "FieldValueInvalid", 'Invalid value: "string": must be lower case')]


def test_scalar_type_errors_are_compile_errors() -> None:
    schema = spec_schema([], name={"type": "string",
                                   "x-kubernetes-validations": [{"rule": "self > 1"}]})
    [err] = compile_rules(schema).errors
    assert err["field"] == ("spec.validation.openAPIV3Schema.properties[spec].properties[name]."
                            "x-kubernetes-validations[0].rule")
    assert "compilation failed: ERROR: <input>:1:6: found no matching overload for '_>_'" in \
        err["message"]


def test_non_bool_rule_is_refused() -> None:
    [err] = compile_rules(spec_schema([{"rule": "'x'"}])).errors
    assert err["message"].endswith(": cel expression must evaluate to a bool")


def test_transition_rule_skipped_on_create() -> None:
    rule = [{"rule": "self.replicas >= oldSelf.replicas", "message": "may not scale down"}]
    assert run(rule, {"spec": {"replicas": 1}}) == []
    assert run(rule, {"spec": {"replicas": 1}}, {"spec": {"replicas": 3}}) == [
        ("spec", "FieldValueInvalid", 'Invalid value: "object": may not scale down')]
    assert run(rule, {"spec": {"replicas": 3}}, {"spec": {"replicas": 1}}) == []


def test_transition_rule_skipped_when_old_value_absent() -> None:
    name = {"type": "string", "x-kubernetes-validations": [
        {"rule": "self == oldSelf", "message": "name is immutable"}]}
    assert run([], {"spec": {"name": "a"}}, {"spec": {}}, name=name) == []
    assert run([], {"spec": {"name": "a"}}, {"spec": {"name": "b"}}, name=name) == [
        ("spec.name", "FieldValueInvalid", 'Invalid value: "string": name is immutable')]


def test_optional_old_self_runs_on_create() -> None:
    rule = [{"rule": "!oldSelf.hasValue() || self.replicas == oldSelf.value().replicas",
             "optionalOldSelf": True, "message": "replicas are fixed"}]
    assert run(rule, {"spec": {"replicas": 1}}) == []
    assert run(rule, {"spec": {"replicas": 1}}, {"spec": {"replicas": 2}}) == [
        ("spec", "FieldValueInvalid", 'Invalid value: "object": replicas are fixed')]
    rule = [{"rule": "oldSelf.hasValue()", "optionalOldSelf": True, "message": "no old"}]
    assert run(rule, {"spec": {}}) == [("spec", "FieldValueInvalid",
                                        'Invalid value: "object": no old')]


def test_old_values_correlate_by_list_map_keys_only() -> None:
    item_rule = {"type": "object", "properties": {"name": {"type": "string"},
                                                  "port": {"type": "integer"}},
                 "required": ["name"],
                 "x-kubernetes-validations": [{"rule": "self.port == oldSelf.port",
                                               "message": "port is immutable"}]}
    as_map = {"type": "array", "x-kubernetes-list-type": "map",
              "x-kubernetes-list-map-keys": ["name"], "items": item_rule}
    atomic = {"type": "array", "items": item_rule}
    new = {"spec": {"ports": [{"name": "b", "port": 2}, {"name": "a", "port": 9}]}}
    old = {"spec": {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}}
    assert run([], new, old, ports=as_map) == [
        ("spec.ports[1]", "FieldValueInvalid", 'Invalid value: "object": port is immutable')]
    assert run([], new, old, ports=atomic) == []


@pytest.mark.parametrize(("rule", "ok"), [
    ("self.items.isSorted()", True),
    ("self.items.sum() == 6", True),
    ("self.items.min() == 1 && self.items.max() == 3", True),
    ("self.name.split('-').size() == 2", True),
    ("self.name.upperAscii() == 'A-B'", True),
    ("['x', 'y'].join('/') == 'x/y'", True),
    ("self.name.find('[a-z]') == 'a'", True),
    ("math.greatest(self.items) == 3", True),
    ("[3, 1].isSorted()", False),
])
def test_library_functions(rule: str, ok: bool) -> None:
    out = run([{"rule": rule}], {"spec": {"items": [1, 2, 3], "name": "a-b"}})
    assert (out == []) is ok


def test_root_rules_see_only_name_and_generate_name_in_metadata() -> None:
    schema = {"type": "object", "x-kubernetes-validations": [
        {"rule": "self.metadata.name.startsWith('a') && !has(self.metadata.labels)"}]}
    rules = compile_rules(schema)
    assert rules.validate({"metadata": {"name": "abc", "labels": {"x": "y"}}}) == []


def test_engine_is_replaceable() -> None:
    rules = compile_rules(spec_schema([{"rule": "self.replicas == 1"}]), engine=CelExprEngine())
    assert rules.validate({"spec": {"replicas": 1}}) == []
