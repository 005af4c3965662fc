"""Strategic merge patch on ConfigMap, Secret and Namespace ($patch, $setElementOrder,
$retainKeys, $deleteFromPrimitiveList), JSON patch test failures, finalizers and garbage
collection, on both servers."""

from __future__ import annotations

from typing import Any

from tests.differential.conftest import answer, normalised, ok
from tests.integration.live import wait_for
from tests.kube import Client

SMP = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def cms(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def make(api: Client, ns: str, name: str, **extra: Any) -> dict[str, Any]:
    return ok(api.post(cms(ns), {"metadata": {"name": name, **extra.pop("meta", {})},
                                 **extra}), 201)


def test_smp_merges_maps_and_deletes_with_null(api: Client, ns: str) -> None:
    make(api, ns, "a", data={"x": "1", "y": "2"}, meta={"labels": {"l": "1"}})
    got = ok(api.patch(cms(ns, "a"), {"data": {"y": None, "z": "3"},
                                      "metadata": {"labels": {"m": "2"}}}, content_type=SMP))
    assert got["data"] == {"x": "1", "z": "3"}
    assert got["metadata"]["labels"] == {"l": "1", "m": "2"}


def test_smp_patch_replace_directive(api: Client, ns: str) -> None:
    make(api, ns, "a", data={"x": "1", "y": "2"})
    got = ok(api.patch(cms(ns, "a"), {"data": {"$patch": "replace", "n": "1"}},
                       content_type=SMP))
    assert got["data"] == {"n": "1"}


def test_smp_patch_delete_directive(api: Client, ns: str) -> None:
    make(api, ns, "a", data={"x": "1", "y": "2"})
    got = ok(api.patch(cms(ns, "a"), {"data": {"$patch": "delete"}}, content_type=SMP))
    assert "data" not in got


def test_smp_finalizers_are_merged_and_deleted_from_primitive_list(api: Client, ns: str) -> None:
    make(api, ns, "a", meta={"finalizers": ["a.io/x", "a.io/y"]})
    got = ok(api.patch(cms(ns, "a"), {"metadata": {"finalizers": ["a.io/z"]}},
                       content_type=SMP))
    assert got["metadata"]["finalizers"] == ["a.io/z", "a.io/x", "a.io/y"]
    got = ok(api.patch(cms(ns, "a"), {"metadata": {
        "$deleteFromPrimitiveList/finalizers": ["a.io/x", "a.io/z"]}}, content_type=SMP))
    assert got["metadata"]["finalizers"] == ["a.io/y"]
    got = ok(api.patch(cms(ns, "a"), {"metadata": {
        "$setElementOrder/finalizers": ["a.io/w", "a.io/y"], "finalizers": ["a.io/w"]}},
        content_type=SMP))
    assert got["metadata"]["finalizers"] == ["a.io/w", "a.io/y"]
    ok(api.patch(cms(ns, "a"), {"metadata": {"finalizers": None}}, content_type=SMP))


def test_smp_owner_references_merge_by_uid(api: Client, ns: str) -> None:
    owner = make(api, ns, "owner")
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
           "uid": owner["metadata"]["uid"]}
    make(api, ns, "a", meta={"ownerReferences": [ref]})
    got = ok(api.patch(cms(ns, "a"), {"metadata": {"ownerReferences": [
        {**ref, "controller": True}]}}, content_type=SMP))
    assert normalised(got)["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "<uid>",
         "controller": True}]


