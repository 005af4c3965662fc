"""Discovery documents: shapes kubectl, kopf and the Python client read; Accept negotiation."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from kubernetes import client

from shipyard.apiserver.builtins import BUILTINS
from shipyard.apiserver.discovery import (
    CONTENT_TYPE_V2,
    CONTENT_TYPE_V2BETA1,
    aggregated_discovery,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    discovery_response,
    negotiate_discovery,
    storage_version_hash,
    version_info,
)
from shipyard.apiserver.registry import Registry
from shipyard.apiserver.resources import ResourceInfo, ScaleSubresource

KUBECTL_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


def machine(version: str = "v1beta2", storage: str = "") -> ResourceInfo:
    return ResourceInfo(
        group="cluster.x-k8s.io", version=version, resource="machinesets", kind="MachineSet",
        list_kind="MachineSetList", singular="machineset", namespaced=True,
        short_names=("ms",), categories=("cluster-api",), status=True,
        scale=ScaleSubresource(".spec.replicas", ".status.replicas", ".status.selector"),
        storage_version=storage,
    )


@pytest.fixture
def registry() -> Registry:
    reg = Registry(BUILTINS)
    reg.set_crd("machinesets.cluster.x-k8s.io", [machine(), machine("v1beta1", "v1beta2")])
    return reg


def deserialize(data: Any, klass: str) -> Any:
    api = client.ApiClient()
    return api._ApiClient__deserialize(json.loads(json.dumps(data)), klass)  # type: ignore[attr-defined]


def test_content_types_are_exactly_what_kubectl_matches() -> None:
    assert CONTENT_TYPE_V2 == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    assert CONTENT_TYPE_V2BETA1 == (
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    )


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (KUBECTL_ACCEPT, "v2"),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", "v2beta1"),
        ("application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io", "v2"),
        ("application/json", "legacy"),
        ("application/json, */*", "legacy"),
        ("", "legacy"),
        ("*/*", "legacy"),
        ("application/json;q=0.5,application/json;g=apidiscovery.k8s.io;v=v2;"
         "as=APIGroupDiscoveryList", "v2"),
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.1,"
         "application/json", "legacy"),
        ("application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;"
         "as=APIGroupDiscoveryList,application/json", "legacy"),
        ("application/json;as=Table;v=v1;g=meta.k8s.io", "legacy"),
    ],
)
def test_negotiate_discovery(accept: str, expected: str) -> None:
    assert negotiate_discovery(accept) == expected


def test_storage_version_hash_matches_kube() -> None:
    # Values a real kube-apiserver publishes in /api/v1 and /apis/coordination.k8s.io/v1.
    assert storage_version_hash("", "v1", "ConfigMap") == "qFsyl6wFWjQ="
    assert storage_version_hash("", "v1", "Namespace") == "Q3oi5N2YM8M="
    assert storage_version_hash("coordination.k8s.io", "v1", "Lease") == "gqkMMb/YqFM="


def test_api_versions_and_version_info_deserialize() -> None:
    doc = api_versions("10.0.0.1:6443")
    model = deserialize(doc, "V1APIVersions")
    assert model.versions == ["v1"]
    assert model.server_address_by_client_cidrs[0].server_address == "10.0.0.1:6443"
    info = version_info("v1.32.4+shipyard")
    assert (info["major"], info["minor"], info["gitVersion"]) == ("1", "32", "v1.32.4+shipyard")
    assert deserialize(info, "VersionInfo").minor == "32"
    assert version_info()["minor"] == "33"


def test_group_list_orders_builtin_groups_then_crds(registry: Registry) -> None:
    doc = api_group_list(registry)
    assert [g["name"] for g in doc["groups"]] == [
        "apps", "events.k8s.io", "authentication.k8s.io", "authorization.k8s.io", "policy",
        "apiextensions.k8s.io", "coordination.k8s.io", "cluster.x-k8s.io"]
    capi = doc["groups"][-1]
    assert capi["preferredVersion"] == {"groupVersion": "cluster.x-k8s.io/v1beta2",
                                        "version": "v1beta2"}
    assert [v["version"] for v in capi["versions"]] == ["v1beta2", "v1beta1"]
    model = deserialize(doc, "V1APIGroupList")
    assert model.groups[-1].preferred_version.group_version == "cluster.x-k8s.io/v1beta2"
    assert deserialize(api_group(registry, "cluster.x-k8s.io"), "V1APIGroup").name == (
        "cluster.x-k8s.io")
    assert api_group(registry, "nope.example.com") is None


def test_core_resource_list(registry: Registry) -> None:
    doc = api_resource_list(registry, "", "v1")
    assert doc is not None
    assert "apiVersion" not in doc and doc["groupVersion"] == "v1"
    names = [r["name"] for r in doc["resources"]]
    assert names == sorted(names)
    assert "namespaces/status" in names and "nodes/status" in names
    ns = next(r for r in doc["resources"] if r["name"] == "namespaces")
    assert ns == {
        "name": "namespaces", "singularName": "namespace", "namespaced": False,
        "kind": "Namespace", "verbs": ["create", "delete", "get", "list", "patch", "update",
                                       "watch"],
        "shortNames": ["ns"], "storageVersionHash": "Q3oi5N2YM8M=",
    }
    status = next(r for r in doc["resources"] if r["name"] == "namespaces/status")
    assert status["verbs"] == ["get", "patch", "update"] and status["kind"] == "Namespace"
    model = deserialize(doc, "V1APIResourceList")
    assert {r.name for r in model.resources} == set(names)


def test_crd_resource_list_with_scale_and_status(registry: Registry) -> None:
    doc = api_resource_list(registry, "cluster.x-k8s.io", "v1beta1")
    assert doc is not None
    assert doc["apiVersion"] == "v1" and doc["groupVersion"] == "cluster.x-k8s.io/v1beta1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["machinesets/scale"] == {
        "name": "machinesets/scale", "singularName": "", "namespaced": True,
        "group": "autoscaling", "version": "v1", "kind": "Scale",
        "verbs": ["get", "patch", "update"],
    }
    main = by_name["machinesets"]
    assert main["categories"] == ["cluster-api"] and main["shortNames"] == ["ms"]
    # every served version reports the storage version's hash
    assert main["storageVersionHash"] == storage_version_hash(
        "cluster.x-k8s.io", "v1beta2", "MachineSet")
    assert api_resource_list(registry, "cluster.x-k8s.io", "v9") is None
    deserialize(doc, "V1APIResourceList")


def test_aggregated_discovery(registry: Registry) -> None:
    core = aggregated_discovery(registry, legacy_api=True)
    assert core["kind"] == "APIGroupDiscoveryList"
    assert core["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert len(core["items"]) == 1 and core["items"][0]["metadata"] == {"creationTimestamp": None}
    [v1] = core["items"][0]["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    cm = next(r for r in v1["resources"] if r["resource"] == "configmaps")
    assert cm == {
        "resource": "configmaps", "responseKind": {"group": "", "kind": "ConfigMap", "version": ""},
        "scope": "Namespaced", "singularResource": "configmap",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update",
                  "watch"],
        "shortNames": ["cm"],
    }

    apis = aggregated_discovery(registry, legacy_api=False, fmt="v2beta1")
    assert apis["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    capi = apis["items"][-1]
    assert capi["metadata"]["name"] == "cluster.x-k8s.io"
    assert [v["version"] for v in capi["versions"]] == ["v1beta2", "v1beta1"]
    [ms] = capi["versions"][0]["resources"]
    assert ms["scope"] == "Namespaced"
    assert ms["responseKind"] == {"group": "cluster.x-k8s.io", "kind": "MachineSet",
                                  "version": "v1beta2"}
    assert ms["subresources"] == [
        {"subresource": "scale", "responseKind": {"group": "autoscaling", "kind": "Scale",
                                                  "version": "v1"},
         "verbs": ["get", "patch", "update"]},
        {"subresource": "status", "responseKind": ms["responseKind"],
         "verbs": ["get", "patch", "update"]},
    ]


def test_discovery_response_routes_negotiates_and_caches(registry: Registry) -> None:
    body, ctype = discovery_response(registry, "/apis", KUBECTL_ACCEPT) or (b"", "")
    assert ctype == CONTENT_TYPE_V2
    assert orjson.loads(body)["kind"] == "APIGroupDiscoveryList"
    again = discovery_response(registry, "/apis", KUBECTL_ACCEPT)
    assert again is not None and again[0] is body  # cached until the registry changes

    legacy = discovery_response(registry, "/api", "application/json")
    assert legacy is not None
    assert legacy[1] == "application/json" and orjson.loads(legacy[0])["kind"] == "APIVersions"

    group_version = discovery_response(registry, "/apis/cluster.x-k8s.io/v1beta2", KUBECTL_ACCEPT)
    assert group_version is not None
    assert orjson.loads(group_version[0])["kind"] == "APIResourceList"
    group = discovery_response(registry, "/apis/cluster.x-k8s.io", "")
    assert group is not None and orjson.loads(group[0])["kind"] == "APIGroup"
    assert discovery_response(registry, "/apis/nope.io/v1", "") is None
    assert discovery_response(registry, "/apis/nope.io", "") is None
    assert discovery_response(registry, "/api/v2", "") is None

    registry.set_crd("machinesets.cluster.x-k8s.io", [])
    fresh = discovery_response(registry, "/apis", KUBECTL_ACCEPT)
    assert fresh is not None and fresh[0] is not body
    assert b"cluster.x-k8s.io" not in fresh[0]
