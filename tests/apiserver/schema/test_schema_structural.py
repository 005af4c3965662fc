"""Structural schema checks and CRD object validation, with kube-apiserver's paths and messages."""

from __future__ import annotations

import copy
from typing import Any

from shipyard.apiserver.schema.crd import validate_crd
from shipyard.apiserver.schema.structural import check_structural

P = "spec.versions[0].schema.openAPIV3Schema"


def msgs(schema: dict[str, Any]) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in check_structural(schema, P)]


def test_structural_schema_passes() -> None:
    schema = {"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string",
                                                               "maxLength": 10}}},
        "spec": {"type": "object", "properties": {
            "port": {"x-kubernetes-int-or-string": True,
                     "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "raw": {"x-kubernetes-preserve-unknown-fields": True},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}}
    assert check_structural(schema, P) == []


def test_missing_type_on_field() -> None:
    assert msgs({"type": "object", "properties": {"spec": {"properties": {}}}}) == [
        f"{P}.properties[spec].type: Required value: must not be empty for specified object "
        "fields"]


def test_missing_type_at_root_and_items() -> None:
    assert msgs({"properties": {"l": {"type": "array", "items": {}}}}) == [
        f"{P}.properties[l].items.type: Required value: must not be empty for specified array "
        "items",
        f"{P}.type: Required value: must not be empty at the root",
    ]


def test_array_without_items() -> None:
    assert msgs({"type": "object", "properties": {"l": {"type": "array"}}}) == [
        f"{P}.properties[l].items: Required value: must be specified"]


def test_forbidden_openapi_constructs() -> None:
    schema = {"type": "object", "properties": {
        "a": {"$ref": "#/definitions/x", "type": "object"},
        "b": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
        "c": {"type": "object", "properties": {"x": {"type": "string"}},
              "additionalProperties": {"type": "string"}},
        "d": {"type": "object", "additionalProperties": False}}}
    out = msgs(schema)
    assert f"{P}.properties[a].$ref: Forbidden: $ref is not supported" in out
    assert (f"{P}.properties[b].uniqueItems: Forbidden: uniqueItems cannot be set to true since "
            "the runtime complexity becomes quadratic") in out
    assert (f"{P}.properties[c].additionalProperties: Forbidden: additionalProperties and "
            "properties are mutual exclusive") in out


def test_root_metadata_only_name_and_generate_name() -> None:
    schema = {"type": "object", "properties": {"metadata": {
        "type": "object", "properties": {"labels": {"type": "object"}}}}}
    assert msgs(schema) == [
        f"{P}.properties[metadata]: Forbidden: must not specify anything other than name and "
        "generateName, but metadata is implicitly specified"]


def test_value_validation_must_not_carry_types() -> None:
    schema = {"type": "object", "properties": {"x": {
        "type": "string", "allOf": [{"type": "string", "description": "d"}]}}}
    assert msgs(schema) == [
        f"{P}.properties[x].allOf[0].description: Forbidden: must be empty to be structural",
        f"{P}.properties[x].allOf[0].type: Forbidden: must be empty to be structural",
    ]


def test_list_map_keys_need_default_or_required() -> None:
    schema = {"type": "object", "properties": {"l": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
        "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}}
    assert msgs(schema) == [
        f"{P}.properties[l].items.properties[k].default: Required value: this property is in "
        "x-kubernetes-list-map-keys, so it must have a default or be a required property"]


def test_embedded_resource_must_be_object() -> None:
    schema = {"type": "object", "properties": {"t": {
        "type": "string", "x-kubernetes-embedded-resource": True}}}
    assert (f'{P}.properties[t].type: Invalid value: "string": must be object if '
            "x-kubernetes-embedded-resource is true") in msgs(schema)


CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "listKind": "WidgetList"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"size": {"type": "integer"}},
                         "x-kubernetes-validations": [{"rule": "self.size > 0"}]}}}},
            "additionalPrinterColumns": [{"name": "Size", "type": "integer",
                                          "jsonPath": ".spec.size"}],
            "selectableFields": [{"jsonPath": ".spec.size"}],
        }],
    },
}


def crd_msgs(crd: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in validate_crd(crd, old)]


def test_valid_crd() -> None:
    assert validate_crd(CRD) == []


def test_crd_name_must_be_plural_dot_group() -> None:
    crd = copy.deepcopy(CRD)
    crd["metadata"]["name"] = "gadgets.example.com"
    assert crd_msgs(crd) == [
        'metadata.name: Invalid value: "gadgets.example.com": must be '
        'spec.names.plural+"."+spec.group']


def test_crd_scope_and_storage() -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["scope"] = "Global"
    crd["spec"]["versions"][0]["storage"] = False
    out = crd_msgs(crd)
    assert 'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"' \
        in out
    assert any(m.startswith("spec.versions: Invalid value") and m.endswith(
        "must have exactly one version marked as storage version") for m in out)


def test_crd_version_name_and_schema_errors_use_the_shared_schema_path() -> None:
    crd = copy.deepcopy(CRD)
    v = crd["spec"]["versions"][0]
    v["name"] = "V1"
    v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"] = {}
    out = crd_msgs(crd)
    assert out[0].startswith('spec.versions[0].name: Invalid value: "V1": a DNS-1035 label')
    assert ("spec.validation.openAPIV3Schema.properties[spec].properties[size].type: Required "
            "value: must not be empty for specified object fields") in out


def test_crd_rule_compile_error() -> None:
    crd = copy.deepcopy(CRD)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["x-kubernetes-validations"] = [{"rule": "self.size >"}]
    [cause] = validate_crd(crd)
    assert cause["field"] == ("spec.validation.openAPIV3Schema.properties[spec]."
                              "x-kubernetes-validations[0].rule")
    assert cause["message"].startswith(
        'Invalid value: apiextensions.ValidationRule{Rule:"self.size >", Message:"", '
        'MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), '
        'FieldPath:"", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:12:')


def test_crd_printer_column_and_conversion() -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "X", "type": "float", "jsonPath": "spec.size"}]
    crd["spec"]["conversion"] = {"strategy": "Magic"}
    out = crd_msgs(crd)
    assert ('spec.versions[0].additionalPrinterColumns[0].type: Unsupported value: "float": '
            'supported values: "boolean", "date", "integer", "number", "string"') in out
    assert ('spec.versions[0].additionalPrinterColumns[0].JSONPath: Invalid value: "spec.size": '
            "must be a simple json path starting with .") in out
    assert ('spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", '
            '"Webhook"') in out


def test_crd_group_and_plural_are_immutable() -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["group"] = "other.com"
    crd["metadata"]["name"] = "widgets.other.com"
    assert crd_msgs(crd, CRD) == ['spec.group: Invalid value: "other.com": field is immutable']


def test_selectable_field_must_exist_and_be_scalar() -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.nope"},
                                                      {"jsonPath": ".spec"}]
    out = crd_msgs(crd)
    assert out[0] == ('spec.versions[0].selectableFields[0].jsonPath: Invalid value: '
                      '".spec.nope": is an invalid path: does not refer to a valid field')
    assert out[1].startswith('spec.versions[0].selectableFields[1].jsonPath: Invalid value: '
                             '"object": must point to a field of type string')
