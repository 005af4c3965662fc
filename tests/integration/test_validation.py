"""Validation over HTTP as kube-apiserver does it for custom resources: fieldValidation
(Strict/Warn/Ignore), pruning, defaulting, OpenAPI schema errors reported together with their
field paths, CEL rules including transition rules, int-or-string and preserved unknown fields;
and metadata.name rules for built-ins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.kube import Client, Response, Server

GROUP = "validation.shipyard.test"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
MERGE_PATCH = "application/merge-patch+json"

SPEC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["size"],
    "x-kubernetes-validations": [{
        "rule": "self.minReplicas <= self.maxReplicas",
        "message": "minReplicas must not exceed maxReplicas",
    }],
    "properties": {
        "size": {"type": "integer", "minimum": 1, "maximum": 10},
        "replicas": {"type": "integer"},
        "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
        "label": {"type": "string", "maxLength": 5},
        "minReplicas": {"type": "integer", "default": 1},
        "maxReplicas": {"type": "integer", "default": 3},
        "frozen": {"type": "string", "x-kubernetes-validations": [{
            "rule": "self == oldSelf", "message": "frozen is immutable"}]},
        "port": {"x-kubernetes-int-or-string": True},
        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def crd_manifest(plural: str, kind: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP, "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": SPEC_SCHEMA,
                    "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                }}},
                "subresources": {"status": {}},
            }],
        },
    }


@dataclass(frozen=True)
class Res:
    api: Client
    plural: str
    kind: str
    namespace: str | None

    @property
    def path(self) -> str:
        ns = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"/apis/{GROUP}/v1{ns}/{self.plural}"

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{GROUP}"

    def body(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": f"{GROUP}/v1", "kind": self.kind, "metadata": {"name": name},
                "spec": spec}

    def post(self, name: str, spec: dict[str, Any], query: str = "") -> Response:
        return self.api.post(self.path + query, self.body(name, spec))


@pytest.fixture(scope="module", params=["Namespaced", "Cluster"], ids=["namespaced", "cluster"])
def checked_crd(request: pytest.FixtureRequest, server: Server
                ) -> Iterator[tuple[str, str, bool]]:
    plural, kind = ("checks", "Check") if request.param == "Namespaced" else ("audits", "Audit")
    api = server.client()
    resp = api.post(CRD_PATH, crd_manifest(plural, kind, request.param))
    assert resp.status == 201, resp.body
    yield plural, kind, request.param == "Namespaced"
    api.delete(f"{CRD_PATH}/{plural}.{GROUP}")


@pytest.fixture
def res(checked_crd: tuple[str, str, bool], api: Client, request: pytest.FixtureRequest) -> Res:
    plural, kind, namespaced = checked_crd
    return Res(api, plural, kind, request.getfixturevalue("namespace") if namespaced else None)


def unique() -> str:
    return f"v-{uuid.uuid4().hex[:8]}"


def invalid(resp: Response) -> dict[str, Any]:
    assert resp.status == 422, resp.body
    body: dict[str, Any] = resp.json()
    assert body["kind"] == "Status" and body["reason"] == "Invalid" and body["code"] == 422
    return body


# ------------------------------------------------------------------------ fieldValidation


def test_strict_create_rejects_unknown_fields(res: Res) -> None:
    name = unique()
    resp = res.post(name, {"size": 1, "replias": 3}, "?fieldValidation=Strict")
    assert resp.status == 400, resp.body
    body = resp.json()
    assert body["reason"] == "BadRequest"
    assert body["message"].endswith(': strict decoding error: unknown field "spec.replias"')
    assert res.api.get(f"{res.path}/{name}").status == 404


def test_strict_reports_every_unknown_field(res: Res) -> None:
    resp = res.api.post(res.path + "?fieldValidation=Strict", {
        **res.body(unique(), {"size": 1, "replias": 3}), "top": 1})
    assert resp.status == 400, resp.body
    message = resp.json()["message"]
    assert "cannot be handled as a" in message and "strict decoding error: " in message
    assert 'unknown field "spec.replias"' in message and 'unknown field "top"' in message


def test_strict_update_is_bad_request_and_strict_patch_is_invalid(res: Res) -> None:
    name = unique()
    created = res.post(name, {"size": 1}).json()
    created["spec"]["replias"] = 2
    resp = res.api.put(f"{res.path}/{name}?fieldValidation=Strict", created)
    assert resp.status == 400, resp.body
    assert resp.json()["message"].endswith(
        ': strict decoding error: unknown field "spec.replias"')
    resp = res.api.patch(f"{res.path}/{name}?fieldValidation=Strict",
                         {"spec": {"replias": 2}})
    body = invalid(resp)
    assert 'unknown field "spec.replias"' in body["message"]
    assert "replias" not in res.api.get(f"{res.path}/{name}").json()["spec"]


def test_warn_prunes_and_warns(res: Res) -> None:
    name = unique()
    resp = res.post(name, {"size": 1, "replias": 3}, "?fieldValidation=Warn")
    assert resp.status == 201, resp.body
    assert resp.headers.get("warning") == '299 - "unknown field \\"spec.replias\\""'
    assert "replias" not in resp.json()["spec"]


def test_warn_is_the_default(res: Res) -> None:
    resp = res.post(unique(), {"size": 1, "replias": 3})
    assert resp.status == 201, resp.body
    assert "spec.replias" in resp.headers.get("warning", "")


def test_ignore_prunes_silently(res: Res) -> None:
    resp = res.post(unique(), {"size": 1, "replias": 3}, "?fieldValidation=Ignore")
    assert resp.status == 201, resp.body
    assert "warning" not in resp.headers
    assert "replias" not in resp.json()["spec"]


def test_unknown_field_validation_directive_is_bad_request(res: Res) -> None:
    resp = res.post(unique(), {"size": 1}, "?fieldValidation=Loud")
    assert resp.status == 400, resp.body
    assert resp.json()["reason"] == "BadRequest"


# ------------------------------------------------------------------- schema and defaults


def test_defaults_are_applied_on_create(res: Res) -> None:
    resp = res.post(unique(), {"size": 2})
    assert resp.status == 201, resp.body
    assert resp.json()["spec"] == {"size": 2, "mode": "fast", "minReplicas": 1,
                                   "maxReplicas": 3}


def test_schema_errors_are_reported_together_with_field_paths(res: Res) -> None:
    name = unique()
    resp = res.post(name, {"size": 0, "mode": "medium", "label": "toolong"})
    body = invalid(resp)
    causes = body["details"]["causes"]
    by_field = {c["field"]: c for c in causes}
    assert set(by_field) == {"spec.size", "spec.mode", "spec.label"}
    assert by_field["spec.size"] == {
        "reason": "FieldValueInvalid", "field": "spec.size",
        "message": "Invalid value: 0: spec.size in body should be greater than or equal to 1"}
    assert by_field["spec.mode"] == {
        "reason": "FieldValueNotSupported", "field": "spec.mode",
        "message": 'Unsupported value: "medium": supported values: "fast", "slow"'}
    assert by_field["spec.label"]["reason"] == "FieldValueTooLong"
    assert body["message"].startswith(f'{res.qualified_kind} "{name}" is invalid: [')
    for cause in causes:
        assert f'{cause["field"]}: {cause["message"]}' in body["message"]
    assert body["details"]["name"] == name and body["details"]["group"] == GROUP
    assert body["details"]["kind"] == res.kind


def test_required_field(res: Res) -> None:
    body = invalid(res.post(unique(), {"mode": "slow"}))
    assert body["details"]["causes"] == [{"reason": "FieldValueRequired",
                                          "message": "Required value", "field": "spec.size"}]


def test_wrong_type_blocks_cel_rules(res: Res) -> None:
    body = invalid(res.post(unique(), {"size": "big"}))
    assert body["details"]["causes"] == [
        {"reason": "FieldValueTypeInvalid", "field": "spec.size",
         "message": 'Invalid value: "string": spec.size in body must be of type integer: '
                    '"string"'},
        {"reason": "FieldValueInvalid",
         "message": "Invalid value: \"null\": some validation rules were not checked because "
                    "the object was invalid; correct the existing errors to complete validation"},
    ]


def test_int_or_string(res: Res) -> None:
    assert res.post(unique(), {"size": 1, "port": 8080}).status == 201
    assert res.post(unique(), {"size": 1, "port": "http"}).status == 201
    body = invalid(res.post(unique(), {"size": 1, "port": True}))
    assert body["details"]["causes"][0]["field"] == "spec.port"


def test_preserve_unknown_fields_keeps_what_is_below(res: Res) -> None:
    resp = res.post(unique(), {"size": 1, "extra": {"free": {"form": [1, {"x": None}]}}},
                    "?fieldValidation=Strict")
    assert resp.status == 201, resp.body
    assert resp.json()["spec"]["extra"] == {"free": {"form": [1, {"x": None}]}}


# -------------------------------------------------------------------------------- CEL


def test_cel_rule(res: Res) -> None:
    name = unique()
    body = invalid(res.post(name, {"size": 1, "minReplicas": 5, "maxReplicas": 2}))
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec",
                                          "message": "Invalid value: \"object\": minReplicas "
                                                     "must not exceed maxReplicas"}]
    assert res.api.get(f"{res.path}/{name}").status == 404


def test_cel_transition_rule_runs_only_on_update(res: Res) -> None:
    name = unique()
    resp = res.post(name, {"size": 1, "frozen": "ice"})  # no oldSelf on create
    assert resp.status == 201, resp.body
    created = resp.json()
    ok = res.api.patch(f"{res.path}/{name}", {"spec": {"size": 2}})
    assert ok.status == 200, ok.body
    body = invalid(res.api.patch(f"{res.path}/{name}", {"spec": {"frozen": "water"}}))
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.frozen",
                                          "message": 'Invalid value: "string": frozen is '
                                                     'immutable'}]
    created["spec"]["frozen"] = "steam"
    created["metadata"]["resourceVersion"] = ok.json()["metadata"]["resourceVersion"]
    invalid(res.api.put(f"{res.path}/{name}", created))
    assert res.api.get(f"{res.path}/{name}").json()["spec"]["frozen"] == "ice"


def test_validation_applies_to_dry_run(res: Res) -> None:
    invalid(res.post(unique(), {"size": 99}, "?dryRun=All"))


# ------------------------------------------------------------------------- built-in names


def test_namespace_names_are_dns_labels(api: Client) -> None:
    body = invalid(api.post("/api/v1/namespaces", {"metadata": {"name": "has.dot"}}))
    assert body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "metadata.name",
        "message": 'Invalid value: "has.dot": must not contain dots',
    }]
    assert body["message"].startswith('Namespace "has.dot" is invalid: metadata.name: ')


def test_configmap_name_may_have_dots_but_not_upper_case(api: Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert api.post(path, {"metadata": {"name": "has.dot"}}).status == 201
    body = invalid(api.post(path, {"metadata": {"name": "Upper"}}))
    assert body["message"].startswith('ConfigMap "Upper" is invalid: metadata.name: Invalid '
                                      'value: "Upper": a lowercase RFC 1123 subdomain')


def test_labels_are_validated(api: Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    body = invalid(api.post(path, {"metadata": {"name": "c", "labels": {"bad key": "v"}}}))
    assert body["details"]["causes"][0]["field"] == "metadata.labels"
