"""Pruning of unknown fields and structural defaulting."""

from __future__ import annotations

from typing import Any

from shipyard.apiserver.schema.defaulting import apply_defaults
from shipyard.apiserver.schema.pruning import prune, strict_error_message, unknown_field_warnings

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "properties": {
            "replicas": {"type": "integer", "default": 1},
            "strategy": {"type": "object", "default": {},
                         "properties": {"type": {"type": "string", "default": "Rolling"}}},
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "weight": {"type": "integer", "default": 5}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string",
                                                                    "default": "x"}},
            "note": {"type": "string", "nullable": True, "default": "n"},
            "plain": {"type": "string"},
            "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"known": {"type": "object",
                                             "properties": {"a": {"type": "string"}}}}},
            "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                         "properties": {"spec": {"type": "object"}}},
        }},
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def test_prune_reports_and_removes_unknown_fields() -> None:
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "bogus": 1},
           "spec": {"replias": 3, "items": [{"name": "a", "extra": True}],
                    "raw": {"anything": 1, "known": {"a": "b", "c": "d"}},
                    "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"x": 1},
                                 "spec": {}, "junk": 1},
                    "labels": {"k": "v"}},
           "top": 1}
    assert prune(obj, SCHEMA) == [
        "metadata.bogus", "spec.items[0].extra", "spec.raw.known.c", "spec.replias",
        "spec.template.junk", "spec.template.metadata.x", "top"]
    assert obj == {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
                   "spec": {"items": [{"name": "a"}], "raw": {"anything": 1,
                                                              "known": {"a": "b"}},
                            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {},
                                         "spec": {}},
                            "labels": {"k": "v"}}}


def test_prune_without_unknowns_reports_nothing() -> None:
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {}, "spec": {"replicas": 1}}
    assert prune(obj, SCHEMA) == []


def test_messages_for_field_validation() -> None:
    paths = ["spec.replias", "spec.x"]
    assert strict_error_message(paths) == (
        'strict decoding error: unknown field "spec.replias", unknown field "spec.x"')
    assert unknown_field_warnings(paths) == ['unknown field "spec.replias"',
                                             'unknown field "spec.x"']


def test_defaults_nest_inside_defaulted_objects() -> None:
    obj: dict[str, Any] = {"spec": {}}
    apply_defaults(obj, SCHEMA)
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["strategy"] == {"type": "Rolling"}
    assert obj["spec"]["note"] == "n"


def test_defaults_need_an_existing_parent() -> None:
    obj: dict[str, Any] = {}
    apply_defaults(obj, SCHEMA)
    assert obj == {}


def test_defaults_in_items_and_additional_properties() -> None:
    obj: dict[str, Any] = {"spec": {"items": [{"name": "a"}, {"weight": 2}],
                                    "labels": {"a": None, "b": "y"}}}
    apply_defaults(obj, SCHEMA)
    assert obj["spec"]["items"] == [{"name": "a", "weight": 5}, {"weight": 2}]
    assert obj["spec"]["labels"] == {"a": "x", "b": "y"}


def test_nulls_pruned_or_defaulted_unless_nullable() -> None:
    obj: dict[str, Any] = {"spec": {"replicas": None, "plain": None, "note": None}}
    apply_defaults(obj, SCHEMA)
    assert obj["spec"]["replicas"] == 1
    assert "plain" not in obj["spec"]
    assert obj["spec"]["note"] is None


def test_default_values_are_copies() -> None:
    a: dict[str, Any] = {"spec": {}}
    b: dict[str, Any] = {"spec": {}}
    apply_defaults(a, SCHEMA)
    apply_defaults(b, SCHEMA)
    a["spec"]["strategy"]["type"] = "changed"
    assert b["spec"]["strategy"]["type"] == "Rolling"
    assert SCHEMA["properties"]["spec"]["properties"]["strategy"]["default"] == {}
