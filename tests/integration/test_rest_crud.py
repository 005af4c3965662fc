"""CRUD over HTTP with kube-apiserver's REST semantics, for custom resources (namespaced and
cluster-scoped) and the built-in kinds the server serves.

Each assertion pins what kube-apiserver answers: status codes, Status reasons, messages and the
metadata the server owns (uid, creationTimestamp, generation, resourceVersion).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.kube import Client, Server

GROUP = "crud.shipyard.test"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
DNS1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "properties": {
            "replicas": {"type": "integer"},
            "color": {"type": "string"},
        }},
        "status": {"type": "object", "properties": {
            "replicas": {"type": "integer"},
            "selector": {"type": "string"},
            "phase": {"type": "string"},
        }},
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
                "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
                "subresources": {"status": {}, "scale": {
                    "specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas",
                    "labelSelectorPath": ".status.selector",
                }},
            }],
        },
    }


@dataclass(frozen=True)
class Target:
    """One resource collection as seen by a test: the paths and names messages use."""

    api: Client
    group: str
    version: str
    plural: str
    kind: str
    namespace: str | None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def collection(self) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        ns = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{root}{ns}/{self.plural}"

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def item(self, name: str, sub: str = "") -> str:
        return f"{self.collection}/{name}" + (f"/{sub}" if sub else "")

    def body(self, name: str, **fields: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {"apiVersion": self.api_version, "kind": self.kind,
                               "metadata": {"name": name}}
        obj.update(fields)
        return obj

    def create(self, name: str, **fields: Any) -> dict[str, Any]:
        resp = self.api.post(self.collection, self.body(name, **fields))
        assert resp.status == 201, resp.body
        created: dict[str, Any] = resp.json()
        return created


def unique(prefix: str = "w") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=["Namespaced", "Cluster"], ids=["namespaced", "cluster"])
def widget_crd(request: pytest.FixtureRequest, server: Server) -> Iterator[tuple[str, str, bool]]:
    scope = request.param
    plural, kind = ("widgets", "Widget") if scope == "Namespaced" else ("gadgets", "Gadget")
    api = server.client()
    resp = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                    crd_manifest(plural, kind, scope))
    assert resp.status == 201, resp.body
    yield plural, kind, scope == "Namespaced"
    api.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.{GROUP}")


@pytest.fixture
def cr(widget_crd: tuple[str, str, bool], api: Client,
       request: pytest.FixtureRequest) -> Target:
    plural, kind, namespaced = widget_crd
    ns = request.getfixturevalue("namespace") if namespaced else None
    return Target(api, GROUP, "v1", plural, kind, ns)


def status_of(resp: Any) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()
    assert body["kind"] == "Status", body
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == resp.status
    return body


# ---------------------------------------------------------------------------- create / get


def test_create_sets_server_owned_metadata(cr: Target) -> None:
    name = unique()
    resp = cr.api.post(cr.collection, cr.body(
        name, spec={"replicas": 1}, status={"phase": "Ready"},
        metadata={"name": name, "uid": "client-uid", "generation": 7,
                  "creationTimestamp": "2001-01-01T00:00:00Z", "resourceVersion": "12"},
    ))
    assert resp.status == 201, resp.body
    created = resp.json()
    meta = created["metadata"]
    assert meta["uid"] != "client-uid" and len(meta["uid"]) == 36
    assert meta["creationTimestamp"] != "2001-01-01T00:00:00Z"
    assert meta["creationTimestamp"].endswith("Z") and len(meta["creationTimestamp"]) == 20
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert "status" not in created  # the status subresource owns status: dropped on create
    if cr.namespace:
        assert meta["namespace"] == cr.namespace
    else:
        assert "namespace" not in meta
    got = cr.api.get(cr.item(name))
    assert got.status == 200
    assert got.json() == created


def test_create_existing_name_is_already_exists(cr: Target) -> None:
    name = unique()
    cr.create(name)
    resp = cr.api.post(cr.collection, cr.body(name))
    assert resp.status == 409
    body = status_of(resp)
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == f'{cr.qualified} "{name}" already exists'
    assert body["details"] == {"name": name, "group": GROUP, "kind": cr.plural}


def test_generate_name(cr: Target) -> None:
    resp = cr.api.post(cr.collection, {"apiVersion": cr.api_version, "kind": cr.kind,
                                       "metadata": {"generateName": "gen-"}})
    assert resp.status == 201, resp.body
    meta = resp.json()["metadata"]
    assert meta["name"].startswith("gen-") and len(meta["name"]) == len("gen-") + 5
    assert meta["generateName"] == "gen-"
    assert cr.api.get(cr.item(meta["name"])).status == 200


def test_get_missing_is_not_found(cr: Target) -> None:
    resp = cr.api.get(cr.item("absent"))
    assert resp.status == 404
    body = status_of(resp)
    assert body["reason"] == "NotFound"
    assert body["message"] == f'{cr.qualified} "absent" not found'
    assert body["details"] == {"name": "absent", "group": GROUP, "kind": cr.plural}


def test_name_not_dns1123_is_invalid(cr: Target) -> None:
    resp = cr.api.post(cr.collection, cr.body("Bad_Name"))
    assert resp.status == 422
    body = status_of(resp)
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        f'{cr.kind}.{GROUP} "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        + DNS1123_SUBDOMAIN
    )
    assert body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "metadata.name",
        "message": f'Invalid value: "Bad_Name": {DNS1123_SUBDOMAIN}',
    }]


# ---------------------------------------------------------------------------------- update


def test_update_with_stale_resource_version_conflicts(cr: Target) -> None:
    name = unique()
    first = cr.create(name, spec={"replicas": 1})
    second = dict(first, spec={"replicas": 2})
    assert cr.api.put(cr.item(name), second).status == 200
    stale = dict(first, spec={"replicas": 3})
    resp = cr.api.put(cr.item(name), stale)
    assert resp.status == 409
    body = status_of(resp)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        f'Operation cannot be fulfilled on {cr.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    assert body["details"] == {"name": name, "group": GROUP, "kind": cr.plural}
    assert cr.api.get(cr.item(name)).json()["spec"] == {"replicas": 2}


def test_update_without_resource_version_is_invalid(cr: Target) -> None:
    name = unique()
    created = cr.create(name, spec={"replicas": 1})
    del created["metadata"]["resourceVersion"]
    created["spec"]["replicas"] = 5
    resp = cr.api.put(cr.item(name), created)
    assert resp.status == 422
    body = status_of(resp)
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        f'{cr.plural}.{GROUP} "{name}" is invalid: metadata.resourceVersion: Invalid value: '
        "0x0: must be specified for an update"
    )
    assert body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
        "message": "Invalid value: 0x0: must be specified for an update",
    }]


def test_update_name_mismatch_is_bad_request(cr: Target) -> None:
    name = unique()
    created = cr.create(name)
    created["metadata"]["name"] = "other"
    resp = cr.api.put(cr.item(name), created)
    assert resp.status == 400
    assert status_of(resp)["reason"] == "BadRequest"


def test_uid_is_immutable_and_creation_timestamp_is_kept(cr: Target) -> None:
    name = unique()
    created = cr.create(name)
    meta = created["metadata"]
    changed = dict(created, metadata=dict(meta, creationTimestamp="2001-01-01T00:00:00Z"))
    resp = cr.api.put(cr.item(name), changed)
    assert resp.status == 200, resp.body
    assert resp.json()["metadata"]["creationTimestamp"] == meta["creationTimestamp"]
    current = resp.json()
    current["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000"
    resp = cr.api.put(cr.item(name), current)
    assert resp.status == 422, resp.body
    body = status_of(resp)
    assert body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "metadata.uid",
        "message": 'Invalid value: "00000000-0000-0000-0000-000000000000": field is immutable',
    }]
    assert cr.api.get(cr.item(name)).json()["metadata"]["uid"] == meta["uid"]


def test_generation_follows_spec_only(cr: Target) -> None:
    name = unique()
    obj = cr.create(name, spec={"replicas": 1})
    assert obj["metadata"]["generation"] == 1
    obj["metadata"]["labels"] = {"tier": "a"}
    obj = cr.api.put(cr.item(name), obj).json()
    assert obj["metadata"]["generation"] == 1  # metadata change
    obj["status"] = {"phase": "Ready"}
    obj = cr.api.put(cr.item(name, "status"), obj).json()
    assert obj["metadata"]["generation"] == 1  # status change
    assert obj["status"] == {"phase": "Ready"}
    obj["spec"]["replicas"] = 2
    obj = cr.api.put(cr.item(name), obj).json()
    assert obj["metadata"]["generation"] == 2
    resp = cr.api.patch(cr.item(name), {"spec": {"replicas": 3}})
    assert resp.json()["metadata"]["generation"] == 3
    resp = cr.api.patch(cr.item(name), {"metadata": {"annotations": {"a": "b"}}})
    assert resp.json()["metadata"]["generation"] == 3


def test_status_subresource_separates_spec_and_status(cr: Target) -> None:
    name = unique()
    obj = cr.create(name, spec={"replicas": 1})
    obj["status"] = {"phase": "Ready"}
    obj["spec"]["replicas"] = 9
    obj["metadata"]["labels"] = {"via": "status"}
    resp = cr.api.put(cr.item(name, "status"), obj)
    assert resp.status == 200, resp.body
    after = resp.json()
    assert after["status"] == {"phase": "Ready"}
    assert after["spec"] == {"replicas": 1}  # /status ignores spec ...
    assert "labels" not in after["metadata"]  # ... and metadata other than managedFields
    after["status"] = {"phase": "Gone"}
    after["spec"]["replicas"] = 4
    resp = cr.api.put(cr.item(name), after)
    assert resp.status == 200, resp.body
    assert resp.json()["status"] == {"phase": "Ready"}  # the main resource ignores status
    assert resp.json()["spec"] == {"replicas": 4}
    resp = cr.api.patch(cr.item(name, "status"), {"status": {"phase": "Done"},
                                                  "spec": {"replicas": 0}})
    assert resp.status == 200, resp.body
    assert resp.json()["status"] == {"phase": "Done"}
    assert resp.json()["spec"] == {"replicas": 4}
    got = cr.api.get(cr.item(name, "status"))
    assert got.status == 200 and got.json()["status"] == {"phase": "Done"}


# ----------------------------------------------------------------------------------- patch


def test_json_patch(cr: Target) -> None:
    name = unique()
    created = cr.create(name, spec={"replicas": 1, "color": "red"})
    rv = created["metadata"]["resourceVersion"]
    resp = cr.api.patch(cr.item(name), [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/replicas", "value": 2},
        {"op": "remove", "path": "/spec/color"},
        {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}},
    ], content_type=JSON_PATCH)
    assert resp.status == 200, resp.body
    patched = resp.json()
    assert patched["spec"] == {"replicas": 2}
    assert patched["metadata"]["labels"] == {"k": "v"}
    assert patched["metadata"]["resourceVersion"] != rv


def test_json_patch_failed_test_is_invalid(cr: Target) -> None:
    """kopf guards its patches with a `test` on resourceVersion and relies on this 422."""
    name = unique()
    cr.create(name, spec={"replicas": 1})
    resp = cr.api.patch(cr.item(name), [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "replace", "path": "/spec/replicas", "value": 2},
    ], content_type=JSON_PATCH)
    assert resp.status == 422
    body = status_of(resp)
    assert body["reason"] == "Invalid"
    assert body["message"] == "the server rejected our request due to an error in our request"
    assert cr.api.get(cr.item(name)).json()["spec"] == {"replicas": 1}


def test_json_patch_on_a_missing_path_is_invalid(cr: Target) -> None:
    name = unique()
    cr.create(name)
    resp = cr.api.patch(cr.item(name), [{"op": "replace", "path": "/spec/nope", "value": 1}],
                        content_type=JSON_PATCH)
    assert resp.status == 422
    assert status_of(resp)["reason"] == "Invalid"


def test_merge_patch(cr: Target) -> None:
    name = unique()
    cr.create(name, spec={"replicas": 1, "color": "red"}, metadata={
        "name": name, "labels": {"a": "1", "b": "2"}})
    resp = cr.api.patch(cr.item(name), {"spec": {"color": None, "replicas": 3},
                                        "metadata": {"labels": {"a": None, "c": "3"}}})
    assert resp.status == 200, resp.body
    patched = resp.json()
    assert patched["spec"] == {"replicas": 3}
    assert patched["metadata"]["labels"] == {"b": "2", "c": "3"}


def test_merge_patch_with_stale_resource_version_conflicts(cr: Target) -> None:
    name = unique()
    created = cr.create(name)
    cr.api.patch(cr.item(name), {"spec": {"replicas": 1}})
    resp = cr.api.patch(cr.item(name), {"metadata": {
        "resourceVersion": created["metadata"]["resourceVersion"]}, "spec": {"replicas": 2}})
    assert resp.status == 409
    assert status_of(resp)["reason"] == "Conflict"


def test_strategic_merge_patch_on_a_custom_resource_is_unsupported(cr: Target) -> None:
    name = unique()
    cr.create(name)
    resp = cr.api.patch(cr.item(name), {"spec": {"replicas": 2}}, content_type=STRATEGIC_PATCH)
    assert resp.status == 415
    body = status_of(resp)
    assert body["reason"] == "UnsupportedMediaType"
    assert body["message"].startswith(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json"
    )
    assert STRATEGIC_PATCH not in body["message"]


def test_unknown_patch_type_is_unsupported(cr: Target) -> None:
    name = unique()
    cr.create(name)
    resp = cr.api.patch(cr.item(name), {"spec": {}}, content_type="text/plain")
    assert resp.status == 415
    assert status_of(resp)["reason"] == "UnsupportedMediaType"


def test_patch_missing_object_is_not_found(cr: Target) -> None:
    resp = cr.api.patch(cr.item("absent"), {"spec": {"replicas": 1}})
    assert resp.status == 404
    assert status_of(resp)["message"] == f'{cr.qualified} "absent" not found'


# ---------------------------------------------------------------------------------- delete


def test_delete_answers_success_status_with_uid(cr: Target) -> None:
    name = unique()
    uid = cr.create(name)["metadata"]["uid"]
    resp = cr.api.delete(cr.item(name))
    assert resp.status == 200, resp.body
    assert resp.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "group": GROUP, "kind": cr.plural, "uid": uid},
    }
    assert cr.api.get(cr.item(name)).status == 404
    again = cr.api.delete(cr.item(name))
    assert again.status == 404
    assert status_of(again)["message"] == f'{cr.qualified} "{name}" not found'


def test_delete_with_finalizer_marks_for_deletion(cr: Target) -> None:
    name = unique()
    cr.create(name, metadata={"name": name, "finalizers": ["example.com/hold"]})
    resp = cr.api.delete(cr.item(name))
    assert resp.status == 200
    marked = resp.json()
    assert marked["kind"] == cr.kind and marked["metadata"]["deletionTimestamp"]
    resp = cr.api.patch(cr.item(name), {"metadata": {"finalizers": None}})
    assert resp.status == 200, resp.body
    assert cr.api.get(cr.item(name)).status == 404


def test_delete_collection_with_label_selector(cr: Target) -> None:
    tag = unique("t")
    doomed = [cr.create(unique(), metadata={"name": unique(), "labels": {"batch": tag}})
              for _ in range(3)]
    kept = cr.create(unique(), metadata={"name": unique(), "labels": {"batch": "keep-" + tag}})
    resp = cr.api.delete(cr.collection + f"?labelSelector=batch%3D{tag}")
    assert resp.status == 200, resp.body
    assert resp.json()["status"] == "Success"
    for obj in doomed:
        assert cr.api.get(cr.item(obj["metadata"]["name"])).status == 404
    assert cr.api.get(cr.item(kept["metadata"]["name"])).status == 200


# --------------------------------------------------------------------------------- dry run


def test_dry_run_create_stores_nothing(cr: Target) -> None:
    name = unique()
    before = cr.api.get(cr.collection).json()["items"]
    resp = cr.api.post(cr.collection + "?dryRun=All", cr.body(name, spec={"replicas": 1}))
    assert resp.status == 201, resp.body
    meta = resp.json()["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["generation"] == 1
    assert cr.api.get(cr.item(name)).status == 404
    assert cr.api.get(cr.collection).json()["items"] == before


def test_dry_run_update_patch_delete_store_nothing(cr: Target) -> None:
    name = unique()
    created = cr.create(name, spec={"replicas": 1})
    resp = cr.api.put(cr.item(name) + "?dryRun=All", dict(created, spec={"replicas": 5}))
    assert resp.status == 200 and resp.json()["spec"] == {"replicas": 5}
    resp = cr.api.patch(cr.item(name) + "?dryRun=All", {"spec": {"replicas": 6}})
    assert resp.status == 200 and resp.json()["spec"] == {"replicas": 6}
    resp = cr.api.delete(cr.item(name) + "?dryRun=All")
    assert resp.status == 200
    assert cr.api.get(cr.item(name)).json() == created


@pytest.mark.parametrize("value", ["true", "Server", ""])
def test_invalid_dry_run_values_are_rejected(cr: Target, value: str) -> None:
    resp = cr.api.post(cr.collection + f"?dryRun={value}", cr.body(unique()))
    assert resp.status == 422
    body = status_of(resp)
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"] == [{
        "reason": "FieldValueNotSupported", "field": "dryRun",
        # Go's %#v of the []string, as ValidateDryRun prints it.
        "message": f'Unsupported value: []string{{"{value}"}}: supported values: "All"',
    }]
    assert (body["details"]["kind"], body["details"]["group"]) == (
        "CreateOptions", "meta.k8s.io"
    )


# ----------------------------------------------------------------------------------- scale


def test_scale_subresource(cr: Target) -> None:
    name = unique()
    cr.create(name, spec={"replicas": 2})
    cr.api.patch(cr.item(name, "status"), {"status": {"replicas": 1, "selector": "app=w"}})
    resp = cr.api.get(cr.item(name, "scale"))
    assert resp.status == 200, resp.body
    scale = resp.json()
    assert scale["apiVersion"] == "autoscaling/v1" and scale["kind"] == "Scale"
    assert scale["metadata"]["name"] == name
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 1, "selector": "app=w"}

    scale["spec"]["replicas"] = 4
    resp = cr.api.put(cr.item(name, "scale"), scale)
    assert resp.status == 200, resp.body
    assert resp.json()["spec"] == {"replicas": 4}
    assert cr.api.get(cr.item(name)).json()["spec"]["replicas"] == 4

    resp = cr.api.put(cr.item(name, "scale"), scale)  # the Scale's resourceVersion is stale
    assert resp.status == 409
    assert status_of(resp)["reason"] == "Conflict"

    resp = cr.api.patch(cr.item(name, "scale"), {"spec": {"replicas": 7}})
    assert resp.status == 200, resp.body
    assert resp.json()["spec"] == {"replicas": 7}
    obj = cr.api.get(cr.item(name)).json()
    assert obj["spec"]["replicas"] == 7 and obj["metadata"]["generation"] == 3

    resp = cr.api.patch(cr.item(name, "scale"), {"spec": {"replicas": -1}})
    assert resp.status == 422
    assert status_of(resp)["details"]["causes"][0]["field"] == "spec.replicas"


# ------------------------------------------------------------------------------ namespaces


def test_write_into_missing_namespace_is_not_found(api: Client) -> None:
    resp = api.post("/api/v1/namespaces/no-such-ns/configmaps",
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    assert resp.status == 404
    body = status_of(resp)
    assert body["reason"] == "NotFound"
    assert body["message"] == 'namespaces "no-such-ns" not found'
    assert body["details"] == {"name": "no-such-ns", "kind": "namespaces"}


def test_write_into_terminating_namespace_is_forbidden(api: Client, namespace: str) -> None:
    cms = f"/api/v1/namespaces/{namespace}/configmaps"
    resp = api.post(cms, {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    assert resp.status == 201, resp.body
    resp = api.delete(f"/api/v1/namespaces/{namespace}")
    assert resp.status == 200
    assert resp.json()["status"]["phase"] == "Terminating"
    try:
        resp = api.post(cms, {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "late"}})
        assert resp.status == 403
        body = status_of(resp)
        assert body["reason"] == "Forbidden"
        assert body["message"] == (
            f'configmaps "late" is forbidden: unable to create new content in namespace '
            f"{namespace} because it is being terminated"
        )
        assert body["details"] == {
            "name": "late", "kind": "configmaps",
            "causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                        "message": f"namespace {namespace} is being terminated"}],
        }
    finally:
        api.patch(f"{cms}/held", {"metadata": {"finalizers": None}})


# -------------------------------------------------------------------------------- built-ins

# (group, plural, kind, namespaced, extra fields, a merge patch and what it must produce)
BUILTINS: list[tuple[str, str, str, bool, dict[str, Any], dict[str, Any]]] = [
    ("", "configmaps", "ConfigMap", True, {"data": {"a": "1"}}, {"data": {"b": "2"}}),
    ("", "secrets", "Secret", True, {"type": "Opaque", "data": {"a": "MQ=="}},
     {"stringData": {"b": "2"}}),
    ("", "namespaces", "Namespace", False, {}, {"metadata": {"labels": {"x": "y"}}}),
    ("", "nodes", "Node", False, {"spec": {"podCIDR": "10.0.0.0/24"}},
     {"spec": {"unschedulable": True}}),
    ("coordination.k8s.io", "leases", "Lease", True,
     {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}},
     {"spec": {"holderIdentity": "you"}}),
    ("", "serviceaccounts", "ServiceAccount", True, {}, {"automountServiceAccountToken": False}),
    ("", "events", "Event", True,
     {"involvedObject": {"kind": "ConfigMap", "name": "c", "namespace": "NS"},
      "reason": "Tested", "message": "m", "type": "Normal", "source": {"component": "t"}},
     {"count": 2}),
    ("events.k8s.io", "events", "Event", True,
     {"eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "shipyard/test",
      "reportingInstance": "i", "action": "Test", "reason": "Tested", "type": "Normal",
      "regarding": {"kind": "ConfigMap", "name": "c", "namespace": "NS"}},
     {"note": "hello"}),
]


@pytest.fixture(params=BUILTINS, ids=lambda p: f"{p[0] or 'core'}/{p[1]}")
def builtin(request: pytest.FixtureRequest, api: Client, namespace: str
            ) -> tuple[Target, dict[str, Any], dict[str, Any]]:
    group, plural, kind, namespaced, fields, patch = request.param
    target = Target(api, group, "v1", plural, kind, namespace if namespaced else None)
    fields = _substitute(fields, namespace)
    return target, fields, patch


def _substitute(value: Any, namespace: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, namespace) for k, v in value.items()}
    return namespace if value == "NS" else value


def test_builtin_crud(builtin: tuple[Target, dict[str, Any], dict[str, Any]]) -> None:
    target, fields, patch = builtin
    name = unique("b")
    resp = target.api.post(target.collection, target.body(name, **fields))
    assert resp.status == 201, resp.body
    created = resp.json()
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    assert "generation" not in meta  # these kinds' strategies do not track generation
    assert target.api.get(target.item(name)).json() == created

    created["metadata"]["annotations"] = {"updated": "yes"}
    resp = target.api.put(target.item(name), created)
    assert resp.status == 200, resp.body
    updated = resp.json()
    assert updated["metadata"]["annotations"] == {"updated": "yes"}
    assert int(updated["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])

    resp = target.api.put(target.item(name), created)  # stale now
    assert resp.status == 409
    assert status_of(resp)["message"] == (
        f'Operation cannot be fulfilled on {target.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )

    resp = target.api.patch(target.item(name), patch)
    assert resp.status == 200, resp.body
    patched = resp.json()
    if target.kind == "Secret":
        assert patched["data"] == {"a": "MQ==", "b": "Mg=="}
        assert "stringData" not in patched
    else:
        for key, value in patch.items():
            if key != "metadata":
                assert {**patched[key], **value} == patched[key] if isinstance(value, dict) \
                    else patched[key] == value

    resp = target.api.delete(target.item(name))
    assert resp.status == 200, resp.body
    if target.kind == "Namespace":  # the `kubernetes` finalizer: it terminates first
        assert resp.json()["status"]["phase"] == "Terminating"
    else:
        expected = {"name": name, "group": target.group, "kind": target.plural,
                    "uid": meta["uid"]}
        # StatusDetails fields are omitempty: the core group is left out.
        assert resp.json()["details"] == {k: v for k, v in expected.items() if v}
        assert target.api.get(target.item(name)).status == 404


def test_configmap_update_without_resource_version_is_unconditional(
    api: Client, namespace: str
) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert api.post(path, {"metadata": {"name": "cm"}, "data": {"a": "1"}}).status == 201
    resp = api.put(path + "/cm", {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "cm"}, "data": {"b": "2"}})
    assert resp.status == 200, resp.body
    assert resp.json()["data"] == {"b": "2"}


def test_configmap_strategic_merge_patch(api: Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert api.post(path, {"metadata": {"name": "cm", "labels": {"a": "1"},
                                        "finalizers": ["x/y"]},
                           "data": {"a": "1", "b": "2"}}).status == 201
    resp = api.patch(path + "/cm", {"data": {"a": None, "c": "3"},
                                    "metadata": {"labels": {"b": "2"},
                                                 "finalizers": ["x/z"]}},
                     content_type=STRATEGIC_PATCH)
    assert resp.status == 200, resp.body
    patched = resp.json()
    assert patched["data"] == {"b": "2", "c": "3"}
    assert patched["metadata"]["labels"] == {"a": "1", "b": "2"}
    # metadata.finalizers has patchStrategy merge: the lists are unioned, not replaced
    assert sorted(patched["metadata"]["finalizers"]) == ["x/y", "x/z"]
    resp = api.patch(path + "/cm", {"metadata": {"$deleteFromPrimitiveList/finalizers":
                                                 ["x/y", "x/z"]}},
                     content_type=STRATEGIC_PATCH)
    assert resp.status == 200, resp.body
    assert not resp.json()["metadata"].get("finalizers")


def test_core_event_with_generate_name(api: Client, namespace: str) -> None:
    """kopf posts its events with generateName."""
    resp = api.post(f"/api/v1/namespaces/{namespace}/events", {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": "kopf-event-"},
        "involvedObject": {"kind": "ConfigMap", "name": "c", "namespace": namespace},
        "reason": "Logging", "message": "hello", "type": "Normal",
        "source": {"component": "kopf"}, "reportingComponent": "kopf",
    })
    assert resp.status == 201, resp.body
    assert resp.json()["metadata"]["name"].startswith("kopf-event-")


def test_node_status_subresource(api: Client) -> None:
    name = unique("node")
    assert api.post("/api/v1/nodes", {"metadata": {"name": name}}).status == 201
    try:
        resp = api.patch(f"/api/v1/nodes/{name}/status",
                         {"status": {"capacity": {"cpu": "2"}},
                          "metadata": {"labels": {"ignored": "yes"}}})
        assert resp.status == 200, resp.body
        node = resp.json()
        assert node["status"]["capacity"] == {"cpu": "2"}
        assert "labels" not in node["metadata"]
        resp = api.patch(f"/api/v1/nodes/{name}", {"status": {"capacity": {"cpu": "9"}}})
        assert resp.status == 200
        assert resp.json()["status"]["capacity"] == {"cpu": "2"}
    finally:
        api.delete(f"/api/v1/nodes/{name}")


def test_strategic_merge_patch_is_not_offered_for_unknown_types(api: Client,
                                                                namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    assert api.post(path, {"metadata": {"name": "cm"}}).status == 201
    resp = api.patch(path + "/cm", {"data": {}}, content_type="application/xml")
    assert resp.status == 415
    body = status_of(resp)
    assert body["message"].startswith(
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json"
    )
