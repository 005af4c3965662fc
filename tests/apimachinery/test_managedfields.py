"""Field ownership and server-side apply, as structured-merge-diff defines them."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.apimachinery import errors
from shipyard.apimachinery.fieldpath import (
    from_fields_v1,
    path_string,
    schema_field_set,
    to_fields_v1,
)
from shipyard.apimachinery.managedfields import (
    Scope,
    apply,
    decode_managers,
    encode_managers,
    record_update,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "replicas": {"type": "integer"},
                "color": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"},
                         "x-kubernetes-list-type": "set"},
                "args": {"type": "array", "items": {"type": "string"}},
                "ports": {
                    "type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "port": {"type": "integer"}}},
                },
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                             "additionalProperties": {"type": "string"}},
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}
SCOPE = Scope(SCHEMA, "", status_separate=True)


def obj(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "ex.com/v1", "kind": "W", "metadata": {"name": "w"}, "spec": spec}


def test_field_set_follows_the_schema() -> None:
    members, leaves = SCOPE.field_set(
        obj(replicas=1, tags=["a"], args=["x"], ports=[{"name": "http", "port": 80}],
            selector={"a": "b"}),
    )
    rendered = sorted(path_string(p) for p in members)
    assert rendered == [  # identity fields (apiVersion, kind, name) are nobody's
        ".spec.args",
        '.spec.ports[name="http"]', '.spec.ports[name="http"].name',
        '.spec.ports[name="http"].port', ".spec.replicas", ".spec.selector",
        '.spec.tags[="a"]',
    ]
    assert ("f:spec", "f:selector") in leaves  # atomic map: one leaf


def test_fields_v1_round_trip_marks_members_with_children() -> None:
    members, _ = schema_field_set(obj(ports=[{"name": "http", "port": 80}]), SCHEMA)
    encoded = to_fields_v1(members)
    item = encoded["f:spec"]["f:ports"]['k:{"name":"http"}']
    assert item == {".": {}, "f:name": {}, "f:port": {}}
    assert from_fields_v1(encoded) == members


def test_update_gives_changed_fields_to_the_updater_and_takes_them_from_others() -> None:
    managers = record_update(SCOPE, None, obj(replicas=1, color="red"), [], "creator", "ex/v1")
    managers = record_update(SCOPE, obj(replicas=1, color="red"), obj(replicas=2, color="red"),
                             managers, "scaler", "ex/v1")
    owners = {m.manager: sorted(path_string(p) for p in m.fields) for m in managers}
    # The creator also owns the spec struct it added (kube's "." under f:spec).
    assert owners == {"creator": [".spec", ".spec.color"], "scaler": [".spec.replicas"]}
    assert all(m.operation == "Update" for m in managers)


def test_apply_conflicts_with_another_managers_field_unless_forced() -> None:
    managers = record_update(SCOPE, None, obj(replicas=1), [], "other", "ex/v1")
    with pytest.raises(errors.Conflict) as caught:
        apply(SCOPE, obj(replicas=1), obj(replicas=3), managers, "kubectl", "ex/v1", False)
    err = caught.value
    assert err.message == (
        'Apply failed with 1 conflict: conflict with "other" using ex/v1: .spec.replicas'
    )
    assert err.causes == [{"reason": "FieldManagerConflict",
                           "message": 'conflict with "other" using ex/v1',
                           "field": ".spec.replicas"}]
    merged, managers = apply(SCOPE, obj(replicas=1), obj(replicas=3), managers, "kubectl",
                             "ex/v1", True)
    assert merged["spec"]["replicas"] == 3
    # "other" loses .spec.replicas but keeps the spec struct it created.
    owners = {m.manager: sorted(path_string(p) for p in m.fields) for m in managers}
    assert owners == {"other": [".spec"], "kubectl": [".spec.replicas"]}


def test_applying_the_same_value_shares_ownership_without_conflict() -> None:
    managers = record_update(SCOPE, None, obj(replicas=1), [], "other", "ex/v1")
    _, managers = apply(SCOPE, obj(replicas=1), obj(replicas=1), managers, "kubectl", "ex/v1",
                        False)
    assert {m.manager for m in managers} == {"other", "kubectl"}


def test_apply_merges_lists_by_their_type_and_prunes_what_it_stopped_applying() -> None:
    live = obj(tags=["a"], args=["x"], ports=[{"name": "http", "port": 80}], color="red")
    managers = record_update(SCOPE, None, live, [], "creator", "ex/v1")
    config = obj(tags=["b"], args=["y"], ports=[{"name": "grpc", "port": 90}], replicas=2)
    merged, managers = apply(SCOPE, live, config, managers, "kubectl", "ex/v1", True)
    spec = merged["spec"]
    assert spec["tags"] == ["a", "b"]  # set: union
    assert spec["args"] == ["y"]  # atomic: replaced
    assert [p["name"] for p in spec["ports"]] == ["http", "grpc"]  # map: merged by key
    assert spec["color"] == "red"
    # kubectl stops applying replicas: nobody else owns it, so it goes.
    merged, managers = apply(SCOPE, merged, obj(tags=["b"], args=["y"],
                                                ports=[{"name": "grpc", "port": 90}]),
                             managers, "kubectl", "ex/v1", False)
    assert "replicas" not in merged["spec"]
    assert merged["spec"]["color"] == "red"


def test_status_is_not_owned_through_the_main_resource() -> None:
    live = {**obj(replicas=1), "status": {"ready": True}}
    managers = record_update(SCOPE, None, live, [], "m", "ex/v1")
    assert not any(p[0] == "f:status" for m in managers for p in m.fields)
    status_scope = Scope(SCHEMA, "status", status_separate=True)
    managers = record_update(status_scope, live, {**live, "status": {"ready": False}},
                             managers, "kubelet", "ex/v1")
    kubelet = next(m for m in managers if m.manager == "kubelet")
    assert kubelet.subresource == "status"
    assert kubelet.fields == {("f:status", "f:ready")}


def test_managed_fields_encode_and_decode() -> None:
    managers = record_update(SCOPE, None, obj(replicas=1), [], "m", "ex/v1")
    entries = encode_managers(managers)
    assert entries[0]["fieldsV1"] == {"f:spec": {".": {}, "f:replicas": {}}}
    assert entries[0]["operation"] == "Update" and entries[0]["fieldsType"] == "FieldsV1"
    assert decode_managers(entries)[0].fields == managers[0].fields
    with pytest.raises(errors.Invalid):
        decode_managers([{"operation": "Sideways"}])
