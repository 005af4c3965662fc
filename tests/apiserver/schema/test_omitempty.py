"""omit_empty: the maps and lists kube's typed decoding drops when empty, and what it keeps."""

from __future__ import annotations

from typing import Any

from shipyard.apiserver.builtinschema import list_schema, map_schema, obj_schema
from shipyard.apiserver.schema.omitempty import omit_empty, omit_empty_metadata

STR = {"type": "string"}
OPEN = {"x-kubernetes-preserve-unknown-fields": True}
SCHEMA = obj_schema({
    "data": map_schema(STR),
    "items": list_schema(obj_schema({"name": STR, "tags": list_schema(STR)})),
    "byName": map_schema(obj_schema({"ports": list_schema(STR)})),
    "needed": list_schema(STR),
    "context": obj_schema({"user": STR}),
    "open": OPEN,
    "partly": {**obj_schema({"args": list_schema(STR)}), **OPEN},
}, required=("needed",))


def test_empty_maps_and_lists_go_at_every_depth() -> None:
    obj: dict[str, Any] = {"data": {}, "items": [{"name": "a", "tags": []}],
                           "byName": {"x": {"ports": []}}}
    omit_empty(obj, SCHEMA)
    assert obj == {"items": [{"name": "a"}], "byName": {"x": {}}}


def test_required_lists_structs_and_open_fields_stay() -> None:
    obj: dict[str, Any] = {"needed": [], "context": {}, "open": {"x": [], "y": {}},
                           "partly": {"args": [], "env": []}, "unknown": []}
    omit_empty(obj, SCHEMA)
    assert obj == {"needed": [], "context": {}, "open": {"x": [], "y": {}},
                   "partly": {"env": []}, "unknown": []}


def test_non_empty_values_and_a_missing_schema_are_left_alone() -> None:
    obj: dict[str, Any] = {"data": {"k": ""}, "items": [{"tags": [""]}]}
    omit_empty(obj, SCHEMA)
    assert obj == {"data": {"k": ""}, "items": [{"tags": [""]}]}
    untouched: dict[str, Any] = {"data": {}}
    omit_empty(untouched, None)
    assert untouched == {"data": {}}


def test_object_meta_loses_its_empty_maps_and_lists() -> None:
    meta: dict[str, Any] = {"name": "a", "labels": {}, "annotations": {}, "finalizers": [],
                            "ownerReferences": [], "managedFields": []}
    omit_empty_metadata(meta)
    assert meta == {"name": "a", "managedFields": []}
    omit_empty_metadata(None)  # no metadata at all: nothing to do
