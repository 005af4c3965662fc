"""The Management plane issue's bad inputs, on both servers: each broken request gets the same
Status, and the server keeps serving (a disconnect mid-watch included)."""

from __future__ import annotations

import urllib3

from tests.differential.conftest import GROUP, answer, ok, widget
from tests.kube import Client, Server

LIMIT = 3 * 1024 * 1024


def cms(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


def test_malformed_json(api: Client, ns: str) -> None:
    got = answer(api.post(cms(ns), None, raw=b'{"metadata": }'))
    assert (got["code"], got["reason"]) == (400, "BadRequest")


def test_empty_body(api: Client, ns: str) -> None:
    assert answer(api.post(cms(ns), None, raw=b"")) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": "the object provided is unrecognized (must be of type ConfigMap): couldn't "
                   "get version/kind; json parse error: unexpected end of JSON input (<empty>)"}


def test_malformed_yaml(api: Client, ns: str) -> None:
    got = answer(api.post(cms(ns), None, raw=b"metadata: {name: x\n",
                          content_type="application/yaml"))
    assert (got["code"], got["reason"]) == (400, "BadRequest")


def test_kind_that_does_not_match_the_url(api: Client, ns: str) -> None:
    assert answer(api.post(cms(ns), {"apiVersion": "v1", "kind": "Secret",
                                     "metadata": {"name": "x"}})) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": 'Secret in version "v1" cannot be handled as a ConfigMap: converting '
                   "(v1.Secret) to (core.ConfigMap): unknown conversion"}


def test_unknown_resource(api: Client) -> None:
    not_found = {"code": 404, "status": "Failure", "reason": "NotFound",
                 "message": "the server could not find the requested resource"}
    assert answer(api.get("/api/v1/things")) == not_found
    assert answer(api.get("/apis/apps/v1/things")) == not_found
    # An unknown group is a plain-text 404 from kube's mux (Shipyard sends the Status).
    assert api.get("/apis/nope.example.com/v1/things").status == 404


def test_unknown_fields_under_strict(api: Client, widgets: str, ns: str) -> None:
    body = widget("w", replicas=1)
    body["spec"]["bogus"] = 1
    body["metadata"]["bogusMeta"] = 2
    assert answer(api.post(widgets + "?fieldValidation=Strict", body)) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": 'Widget in version "v1" cannot be handled as a Widget: strict decoding '
                   'error: unknown field "metadata.bogusMeta", unknown field "spec.bogus"'}
    ok(api.post(widgets, widget("w")), 201)
    got = answer(api.patch(f"{widgets}/w?fieldValidation=Strict", {"spec": {"bogus": 1}}))
    assert (got["code"], got["reason"]) == (422, "Invalid")
    assert got["message"].endswith('strict decoding error: unknown field "spec.bogus"')


def test_unknown_fields_under_strict_on_a_built_in(api: Client, ns: str) -> None:
    assert answer(api.post(cms(ns) + "?fieldValidation=Strict",
                           {"metadata": {"name": "c"}, "bogus": 1})) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": 'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict '
                   'decoding error: unknown field "bogus"'}


def test_body_over_three_mebibytes(api: Client, ns: str) -> None:
    big = {"metadata": {"name": "big"}, "data": {"blob": "x" * (LIMIT + 10)}}
    assert answer(api.post(cms(ns), big)) == {
        "code": 413, "status": "Failure", "reason": "RequestEntityTooLarge",
        "message": f"Request entity too large: limit is {LIMIT}"}


def test_deeply_nested_document(api: Client, ns: str) -> None:
    depth = 20_000
    raw = b'{"metadata":{"name":"deep"},"data":' + b"[" * depth + b"]" * depth + b"}"
    got = answer(api.post(cms(ns), None, raw=raw))
    assert (got["code"], got["reason"]) == (400, "BadRequest")
    assert api.get(f"{cms(ns)}/deep").status == 404


def test_update_without_resource_version_on_a_custom_resource(api: Client,
                                                              widgets: str) -> None:
    ok(api.post(widgets, widget("w")), 201)
    got = answer(api.put(f"{widgets}/w", widget("w", replicas=2)))
    assert got["code"] == 422
    assert got["details"]["causes"][0]["field"] == "metadata.resourceVersion"


def test_client_disconnecting_mid_watch(kube: Server, api: Client, ns: str) -> None:
    ok(api.post(cms(ns), {"metadata": {"name": "a"}}), 201)
    for _ in range(3):
        pool = urllib3.PoolManager(ca_certs=str(kube.ca_file), retries=False)
        resp = pool.request("GET", f"{kube.url}{cms(ns)}?watch=true",
                            headers={"Authorization": f"Bearer {kube.token}"},
                            preload_content=False, timeout=urllib3.Timeout(connect=5, read=10))
        assert resp.status == 200
        first = b""
        while b"\n" not in first:
            first += resp.read1(65536)
        assert first.startswith(b'{"type":"ADDED"')
        resp.close()
        pool.clear()
    ok(api.post(cms(ns), {"metadata": {"name": "after"}}), 201)
    assert [i["metadata"]["name"] for i in ok(api.get(cms(ns)))["items"]] == ["a", "after"]


def test_wrong_group_version_in_body(api: Client, widgets: str) -> None:
    body = {**widget("w"), "apiVersion": f"{GROUP}/v2"}
    got = answer(api.post(widgets, body))
    assert got == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": f"the API version in the data ({GROUP}/v2) does not match the expected API "
                   f"version ({GROUP}/v1)"}
