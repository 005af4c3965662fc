"""CRUD on both servers: status codes, reasons, messages and causes; resourceVersion and
generation rules; conflicts; names; deletes and their Status bodies."""

from __future__ import annotations

from typing import Any

from tests.differential.conftest import GROUP, answer, normalised, ok, widget
from tests.kube import Client


def cms(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_create_get_and_list_configmap(api: Client, ns: str) -> None:
    created = ok(api.post(cms(ns), cm("a", k="v")), 201)
    assert normalised(created) == {
        "apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"},
        "metadata": {"name": "a", "namespace": ns, "uid": "<uid>", "resourceVersion": "<rv>",
                     "creationTimestamp": "<time>", "managedFields": [{
                         "manager": "python-urllib3", "operation": "Update", "apiVersion": "v1",
                         "time": "<time>", "fieldsType": "FieldsV1",
                         "fieldsV1": {"f:data": {".": {}, "f:k": {}}}}]}}
    got = ok(api.get(cms(ns, "a")))
    assert got == created
    listed = ok(api.get(cms(ns)))
    assert listed["kind"] == "ConfigMapList" and listed["apiVersion"] == "v1"
    assert set(listed["metadata"]) == {"resourceVersion"}
    assert [i["metadata"] for i in listed["items"]] == [created["metadata"]]


def test_built_in_list_items_have_no_type(api: Client, ns: str) -> None:
    ok(api.post(cms(ns), cm("a", k="v")), 201)
    item = ok(api.get(cms(ns)))["items"][0]
    assert "apiVersion" not in item and "kind" not in item


def test_custom_resource_list_items_have_their_type(api: Client, widgets: str) -> None:
    ok(api.post(widgets, widget("w")), 201)
    item = ok(api.get(widgets))["items"][0]
    assert (item["apiVersion"], item["kind"]) == (f"{GROUP}/v1", "Widget")


def test_already_exists(api: Client, ns: str) -> None:
    ok(api.post(cms(ns), cm("a")), 201)
    assert answer(api.post(cms(ns), cm("a"))) == {
        "code": 409, "status": "Failure", "reason": "AlreadyExists",
        "message": 'configmaps "a" already exists',
        "details": {"name": "a", "kind": "configmaps"}}


def test_not_found_core_and_custom(api: Client, ns: str, widgets: str) -> None:
    assert answer(api.get(cms(ns, "nope"))) == {
        "code": 404, "status": "Failure", "reason": "NotFound",
        "message": 'configmaps "nope" not found',
        "details": {"name": "nope", "kind": "configmaps"}}
    assert answer(api.delete(f"{widgets}/nope")) == {
        "code": 404, "status": "Failure", "reason": "NotFound",
        "message": f'widgets.{GROUP} "nope" not found',
        "details": {"name": "nope", "group": GROUP, "kind": "widgets"}}


def test_stale_update_conflicts(api: Client, ns: str) -> None:
    first = ok(api.post(cms(ns), cm("a", k="1")), 201)
    ok(api.put(cms(ns, "a"), {**first, "data": {"k": "2"}}))
    assert answer(api.put(cms(ns, "a"), {**first, "data": {"k": "3"}})) == {
        "code": 409, "status": "Failure", "reason": "Conflict",
        "message": 'Operation cannot be fulfilled on configmaps "a": the object has been '
                   "modified; please apply your changes to the latest version and try again",
        "details": {"name": "a", "kind": "configmaps"}}


def test_update_rules_for_resource_version(api: Client, ns: str, widgets: str) -> None:
    # A ConfigMap may be updated unconditionally; a custom resource may not.
    ok(api.post(cms(ns), cm("a", k="1")), 201)
    updated = ok(api.put(cms(ns, "a"), cm("a", k="2")))
    assert updated["data"] == {"k": "2"}
    ok(api.post(widgets, widget("w")), 201)
    assert answer(api.put(f"{widgets}/w", widget("w", replicas=2))) == {
        "code": 422, "status": "Failure", "reason": "Invalid",
        "message": f'widgets.{GROUP} "w" is invalid: metadata.resourceVersion: Invalid value: '
                   '0x0: must be specified for an update',
        "details": {"name": "w", "group": GROUP, "kind": "widgets", "causes": [{
            "reason": "FieldValueInvalid",
            "message": "Invalid value: 0x0: must be specified for an update",
            "field": "metadata.resourceVersion"}]}}


