"""Discovery, OpenAPI, health and metrics as clients read them over the wire from the live
server: legacy and aggregated discovery agree with each other and with what is served, the
OpenAPI v3 index points at documents that exist, and the operational endpoints answer."""

from __future__ import annotations

import re
import uuid

from tests.integration.live import CRD_PATH, crd, install_crd, wait_for
from tests.kube import Client, Server

AGGREGATED = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
              "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
              "application/json")


def test_health_endpoints_answer_ok(api: Client) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        resp = api.get(path, headers={"Accept": "*/*"})
        assert resp.status == 200, path
        assert resp.body == b"ok"
        assert resp.headers["content-type"].startswith("text/plain")


def test_health_is_public_but_resources_are_not(server: Server) -> None:
    anonymous = server.client(token=None)
    assert anonymous.get("/healthz").status == 200
    assert anonymous.get("/version").status == 200
    resp = anonymous.get("/api/v1/namespaces")
    assert resp.status == 401
    assert resp.json()["reason"] == "Unauthorized"


def test_metrics_count_requests_by_verb_and_code(api: Client) -> None:
    api.get("/api/v1/namespaces/default")
    api.get(f"/api/v1/namespaces/default/configmaps/missing-{uuid.uuid4().hex[:6]}")
    resp = api.get("/metrics", headers={"Accept": "text/plain"})
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.body.decode()
    assert "# TYPE apiserver_request_total counter" in text
    counts = {
        (m.group(1), m.group(2)): float(m.group(3))
        for m in re.finditer(r'^apiserver_request_total\{code="(\d+)",verb="(\w+)"\} (\S+)$',
                             text, re.M)
    }
    assert counts[("200", "GET")] >= 1
    assert counts[("404", "GET")] >= 1
    assert "apiserver_request_duration_seconds_bucket" in text

    def grown() -> bool:
        again = api.get("/metrics").body.decode()
        m = re.search(r'^apiserver_request_total\{code="404",verb="GET"\} (\S+)$', again, re.M)
        return m is not None and float(m.group(1)) > counts[("404", "GET")]

    api.get("/apis/nothing.example.com/v1")
    wait_for(grown, what="404 counter to grow")


def test_version(api: Client) -> None:
    body = api.get("/version").json()
    assert re.fullmatch(r"v1\.\d+\.\d+.*", body["gitVersion"])
    assert body["major"] == "1"


def test_legacy_and_aggregated_discovery_agree(api: Client) -> None:
    legacy_groups = {g["name"]: [v["version"] for v in g["versions"]]
                     for g in api.get("/apis").json()["groups"]}
    resp = api.get("/apis", headers={"Accept": AGGREGATED})
    assert resp.headers["content-type"] == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
    assert "Accept" in resp.headers.get("vary", "")
    aggregated = resp.json()
    assert aggregated["kind"] == "APIGroupDiscoveryList"
    assert aggregated["apiVersion"] == "apidiscovery.k8s.io/v2"
    agg_groups = {i["metadata"]["name"]: [v["version"] for v in i["versions"]]
                  for i in aggregated["items"]}
    assert agg_groups == legacy_groups
    for item in aggregated["items"]:
        for version in item["versions"]:
            listed = api.get(f"/apis/{item['metadata']['name']}/{version['version']}").json()
            legacy = {r["name"] for r in listed["resources"] if "/" not in r["name"]}
            assert {r["resource"] for r in version["resources"]} == legacy

    core = api.get("/api", headers={"Accept": AGGREGATED}).json()
    assert [i["metadata"].get("name", "") for i in core["items"]] == [""]
    core_resources = {r["resource"] for r in core["items"][0]["versions"][0]["resources"]}
    assert {"namespaces", "configmaps", "secrets"} <= core_resources
    legacy_core = api.get("/api").json()
    assert legacy_core["kind"] == "APIVersions" and legacy_core["versions"] == ["v1"]


def test_openapi_index_points_at_served_documents(api: Client) -> None:
    index = api.get("/openapi/v3").json()
    assert "api/v1" in index["paths"]
    for path in ("api/v1", "apis/apiextensions.k8s.io/v1"):
        url = index["paths"][path]["serverRelativeURL"]
        assert url.startswith(f"/openapi/v3/{path}?hash=")
        resp = api.get(url)
        if resp.status == 301:
            # A CRD finished going away (another test's cleanup) between the two reads: the
            # document moved on, and the redirect names its new hash.
            url = resp.headers["location"]
            resp = api.get(url)
        assert resp.status == 200
        digest = url.rsplit("=", 1)[1]
        assert resp.headers["etag"] == f'"{digest}"'
        assert "immutable" in resp.headers.get("cache-control", "")
        assert resp.json()["openapi"].startswith("3.")
    stale = api.get("/openapi/v3/api/v1?hash=0000")
    assert stale.status == 301
    assert stale.headers["location"].startswith("/openapi/v3/api/v1?hash=")


def test_openapi_hash_changes_when_a_crd_changes(api: Client) -> None:
    group = f"oa{uuid.uuid4().hex[:8]}.example.com"
    name = f"rivets.{group}"
    manifest = install_crd(api, crd(group, "rivets", "Rivet"))
    first = api.get("/openapi/v3").json()["paths"][f"apis/{group}/v1"]["serverRelativeURL"]
    manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = {
        "type": "object", "properties": {"size": {"type": "integer"}}}
    assert api.put(f"{CRD_PATH}/{name}", manifest).status == 200
    second = api.get("/openapi/v3").json()["paths"][f"apis/{group}/v1"]["serverRelativeURL"]
    assert first != second
    doc = api.get(second).json()
    schema = next(s for k, s in doc["components"]["schemas"].items() if k.endswith(".Rivet"))
    assert schema["properties"]["spec"]["properties"]["size"]["type"] == "integer"
    # The old URL now redirects to the new document.
    moved = api.get(first)
    assert moved.status == 301 and moved.headers["location"] == second
    api.delete(f"{CRD_PATH}/{name}")
