"""A CRD's life on the live server: status conditions and names, discovery and OpenAPI changing
as it is created, given a version and deleted, deletion emptying the resource first, several
versions with conversion strategy None, and invalid CRDs refused with kube's causes."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.live import CRD_PATH, Watch, crd, gone, install_crd, query, wait_for
from tests.kube import Client

AGGREGATED = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
              "application/json")


def unique_group(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}.example.com"


def groups_in_apis(api: Client) -> dict[str, list[str]]:
    body = api.get("/apis").json()
    return {g["name"]: [v["version"] for v in g["versions"]] for g in body["groups"]}


def aggregated_resources(api: Client, group: str) -> dict[str, list[str]] | None:
    """version -> resource names of ``group`` in aggregated discovery v2, or None if absent."""
    resp = api.get("/apis", headers={"Accept": AGGREGATED})
    assert resp.status == 200
    assert resp.headers["content-type"].startswith(
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    for item in resp.json()["items"]:
        if item["metadata"]["name"] == group:
            return {v["version"]: [r["resource"] for r in v["resources"]]
                    for v in item["versions"]}
    return None


def openapi_paths(api: Client) -> set[str]:
    return set(api.get("/openapi/v3").json()["paths"])


def test_established_conditions_names_and_stored_versions(api: Client) -> None:
    group = unique_group("st")
    created = install_crd(api, crd(group, "gizmos", "Gizmo", versions=("v1", "v2"),
                                   storage="v2"))
    status = created["status"]
    conditions = {c["type"]: c for c in status["conditions"]}
    for kind in ("NamesAccepted", "Established"):
        assert conditions[kind]["status"] == "True"
        assert conditions[kind]["reason"] and conditions[kind]["lastTransitionTime"]
    assert conditions["NamesAccepted"]["reason"] == "NoConflicts"
    assert status["acceptedNames"] == {"plural": "gizmos", "singular": "gizmo",
                                       "kind": "Gizmo", "listKind": "GizmoList"}
    assert status["storedVersions"] == ["v2"]
    assert "customresourcecleanup.apiextensions.k8s.io" in created["metadata"]["finalizers"]

    # Moving storage to v1 keeps v2 in storedVersions (objects may still be stored as v2).
    created["spec"]["versions"][0]["storage"] = True
    created["spec"]["versions"][1]["storage"] = False
    resp = api.put(f"{CRD_PATH}/gizmos.{group}", created)
    assert resp.status == 200, resp.body
    wait_for(lambda: api.get(f"{CRD_PATH}/gizmos.{group}").json()["status"]
             ["storedVersions"] == ["v2", "v1"], what="v1 in storedVersions")
    api.delete(f"{CRD_PATH}/gizmos.{group}")


def test_discovery_and_openapi_follow_create_update_delete(api: Client) -> None:
    group = unique_group("disc")
    name = f"sprockets.{group}"
    assert group not in groups_in_apis(api)
    assert f"apis/{group}/v1" not in openapi_paths(api)

    manifest = install_crd(api, crd(group, "sprockets", "Sprocket"))
    assert groups_in_apis(api)[group] == ["v1"]
    resources = api.get(f"/apis/{group}/v1").json()
    assert resources["kind"] == "APIResourceList"
    assert resources["groupVersion"] == f"{group}/v1"
    sprocket = next(r for r in resources["resources"] if r["name"] == "sprockets")
    assert sprocket["kind"] == "Sprocket" and sprocket["namespaced"] is True
    assert "watch" in sprocket["verbs"]
    assert aggregated_resources(api, group) == {"v1": ["sprockets"]}
    assert f"apis/{group}/v1" in openapi_paths(api)
    doc = api.get(f"/openapi/v3/apis/{group}/v1").json()
    assert any(p.endswith("/sprockets") for p in doc["paths"])

    # A new, preferred version appears everywhere at once.
    manifest["spec"]["versions"].append({**manifest["spec"]["versions"][0], "name": "v2",
                                         "storage": False})
    assert api.put(f"{CRD_PATH}/{name}", manifest).status == 200
    assert groups_in_apis(api)[group] == ["v2", "v1"]
    group_doc = api.get(f"/apis/{group}").json()
    assert group_doc["preferredVersion"]["version"] == "v2"
    assert api.get(f"/apis/{group}/v2").status == 200
    assert aggregated_resources(api, group) == {"v2": ["sprockets"], "v1": ["sprockets"]}
    assert {f"apis/{group}/v1", f"apis/{group}/v2"} <= openapi_paths(api)

    assert api.delete(f"{CRD_PATH}/{name}").status == 200
    wait_for(gone(api, f"{CRD_PATH}/{name}"), what="CRD deleted")
    assert group not in groups_in_apis(api)
    assert api.get(f"/apis/{group}/v1").status == 404
    assert aggregated_resources(api, group) is None
    assert not {f"apis/{group}/v1", f"apis/{group}/v2"} & openapi_paths(api)
    assert api.get(f"/openapi/v3/apis/{group}/v1").status == 404


def test_deleting_a_crd_deletes_its_objects_first(api: Client, namespace: str) -> None:
    group = unique_group("del")
    name = f"cogs.{group}"
    install_crd(api, crd(group, "cogs", "Cog"))
    path = f"/apis/{group}/v1/namespaces/{namespace}/cogs"
    for i in range(3):
        resp = api.post(path, {"apiVersion": f"{group}/v1", "kind": "Cog",
                               "metadata": {"name": f"c{i}"}})
        assert resp.status == 201, resp.body
    resp = api.post(path, {"apiVersion": f"{group}/v1", "kind": "Cog",
                           "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    assert resp.status == 201

    with Watch(api, query(path, watch="true", resourceVersion="0")) as w:
        assert {w.next()["type"] for _ in range(4)} == {"ADDED"}
        resp = api.delete(f"{CRD_PATH}/{name}")
        assert resp.status == 200
        body = resp.json()
        assert body["metadata"]["deletionTimestamp"]
        assert "customresourcecleanup.apiextensions.k8s.io" in body["metadata"]["finalizers"]
        deleted = {w.next()["object"]["metadata"]["name"] for _ in range(3)}
        assert deleted == {"c0", "c1", "c2"}
        # The object with a finalizer is marked; the CRD waits for it.
        marked = w.until(lambda e: e["type"] == "MODIFIED")
        assert marked["object"]["metadata"]["name"] == "held"
        crd_now = api.get(f"{CRD_PATH}/{name}")
        assert crd_now.status == 200
        conditions = {c["type"]: c["status"] for c in crd_now.json()["status"]["conditions"]}
        assert conditions["Established"] == "True"
        assert api.patch(f"{path}/held", {"metadata": {"finalizers": None}}).status == 200
        assert w.next()["type"] == "DELETED"
    wait_for(gone(api, f"{CRD_PATH}/{name}"), what="CRD deleted")
    assert api.get(path).status == 404
    assert api.get(f"/apis/{group}/v1").status == 404


def test_versions_with_conversion_none(api: Client, namespace: str) -> None:
    group = unique_group("ver")
    install_crd(api, crd(group, "bolts", "Bolt", versions=("v1beta1", "v1"), storage="v1"))
    v1 = f"/apis/{group}/v1/namespaces/{namespace}/bolts"
    beta = f"/apis/{group}/v1beta1/namespaces/{namespace}/bolts"

    resp = api.post(beta, {"apiVersion": f"{group}/v1beta1", "kind": "Bolt",
                           "metadata": {"name": "old"}, "spec": {"size": 3}})
    assert resp.status == 201, resp.body
    assert resp.json()["apiVersion"] == f"{group}/v1beta1"
    as_v1 = api.get(f"{v1}/old").json()
    assert as_v1["apiVersion"] == f"{group}/v1"
    assert as_v1["spec"] == {"size": 3}

    resp = api.post(v1, {"apiVersion": f"{group}/v1", "kind": "Bolt",
                         "metadata": {"name": "new"}, "spec": {"size": 5}})
    assert resp.status == 201
    as_beta = api.get(f"{beta}/new").json()
    assert as_beta["apiVersion"] == f"{group}/v1beta1"
    assert as_beta["spec"] == {"size": 5}
    assert as_beta["metadata"]["uid"] == resp.json()["metadata"]["uid"]

    listed = api.get(beta).json()
    assert listed["apiVersion"] == f"{group}/v1beta1"
    assert {i["apiVersion"] for i in listed["items"]} == {f"{group}/v1beta1"}
    assert len(listed["items"]) == 2

    # A write through one version is visible through the other; the resourceVersion is shared.
    patched = api.patch(f"{beta}/new", {"spec": {"size": 6}}).json()
    assert patched["apiVersion"] == f"{group}/v1beta1"
    again = api.get(f"{v1}/new").json()
    assert again["spec"]["size"] == 6
    assert again["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]

    with Watch(api, query(beta, watch="true", resourceVersion="0")) as w:
        events = [w.next(), w.next()]
    assert {e["object"]["apiVersion"] for e in events} == {f"{group}/v1beta1"}

    # Objects written before the storage version moved are still served at the asked version.
    crd_obj = api.get(f"{CRD_PATH}/bolts.{group}").json()
    for version in crd_obj["spec"]["versions"]:
        version["storage"] = version["name"] == "v1beta1"
    assert api.put(f"{CRD_PATH}/bolts.{group}", crd_obj).status == 200
    for path, version in ((v1, "v1"), (beta, "v1beta1")):
        for name in ("old", "new"):
            assert api.get(f"{path}/{name}").json()["apiVersion"] == f"{group}/{version}"
        assert {i["apiVersion"] for i in api.get(path).json()["items"]} == {
            f"{group}/{version}"}
    crd_obj["spec"]["versions"] = [{**v, "storage": v["name"] == "v1"}
                                   for v in crd_obj["spec"]["versions"]]
    assert api.patch(f"{CRD_PATH}/bolts.{group}",
                     {"spec": {"versions": crd_obj["spec"]["versions"]}}).status == 200

    stored = api.get(f"{CRD_PATH}/bolts.{group}").json()
    assert stored["status"]["storedVersions"] == ["v1", "v1beta1"]
    assert [v["name"] for v in stored["spec"]["versions"] if v["storage"]] == ["v1"]
    api.delete(f"{CRD_PATH}/bolts.{group}")


def _refused(api: Client, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    resp = api.post(CRD_PATH, manifest)
    assert resp.status == 422, resp.body
    body = resp.json()
    assert body["reason"] == "Invalid"
    assert body["details"]["kind"] == "CustomResourceDefinition"
    assert body["details"]["group"] == "apiextensions.k8s.io"
    causes: list[dict[str, Any]] = body["details"]["causes"]
    assert causes
    assert api.get(f"{CRD_PATH}/{manifest['metadata']['name']}").status == 404
    return causes


def test_non_structural_schema_is_invalid(api: Client) -> None:
    manifest = crd(unique_group("bad"), "things", "Thing")
    manifest["spec"]["versions"][0]["schema"] = {"openAPIV3Schema": {
        "type": "object", "properties": {"spec": {"properties": {"x": {"type": "string"}}}},
    }}
    causes = _refused(api, manifest)
    # As kube: one schema shared by every version is hoisted to spec.validation internally,
    # so that is the path its causes name.
    assert {"reason": "FieldValueRequired",
            "field": "spec.validation.openAPIV3Schema.properties[spec].type",
            "message": "Required value: must not be empty for specified object fields"} in causes


def test_name_must_be_plural_dot_group(api: Client) -> None:
    manifest = crd(unique_group("bad"), "things", "Thing")
    manifest["metadata"]["name"] = "wrong.example.com"
    causes = _refused(api, manifest)
    cause = next(c for c in causes if c.get("field") == "metadata.name")
    assert cause["reason"] == "FieldValueInvalid"
    assert "must be spec.names.plural+\".\"+spec.group" in cause["message"]


def test_exactly_one_storage_version(api: Client) -> None:
    manifest = crd(unique_group("bad"), "things", "Thing", versions=("v1", "v2"))
    manifest["spec"]["versions"][1]["storage"] = True
    causes = _refused(api, manifest)
    cause = next(c for c in causes if c.get("field") == "spec.versions")
    assert cause["message"].endswith("must have exactly one version marked as storage version")