def test_update_of_missing_object(api: Client, ns: str, widgets: str) -> None:
    # Neither ConfigMaps nor custom resources allow create-on-update.
    assert answer(api.put(cms(ns, "new"), cm("new", k="v"))) == {
        "code": 404, "status": "Failure", "reason": "NotFound",
        "message": 'configmaps "new" not found', "details": {"name": "new", "kind": "configmaps"}}
    assert answer(api.put(f"{widgets}/new", widget("new"))) == {
        "code": 404, "status": "Failure", "reason": "NotFound",
        "message": f'widgets.{GROUP} "new" not found',
        "details": {"name": "new", "group": GROUP, "kind": "widgets"}}


def test_resource_version_moves_only_on_change(api: Client, ns: str) -> None:
    created = ok(api.post(cms(ns), cm("a", k="1")), 201)
    same = ok(api.put(cms(ns, "a"), created))
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    noop = ok(api.patch(cms(ns, "a"), {"data": {"k": "1"}}))
    assert noop["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    changed = ok(api.patch(cms(ns, "a"), {"data": {"k": "2"}}))
    assert int(changed["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])


def test_generation_rules_with_status_subresource(api: Client, widgets: str) -> None:
    created = ok(api.post(widgets, widget("w", replicas=1)), 201)
    assert created["metadata"]["generation"] == 1
    steps = []
    meta = ok(api.patch(f"{widgets}/w", {"metadata": {"labels": {"a": "b"}}}))
    steps.append(meta["metadata"]["generation"])
    spec = ok(api.patch(f"{widgets}/w", {"spec": {"replicas": 2}}))
    steps.append(spec["metadata"]["generation"])
    # status through the main resource is dropped; through /status it does not bump generation
    dropped = ok(api.patch(f"{widgets}/w", {"status": {"phase": "Up"}}))
    steps.append(dropped["metadata"]["generation"])
    assert "status" not in dropped
    status = ok(api.patch(f"{widgets}/w/status", {"status": {"phase": "Up"},
                                                   "spec": {"replicas": 5},
                                                   "metadata": {"labels": {"c": "d"}}}))
    steps.append(status["metadata"]["generation"])
    assert status["status"] == {"phase": "Up"}
    assert status["spec"]["replicas"] == 2 and status["metadata"]["labels"] == {"a": "b"}
    assert steps == [1, 2, 2, 2]


def test_invalid_names(api: Client, ns: str, widgets: str) -> None:
    assert answer(api.post(cms(ns), cm("Not_DNS"))) == {
        "code": 422, "status": "Failure", "reason": "Invalid",
        "message": 'ConfigMap "Not_DNS" is invalid: metadata.name: Invalid value: "Not_DNS": '
                   "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                   "characters, '-' or '.', and must start and end with an alphanumeric "
                   "character (e.g. 'example.com', regex used for validation is "
                   "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        "details": {"name": "Not_DNS", "kind": "ConfigMap", "causes": [{
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "Not_DNS": a lowercase RFC 1123 subdomain must consist '
                       "of lower case alphanumeric characters, '-' or '.', and must start and "
                       "end with an alphanumeric character (e.g. 'example.com', regex used for "
                       "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
                       "[a-z0-9])?)*')",
            "field": "metadata.name"}]}}
    bad_ns = answer(api.post("/api/v1/namespaces", {"metadata": {"name": "a.b"}}))
    assert (bad_ns["code"], bad_ns["reason"]) == (422, "Invalid")
    assert bad_ns["details"]["causes"][0]["field"] == "metadata.name"
    assert bad_ns["message"] == ('Namespace "a.b" is invalid: metadata.name: Invalid value: '
                                 '"a.b": must not contain dots')
    assert answer(api.post(widgets, widget("UPPER")))["details"]["causes"][0] == {
        "reason": "FieldValueInvalid", "field": "metadata.name",
        "message": 'Invalid value: "UPPER": a lowercase RFC 1123 subdomain must consist of '
                   "lower case alphanumeric characters, '-' or '.', and must start and end "
                   "with an alphanumeric character (e.g. 'example.com', regex used for "
                   "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
                   "[a-z0-9])?)*')"}


