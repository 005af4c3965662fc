"""Schema validation: kube-apiserver's paths, reasons and messages, and fast-path agreement."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.apiserver.schema.validation import SchemaValidator

SPEC: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "replicas": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10},
                "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0,
                          "multipleOf": 0.5},
                "name": {"type": "string", "maxLength": 5, "minLength": 2,
                         "pattern": "^[a-z]+$"},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "level": {"type": "integer", "enum": [1, 2]},
                "when": {"type": "string", "format": "date-time"},
                "port": {"x-kubernetes-int-or-string": True},
                "note": {"type": "string", "nullable": True},
                "flag": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                         "maxItems": 2},
                "set": {"type": "array", "x-kubernetes-list-type": "set",
                        "items": {"type": "string"}},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "required": ["name"],
                                    "properties": {"name": {"type": "string"},
                                                   "port": {"type": "integer"}}}},
                "labels": {"type": "object", "maxProperties": 2,
                           "additionalProperties": {"type": "string"}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True},
                "any": {"x-kubernetes-preserve-unknown-fields": True},
            },
        },
    },
}


@pytest.fixture(scope="module")
def validator() -> SchemaValidator:
    return SchemaValidator(SPEC)


def causes(v: SchemaValidator, spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["field"], c["reason"], c["message"]) for c in v.validate({"spec": spec})]


def test_valid_object_has_no_causes(validator: SchemaValidator) -> None:
    obj = {"name": "abc", "replicas": 3, "ratio": 1.5, "port": "http", "note": None,
           "tags": ["x"], "labels": {"a": "b"}, "any": {"x": [1, None]},
           "template": {"apiVersion": "v1", "kind": "Pod", "spec": {}},
           "when": "2024-01-02T03:04:05Z"}
    assert validator.validate({"spec": obj}) == []


def test_type_error_message(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "replicas": "3"}) == [(
        "spec.replicas", "FieldValueTypeInvalid",
        'Invalid value: "string": spec.replicas in body must be of type integer: "string"')]


def test_integral_float_is_an_integer(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "replicas": 3.0}) == []


def test_bool_is_not_an_integer(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "level": True})[0][2] == (
        'Invalid value: "boolean": spec.level in body must be of type integer: "boolean"')


def test_required(validator: SchemaValidator) -> None:
    assert causes(validator, {}) == [("spec.name", "FieldValueRequired", "Required value")]


def test_enum_strings_and_numbers(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "mode": "x", "level": 3}) == [
        ("spec.level", "FieldValueNotSupported",
         'Unsupported value: 3: supported values: "1", "2"'),
        ("spec.mode", "FieldValueNotSupported",
         'Unsupported value: "x": supported values: "a", "b"'),
    ]


def test_string_limits(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ABCDEFG"}) == [
        ("spec.name", "FieldValueTooLong", "Too long: may not be more than 5 bytes"),
        ("spec.name", "FieldValueInvalid",
         "Invalid value: \"ABCDEFG\": spec.name in body should match '^[a-z]+$'"),
    ]
    assert causes(validator, {"name": "a"}) == [
        ("spec.name", "FieldValueInvalid",
         'Invalid value: "a": spec.name in body should be at least 2 chars long')]


def test_number_limits(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "replicas": 0, "ratio": 0}) == [
        ("spec.ratio", "FieldValueInvalid",
         "Invalid value: 0: spec.ratio in body should be greater than 0"),
        ("spec.replicas", "FieldValueInvalid",
         "Invalid value: 0: spec.replicas in body should be greater than or equal to 1"),
    ]
    assert causes(validator, {"name": "ab", "replicas": 11, "ratio": 0.7})[0][2] == (
        "Invalid value: 0.7: spec.ratio in body should be a multiple of 0.5")


def test_array_limits_and_item_paths(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "tags": []}) == [
        ("spec.tags", "FieldValueInvalid",
         "Invalid value: 0: spec.tags in body should have at least 1 items")]
    assert causes(validator, {"name": "ab", "tags": ["a", 1, "c"]}) == [
        ("spec.tags[1]", "FieldValueTypeInvalid",
         'Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"'),
        ("spec.tags", "FieldValueTooMany", "Too many: 3: must have at most 2 items"),
    ]


def test_nullable(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "note": None}) == []
    assert causes(validator, {"name": "ab", "flag": None}) == [
        ("spec.flag", "FieldValueTypeInvalid",
         'Invalid value: "null": spec.flag in body must be of type boolean: "null"')]


def test_int_or_string(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "port": 80}) == []
    assert causes(validator, {"name": "ab", "port": [80]}) == [
        ("spec.port", "FieldValueTypeInvalid",
         'Invalid value: "array": spec.port in body must be of type integer,string: "array"')]


def test_format(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "when": "yesterday"}) == [
        ("spec.when", "FieldValueTypeInvalid",
         'Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"')]


def test_additional_properties_and_max_properties(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "labels": {"a": 1}}) == [
        ("spec.labels.a", "FieldValueTypeInvalid",
         'Invalid value: "integer": spec.labels.a in body must be of type string: "integer"')]
    assert causes(validator, {"name": "ab", "labels": {"a": "1", "b": "2", "c": "3"}}) == [
        ("spec.labels", "FieldValueTooMany", "Too many: 3: must have at most 2 items")]


def test_list_type_set_and_map_duplicates(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "set": ["a", "b", "a"]}) == [
        ("spec.set[2]", "FieldValueDuplicate", 'Duplicate value: "a"')]
    ports = [{"name": "http", "port": 80}, {"name": "http", "port": 81}]
    assert causes(validator, {"name": "ab", "ports": ports}) == [
        ("spec.ports[1]", "FieldValueDuplicate",
         'Duplicate value: map[string]interface {}{"name":"http"}')]


def test_embedded_resource_needs_api_version_and_kind(validator: SchemaValidator) -> None:
    assert causes(validator, {"name": "ab", "template": {"kind": "not a kind"}}) == [
        ("spec.template.apiVersion", "FieldValueRequired", "Required value: must not be empty"),
        ("spec.template.kind", "FieldValueInvalid",
         'Invalid value: "not a kind": may have mixed case, but should otherwise match: '
         "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
         "with an alphabetic character, and end with an alphanumeric character (e.g. "
         "'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"),
    ]


def test_every_error_is_reported(validator: SchemaValidator) -> None:
    spec = {"replicas": "x", "mode": "z", "flag": "yes", "tags": "no"}
    fields = [c["field"] for c in validator.validate({"spec": spec})]
    assert fields == ["spec.flag", "spec.mode", "spec.replicas", "spec.tags", "spec.name"]


def test_junctors_report_without_field() -> None:
    v = SchemaValidator({"type": "object", "properties": {"x": {
        "type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]}}})
    assert v.validate({"x": "ab"}) == []
    assert [(c["field"], c["message"]) for c in v.validate({"x": "c"})] == [
        ("", 'Invalid value: "": "x" must validate at least one schema (anyOf)')]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-20, 20) | st.floats(-20, 20, allow_nan=False)
    | st.sampled_from(["a", "ab", "abcdefg", "A1", "2024-01-02T03:04:05Z", "http", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "replicas", "ratio", "mode", "level", "port", "note", "flag",
                         "tags", "set", "labels", "when", "any", "x"]), inner, max_size=5),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(spec=JSON)
def test_fast_path_agrees_with_the_walk(validator: SchemaValidator, spec: Any) -> None:
    """jsonschema-rs says valid exactly when the kube-style walk finds nothing."""
    from shipyard.apiserver.schema.validation import _Node, _walk

    walk: list[Any] = []
    _walk(_Node(SPEC), {"spec": spec}, "", walk)
    assert validator._fast.is_valid({"spec": spec}) == (not walk)
