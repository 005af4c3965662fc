"""OpenAPI v3 documents as kubectl reads them (validation opt-out, patch type, explain) and v2."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from shipyard.apiserver.builtins import BUILTINS
from shipyard.apiserver.openapi import (
    V2_CONTENT_TYPE,
    V2_PROTOBUF_DOCUMENT,
    openapi_v3_document,
    openapi_v3_index,
    schema_name,
)
from shipyard.apiserver.registry import Registry
from shipyard.apiserver.resources import ResourceInfo, ScaleSubresource

MACHINE_SCHEMA = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "description": "MachineSpec defines the desired state.",
                 "properties": {"clusterName": {"type": "string"},
                                "replicas": {"type": "integer"}}},
    },
}
SMP = "application/strategic-merge-patch+json"


def machine_info(**kw: Any) -> ResourceInfo:
    base: dict[str, Any] = dict(
        group="cluster.x-k8s.io", version="v1beta2", resource="machines", kind="Machine",
        list_kind="MachineList", singular="machine", namespaced=True, status=True,
        scale=ScaleSubresource(".spec.replicas", ".status.replicas"), schema=MACHINE_SCHEMA,
    )
    base.update(kw)
    return ResourceInfo(**base)


@pytest.fixture
def registry() -> Registry:
    reg = Registry(BUILTINS)
    reg.set_crd("machines.cluster.x-k8s.io", [machine_info()])
    return reg


def document(registry: Registry, path: str) -> dict[str, Any]:
    found = openapi_v3_document(registry, path)
    assert found is not None
    result: dict[str, Any] = orjson.loads(found[0])
    return result


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items()
            for method, op in item.items() if method != "parameters"]


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "allOf" in schema or "$ref" in schema:
        schema = schema["allOf"][0] if "allOf" in schema else schema
        if "$ref" in schema:
            schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_index_points_at_every_group_version_with_its_hash(registry: Registry) -> None:
    index = openapi_v3_index(registry)
    assert set(index["paths"]) == {
        "api/v1", "apis/coordination.k8s.io/v1", "apis/events.k8s.io/v1",
        "apis/apiextensions.k8s.io/v1", "apis/cluster.x-k8s.io/v1beta2", "apis/policy/v1",
        "apis/apps/v1", "apis/authentication.k8s.io/v1", "apis/authorization.k8s.io/v1"}
    for path, entry in index["paths"].items():
        body, digest = openapi_v3_document(registry, path) or (b"", "")
        assert digest == hashlib.sha512(body).hexdigest().upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{path}?hash={digest}"
    assert openapi_v3_document(registry, "apis/nope/v1") is None


def test_hash_changes_with_the_document_and_documents_are_cached(registry: Registry) -> None:
    before = openapi_v3_document(registry, "apis/cluster.x-k8s.io/v1beta2")
    assert before is not None
    assert openapi_v3_document(registry, "apis/cluster.x-k8s.io/v1beta2") is before
    core_before = openapi_v3_document(registry, "api/v1")
    registry.set_crd("machines.cluster.x-k8s.io", [machine_info(short_names=("ma",),
                                                                status=False)])
    after = openapi_v3_document(registry, "apis/cluster.x-k8s.io/v1beta2")
    assert after is not None and after[1] != before[1]
    core_after = openapi_v3_document(registry, "api/v1")
    assert core_before is not None and core_after is not None
    assert core_after[1] == core_before[1]  # unchanged document, unchanged hash


def test_every_operation_carries_action_and_gvk_map(registry: Registry) -> None:
    for path in openapi_v3_index(registry)["paths"]:
        doc = document(registry, path)
        assert doc["openapi"].startswith("3.0")
        for _, _, op in operations(doc):
            assert op["x-kubernetes-action"] in {
                "get", "list", "post", "put", "patch", "delete", "deletecollection", "watch",
                "watchlist"}
            assert set(op["x-kubernetes-group-version-kind"]) == {"group", "version", "kind"}


def test_crd_layout_and_patch_types(registry: Registry) -> None:
    doc = document(registry, "apis/cluster.x-k8s.io/v1beta2")
    base = "/apis/cluster.x-k8s.io/v1beta2"
    assert {
        f"{base}/namespaces/{{namespace}}/machines",
        f"{base}/namespaces/{{namespace}}/machines/{{name}}",
        f"{base}/namespaces/{{namespace}}/machines/{{name}}/status",
        f"{base}/namespaces/{{namespace}}/machines/{{name}}/scale",
        f"{base}/machines",
        f"{base}/watch/namespaces/{{namespace}}/machines",
    } <= set(doc["paths"])
    item = doc["paths"][f"{base}/namespaces/{{namespace}}/machines/{{name}}"]
    assert set(item) == {"parameters", "get", "put", "patch", "delete"}
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "cluster.x-k8s.io", "version": "v1beta2", "kind": "Machine"}
    assert patch["operationId"] == "patchClusterXK8sIoV1beta2NamespacedMachine"
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json",
        "application/apply-patch+yaml"}
    names = {p["name"] for p in patch["parameters"]}
    assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names
    assert all(p["in"] == "query" for p in patch["parameters"])  # inlined, as kubectl needs
    collection = doc["paths"][f"{base}/namespaces/{{namespace}}/machines"]
    assert set(collection) == {"parameters", "get", "post", "delete"}
    assert collection["delete"]["x-kubernetes-action"] == "deletecollection"
    scale = doc["paths"][f"{base}/namespaces/{{namespace}}/machines/{{name}}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]


def test_builtins_offer_strategic_merge_patch(registry: Registry) -> None:
    doc = document(registry, "api/v1")
    cm = doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"]
    assert SMP in cm["requestBody"]["content"]
    assert cm["operationId"] == "patchCoreV1NamespacedConfigMap"
    ns = doc["paths"]["/api/v1/namespaces/{name}"]["patch"]
    assert ns["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1",
                                                      "kind": "Namespace"}
    assert any(p["name"] == "fieldValidation" for p in ns["parameters"])
    # Namespaces have no deletecollection upstream.
    assert "delete" not in doc["paths"]["/api/v1/namespaces"]
    assert "/api/v1/namespaces/{name}/status" in doc["paths"]
    crd = document(registry, "apis/apiextensions.k8s.io/v1")
    assert "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition" \
        in crd["components"]["schemas"]


def test_schema_names_follow_kube() -> None:
    by_resource = {(i.group, i.resource): i for i in BUILTINS}
    assert schema_name(by_resource[("", "configmaps")]) == "io.k8s.api.core.v1.ConfigMap"
    assert schema_name(by_resource[("coordination.k8s.io", "leases")]) == (
        "io.k8s.api.coordination.v1.Lease")
    assert schema_name(by_resource[("events.k8s.io", "events")]) == "io.k8s.api.events.v1.Event"
    assert schema_name(machine_info()) == "io.x-k8s.cluster.v1beta2.Machine"
    assert schema_name(machine_info(), "MachineList") == "io.x-k8s.cluster.v1beta2.MachineList"


def test_explain_can_walk_from_path_gvk_to_schema(registry: Registry) -> None:
    """What kubectl explain machine.spec does: the GVK of an op finds the schema by its list."""
    doc = document(registry, "apis/cluster.x-k8s.io/v1beta2")
    gvk = {"group": "cluster.x-k8s.io", "version": "v1beta2", "kind": "Machine"}
    assert any(op["x-kubernetes-group-version-kind"] == gvk for _, _, op in operations(doc))
    [root] = [s for s in doc["components"]["schemas"].values()
              if gvk in s.get("x-kubernetes-group-version-kind", [])]
    spec = resolve(doc, root["properties"]["spec"])
    assert spec["description"] == "MachineSpec defines the desired state."
    assert set(spec["properties"]) == {"clusterName", "replicas"}
    meta = resolve(doc, root["properties"]["metadata"])
    assert {"name", "namespace", "labels", "ownerReferences", "managedFields"} <= set(
        meta["properties"])
    owner = resolve(doc, meta["properties"]["ownerReferences"]["items"])
    assert owner["required"] == ["apiVersion", "kind", "name", "uid"]
    listed = doc["components"]["schemas"]["io.x-k8s.cluster.v1beta2.MachineList"]
    assert listed["x-kubernetes-group-version-kind"] == [{**gvk, "kind": "MachineList"}]


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_every_ref_resolves(registry: Registry) -> None:
    for path in openapi_v3_index(registry)["paths"]:
        doc = document(registry, path)
        found = refs(doc)
        assert found
        for ref in found:
            assert ref.removeprefix("#/components/schemas/") in doc["components"]["schemas"]


def test_openapi_v2_is_a_minimal_gnostic_document() -> None:
    assert V2_CONTENT_TYPE == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    # field 1 (swagger), wire type 2, length 3, "2.0"
    assert V2_PROTOBUF_DOCUMENT == b"\x0a\x03" + b"2.0"