def test_missing_name(api: Client, ns: str) -> None:
    assert answer(api.post(cms(ns), {"metadata": {}})) == {
        "code": 422, "status": "Failure", "reason": "Invalid",
        "message": 'ConfigMap "" is invalid: metadata.name: Required value: name or '
                   "generateName is required",
        "details": {"kind": "ConfigMap", "causes": [{
            "reason": "FieldValueRequired",
            "message": "Required value: name or generateName is required",
            "field": "metadata.name"}]}}


def test_generate_name(api: Client, ns: str) -> None:
    created = ok(api.post(cms(ns), {"metadata": {"generateName": "gen-"}}), 201)
    name = created["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5
    assert created["metadata"]["generateName"] == "gen-"


def test_delete_answers(api: Client, ns: str, widgets: str) -> None:
    ok(api.post(cms(ns), cm("a")), 201)
    deleted = ok(api.delete(cms(ns, "a")))
    assert deleted["kind"] == "Status" and deleted["status"] == "Success"
    assert {k: v for k, v in deleted["details"].items() if k not in ("uid", "group")} == {
        "name": "a", "kind": "configmaps"}
    ok(api.post(widgets, widget("w")), 201)
    gone = ok(api.delete(f"{widgets}/w"))
    assert (gone["kind"], gone["status"]) == ("Status", "Success")
    assert {k: v for k, v in gone["details"].items() if k != "uid"} == {
        "name": "w", "group": GROUP, "kind": "widgets"}


def test_delete_preconditions(api: Client, ns: str) -> None:
    created = ok(api.post(cms(ns), cm("a")), 201)
    got = answer(api.delete(cms(ns, "a"), {"preconditions": {"resourceVersion": "1"}}))
    assert got == {
        "code": 409, "status": "Failure", "reason": "Conflict",
        "message": 'Operation cannot be fulfilled on ConfigMap "a": the ResourceVersion in '
                   "the precondition (1) does not match the ResourceVersion in record ("
                   f"{created['metadata']['resourceVersion']}). The object might have been "
                   "modified",
        "details": {"name": "a", "kind": "ConfigMap"}}
    wrong_uid = answer(api.delete(cms(ns, "a"), {"preconditions": {"uid": "x"}}))
    assert wrong_uid["code"] == 409 and wrong_uid["reason"] == "Conflict"
    assert wrong_uid["message"] == (
        'Operation cannot be fulfilled on ConfigMap "a": the UID in the precondition (x) does '
        f"not match the UID in record ({created['metadata']['uid']}). The object might have "
        "been deleted and then recreated")


def test_dry_run_create_does_not_persist(api: Client, ns: str) -> None:
    dry = ok(api.post(cms(ns) + "?dryRun=All", cm("a", k="v")), 201)
    assert dry["data"] == {"k": "v"} and "uid" in dry["metadata"]
    assert api.get(cms(ns, "a")).status == 404
    assert answer(api.post(cms(ns) + "?dryRun=Some", cm("a"))) == {
        "code": 422, "status": "Failure", "reason": "Invalid",
        "message": 'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
                   '[]string{"Some"}: supported values: "All"',
        "details": {"group": "meta.k8s.io", "kind": "CreateOptions", "causes": [{
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: []string{"Some"}: supported values: "All"',
            "field": "dryRun"}]}}


def test_immutable_configmap(api: Client, ns: str) -> None:
    ok(api.post(cms(ns), {**cm("a", k="1"), "immutable": True}), 201)
    got = answer(api.patch(cms(ns, "a"), {"data": {"k": "2"}}))
    assert (got["code"], got["reason"]) == (422, "Invalid")
    assert got["details"]["causes"] == [{
        "reason": "FieldValueForbidden",
        "message": "Forbidden: field is immutable when `immutable` is set",
        "field": "data"}]


def test_secret_string_data_folds_into_data(api: Client, ns: str) -> None:
    created = ok(api.post(f"/api/v1/namespaces/{ns}/secrets", {
        "metadata": {"name": "s"}, "stringData": {"a": "hi"}, "data": {"b": "aGk="}}), 201)
    assert created["data"] == {"a": "aGk=", "b": "aGk="} and "stringData" not in created
    assert created["type"] == "Opaque"


def test_write_into_missing_namespace(api: Client) -> None:
    assert answer(api.post(cms("no-such-ns-here"), cm("a"))) == {
        "code": 404, "status": "Failure", "reason": "NotFound",
        "message": 'namespaces "no-such-ns-here" not found',
        "details": {"name": "no-such-ns-here", "kind": "namespaces"}}