def test_smp_on_secret_and_namespace(api: Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/secrets"
    ok(api.post(path, {"metadata": {"name": "s"}, "data": {"a": "YQ=="}}), 201)
    got = ok(api.patch(f"{path}/s", {"stringData": {"b": "b"}, "data": {"a": None}},
                       content_type=SMP))
    assert got["data"] == {"b": "Yg=="} and "stringData" not in got
    got = ok(api.patch(f"/api/v1/namespaces/{ns}", {"metadata": {"labels": {"t": "1"}}},
                       content_type=SMP))
    assert got["metadata"]["labels"] == {"kubernetes.io/metadata.name": ns, "t": "1"}
    assert got["spec"] == {"finalizers": ["kubernetes"]} and got["status"] == {"phase": "Active"}


def test_failed_json_patch_test_is_invalid(api: Client, ns: str) -> None:
    make(api, ns, "a")
    got = answer(api.patch(cms(ns, "a"), [{"op": "test", "path": "/data", "value": {"q": "1"}}],
                           content_type=JSON_PATCH))
    assert (got["code"], got["reason"]) == (422, "Invalid")


def test_smp_unknown_directive(api: Client, ns: str) -> None:
    make(api, ns, "a", data={"x": "1"})
    assert answer(api.patch(cms(ns, "a"), {"data": {"$patch": "explode"}},
                            content_type=SMP)) == {
        "code": 500, "status": "Failure", "reason": "",
        "message": "unknown patch type: explode in map: map[$patch:explode]"}


def test_finalizers_hold_deletion(api: Client, ns: str) -> None:
    make(api, ns, "a", meta={"finalizers": ["example.com/hold"]})
    held = ok(api.delete(cms(ns, "a")))
    assert held["kind"] == "ConfigMap" and "deletionTimestamp" in held["metadata"]
    again = ok(api.delete(cms(ns, "a")))
    assert again["metadata"]["deletionTimestamp"] == held["metadata"]["deletionTimestamp"]
    refused = answer(api.patch(cms(ns, "a"), {"metadata": {"finalizers": ["example.com/x",
                                                                          "example.com/hold"]}}))
    # kube reports the cause twice (both update validations run); compare it once.
    refused["details"]["causes"] = [c for i, c in enumerate(refused["details"]["causes"])
                                    if c not in refused["details"]["causes"][:i]]
    assert refused == {
        "code": 422, "status": "Failure", "reason": "Invalid",
        "message": 'ConfigMap "a" is invalid: metadata.finalizers: Forbidden: no new finalizers '
                   "can be added if the object is being deleted, found new finalizers "
                   '[]string{"example.com/x"}',
        "details": {"name": "a", "kind": "ConfigMap", "causes": [{
            "reason": "FieldValueForbidden",
            "message": "Forbidden: no new finalizers can be added if the object is being "
                       'deleted, found new finalizers []string{"example.com/x"}',
            "field": "metadata.finalizers"}]}}
    last = ok(api.patch(cms(ns, "a"), {"metadata": {"finalizers": None}}))
    assert last["metadata"]["name"] == "a"
    assert api.get(cms(ns, "a")).status == 404


def test_garbage_collection_background_and_orphan(api: Client, ns: str) -> None:
    owner = make(api, ns, "owner")
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
           "uid": owner["metadata"]["uid"]}
    make(api, ns, "dep", meta={"ownerReferences": [ref]})
    ok(api.delete(cms(ns, "owner")))
    wait_for(lambda: api.get(cms(ns, "dep")).status == 404, 30, "the dependent collected")

    owner = make(api, ns, "owner2")
    ref = {**ref, "name": "owner2", "uid": owner["metadata"]["uid"]}
    make(api, ns, "kept", meta={"ownerReferences": [ref]})
    orphaning = ok(api.delete(cms(ns, "owner2"), {"propagationPolicy": "Orphan"}))
    assert orphaning["metadata"]["finalizers"] == ["orphan"]
    wait_for(lambda: api.get(cms(ns, "owner2")).status == 404, 30, "the owner deleted")
    kept = ok(api.get(cms(ns, "kept")))
    assert "ownerReferences" not in kept["metadata"]


def test_foreground_deletion(api: Client, ns: str) -> None:
    owner = make(api, ns, "owner")
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
           "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}
    make(api, ns, "dep", meta={"ownerReferences": [ref], "finalizers": ["example.com/hold"]})
    deleting = ok(api.delete(cms(ns, "owner"), {"propagationPolicy": "Foreground"}))
    assert deleting["metadata"]["finalizers"] == ["foregroundDeletion"]
    wait_for(lambda: "deletionTimestamp" in ok(api.get(cms(ns, "dep")))["metadata"], 30,
             "the dependent deleting")
    assert api.get(cms(ns, "owner")).status == 200  # blocked by the dependent
    ok(api.patch(cms(ns, "dep"), {"metadata": {"finalizers": None}}))
    wait_for(lambda: api.get(cms(ns, "owner")).status == 404, 30, "the owner deleted")
