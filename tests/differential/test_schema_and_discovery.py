"""CRD admission (validation, pruning, defaulting, CEL messages), tables, discovery shape and the
OpenAPI v3 documents kubectl consumes, on both servers."""

from __future__ import annotations

from typing import Any

from tests.differential.conftest import GROUP, answer, ok, widget
from tests.kube import Client

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def causes(resp: Any) -> list[dict[str, Any]]:
    got = answer(resp)
    assert (got["code"], got["reason"]) == (422, "Invalid"), got
    result: list[dict[str, Any]] = got["details"]["causes"]
    return result


def test_pruning_and_defaulting(api: Client, widgets: str) -> None:
    body = widget("w", size="s", bogus=1, extra={"keep": {"me": 1}})
    created = ok(api.post(widgets + "?fieldValidation=Ignore", body), 201)
    assert created["spec"] == {"size": "s", "replicas": 1, "mode": "auto",
                               "extra": {"keep": {"me": 1}}}


def test_warn_reports_unknown_fields(api: Client, widgets: str) -> None:
    resp = api.post(widgets + "?fieldValidation=Warn", widget("w", bogus=1))
    assert resp.status == 201
    assert resp.headers.get("warning") == '299 - "unknown field \\"spec.bogus\\""'


def test_schema_errors(api: Client, widgets: str) -> None:
    got = causes(api.post(widgets, widget("w", replicas=-1, mode="sideways", size="x" * 9)))
    expected = [
        {"reason": "FieldValueNotSupported", "field": "spec.mode",
         "message": 'Unsupported value: "sideways": supported values: "auto", "manual", "off"'},
        {"reason": "FieldValueInvalid", "field": "spec.replicas",
         "message": "Invalid value: -1: spec.replicas in body should be greater than or equal "
                    "to 0"},
        {"reason": "FieldValueTooLong", "field": "spec.size",
         "message": "Too long: may not be more than 8 bytes"},
    ]
    def by_field(c: dict[str, Any]) -> str:
        return str(c["field"])

    assert sorted((c for c in got if c in expected), key=by_field) == expected


def test_schema_errors_also_report_the_scale_path(api: Client, widgets: str) -> None:
    got = causes(api.post(widgets, widget("w", replicas=-1)))
    assert {"reason": "FieldValueInvalid", "field": ".spec.replicas",
            "message": "Invalid value: -1: should be a non-negative integer"} in got


def test_wrong_type(api: Client, widgets: str) -> None:
    got = causes(api.post(widgets, widget("w", size=3)))
    assert got[0] == {
        "reason": "FieldValueTypeInvalid",
        "message": 'Invalid value: "integer": spec.size in body must be of type string: '
                   '"integer"',
        "field": "spec.size"}


def test_cel_messages(api: Client, widgets: str) -> None:
    assert answer(api.post(widgets, widget("w", replicas=11))) == {
        "code": 422, "status": "Failure", "reason": "Invalid",
        "message": f'Widget.{GROUP} "w" is invalid: spec: Invalid value: "object": replicas '
                   "must be at most 10",
        "details": {"name": "w", "group": GROUP, "kind": "Widget", "causes": [{
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "object": replicas must be at most 10',
            "field": "spec"}]}}
    assert causes(api.post(widgets, widget("w", mode="off", replicas=2))) == [{
        "reason": "FieldValueForbidden", "message": "Forbidden: mode off needs 0 replicas",
        "field": "spec.mode"}]


def test_cel_transition_rule_only_on_update(api: Client, widgets: str) -> None:
    created = ok(api.post(widgets, widget("w", owner="a")), 201)
    created["spec"]["owner"] = "b"
    assert causes(api.put(f"{widgets}/w", created)) == [{
        "reason": "FieldValueInvalid", "message": 'Invalid value: "string": owner is immutable',
        "field": "spec.owner"}]


def test_table(api: Client, widgets: str) -> None:
    ok(api.post(widgets, widget("w", replicas=2, size="s")), 201)
    table = ok(api.get(widgets, headers={"Accept": TABLE}))
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [(c["name"], c["type"], c["format"], c["priority"])
            for c in table["columnDefinitions"]] == [
        ("Name", "string", "name", 0), ("Replicas", "integer", "", 0),
        ("Mode", "string", "", 0), ("Size", "string", "", 1), ("Age", "date", "", 0)]
    assert table["columnDefinitions"][2]["description"] == "how replicas are chosen"
    (row,) = table["rows"]
    assert row["cells"][:4] == ["w", 2, "auto", "s"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["apiVersion"] == "meta.k8s.io/v1"
    assert row["object"]["metadata"]["name"] == "w"


def test_discovery_shape(api: Client, widget_crd: str) -> None:
    group = ok(api.get(f"/apis/{GROUP}"))
    assert group == {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP,
                     "versions": [{"groupVersion": f"{GROUP}/v1", "version": "v1"}],
                     "preferredVersion": {"groupVersion": f"{GROUP}/v1", "version": "v1"}}
    resources = ok(api.get(widget_crd))
    assert (resources["kind"], resources["groupVersion"]) == ("APIResourceList", f"{GROUP}/v1")
    by_name = {r["name"]: r for r in resources["resources"]}
    assert set(by_name) == {"widgets", "widgets/status", "widgets/scale"}
    main = dict(by_name["widgets"])
    assert main.pop("storageVersionHash")
    assert main == {"name": "widgets", "singularName": "widget", "namespaced": True,
                    "kind": "Widget", "verbs": ["delete", "deletecollection", "get", "list",
                                                "patch", "create", "update", "watch"],
                    "shortNames": ["wdg"], "categories": ["diff"]}
    assert by_name["widgets/scale"] == {
        "name": "widgets/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
        "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}
    assert by_name["widgets/status"] == {
        "name": "widgets/status", "singularName": "", "namespaced": True, "kind": "Widget",
        "verbs": ["get", "patch", "update"]}


def test_openapi_v3_for_kubectl(api: Client, widget_crd: str) -> None:
    index = ok(api.get("/openapi/v3"))
    url = index["paths"][f"apis/{GROUP}/v1"]["serverRelativeURL"]
    assert url.startswith(f"/openapi/v3/apis/{GROUP}/v1?hash=")
    doc = ok(api.get(url))
    path = doc["paths"][f"/apis/{GROUP}/v1/namespaces/{{namespace}}/widgets/{{name}}"]
    patch = path["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": GROUP, "version": "v1", "kind": "Widget"}
    assert sorted(patch["requestBody"]["content"]) == [
        "application/apply-patch+yaml", "application/json-patch+json",
        "application/merge-patch+json"]
    params = {p.get("name") for p in patch.get("parameters", []) + path.get("parameters", [])}
    assert {"dryRun", "fieldManager", "fieldValidation", "force"} <= params
    schema_name = f"{'.'.join(reversed(GROUP.split('.')))}.v1.Widget"
    schema = doc["components"]["schemas"][schema_name]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": GROUP, "kind": "Widget", "version": "v1"}]
    assert schema["properties"]["spec"]["properties"]["replicas"] == {
        "type": "integer", "default": 1, "minimum": 0}
