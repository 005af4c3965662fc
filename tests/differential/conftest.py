"""The differential API behaviour suite: every test body runs against Shipyard's API server and
against upstream kube-apiserver (+ etcd + kube-controller-manager), and asserts that each
answers the *same fixed expectation*.

Contract:

* ``kube`` (session, parametrised ``ids=["shipyard", "realkube"]``) is the `tests.kube.Server`
  under test. The real cluster starts once per session; where its binaries are missing the
  ``realkube`` half skips with the reason (``scripts/build-kube-binaries`` builds them).
* ``api`` is a `Client` on it, ``ns`` a fresh namespace (deleted afterwards, without waiting),
  ``widgets`` the path prefix of this suite's CRD (group `GROUP`, installed once per server).
* ``@pytest.mark.shipyard_differs(reason=...)`` marks a test whose Shipyard half is a known,
  documented difference (docs/differences.md): that half becomes ``xfail(strict=True)``, so it
  turns red the day the difference disappears; the real half still has to pass.
* `answer()` and `normalised()` turn a response into what both servers must agree on: status
  code, reason, message and causes; objects with uid, timestamps and resourceVersion *values*
  replaced by placeholders (so their presence still counts).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.kube import Client, Response, Server

GROUP = "differential.shipyard.test"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

WIDGET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.replicas <= 10", "message": "replicas must be at most 10"},
                {"rule": "!has(self.mode) || self.mode != 'off' || self.replicas == 0",
                 "messageExpression": "'mode ' + self.mode + ' needs 0 replicas'",
                 "reason": "FieldValueForbidden", "fieldPath": ".mode"},
            ],
            "properties": {
                "replicas": {"type": "integer", "default": 1, "minimum": 0},
                "mode": {"type": "string", "default": "auto", "maxLength": 8,
                         "enum": ["auto", "manual", "off"]},
                "size": {"type": "string", "maxLength": 8},
                "owner": {"type": "string",
                          "x-kubernetes-validations": [
                              {"rule": "self == oldSelf", "message": "owner is immutable"}]},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "required": ["name"], "properties": {
                              "name": {"type": "string"}, "port": {"type": "integer"}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set",
                         "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
                "config": {"type": "object", "additionalProperties": {"type": "string"}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {
            "replicas": {"type": "integer"}, "phase": {"type": "string"},
            "selector": {"type": "string"}}},
    },
}

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP, "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "listKind": "WidgetList", "shortNames": ["wdg"], "categories": ["diff"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": WIDGET_SCHEMA},
            "subresources": {"status": {}, "scale": {
                "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.selector"}},
            "additionalPrinterColumns": [
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                {"name": "Mode", "type": "string", "jsonPath": ".spec.mode",
                 "description": "how replicas are chosen"},
                {"name": "Size", "type": "string", "jsonPath": ".spec.size", "priority": 1},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
        }],
    },
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "shipyard_differs(reason): a documented difference; the shipyard half of "
                   "the test is xfail(strict=True)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("shipyard_differs")
        callspec = getattr(item, "callspec", None)
        if marker is None or callspec is None or callspec.params.get("kube") != "shipyard":
            continue
        item.add_marker(pytest.mark.xfail(strict=True, reason=marker.kwargs["reason"]))


@pytest.fixture(scope="session", params=["shipyard", "realkube"], ids=["shipyard", "realkube"])
def kube(request: pytest.FixtureRequest) -> Server:
    if request.param == "shipyard":
        server: Server = request.getfixturevalue("server")
        return server
    cluster = request.getfixturevalue("realkube")
    real: Server = cluster.server
    return real


@pytest.fixture
def api(kube: Server) -> Client:
    return kube.client()


@pytest.fixture
def ns(api: Client) -> Iterator[str]:
    name = f"d-{uuid.uuid4().hex[:10]}"
    resp = api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                            "metadata": {"name": name}})
    assert resp.status == 201, resp.body
    yield name
    api.delete(f"/api/v1/namespaces/{name}")


def _established(api: Client, name: str) -> bool:
    obj = api.get(f"{CRD_PATH}/{name}").json()
    conditions = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}
    return conditions.get("Established") == "True"


@pytest.fixture(scope="session")
def widget_crd(kube: Server) -> str:
    """Installs (or replaces) the suite's Widget CRD on ``kube``; returns the group/version path."""
    api = kube.client()
    name = WIDGET_CRD["metadata"]["name"]
    resp = api.post(CRD_PATH, WIDGET_CRD)
    if resp.status == 409:
        current = api.get(f"{CRD_PATH}/{name}").json()
        replaced = {**copy.deepcopy(WIDGET_CRD), "metadata": {
            "name": name, "resourceVersion": current["metadata"]["resourceVersion"]}}
        resp = api.put(f"{CRD_PATH}/{name}", replaced)
    assert resp.status in (200, 201), resp.body
    deadline = time.monotonic() + 30
    while not _established(api, name):
        assert time.monotonic() < deadline, f"CRD {name} never became Established"
        time.sleep(0.05)
    base = f"/apis/{GROUP}/v1"
    # Established comes a moment before the resource is served everywhere; wait for a list.
    while api.get(f"{base}/widgets").status != 200:
        assert time.monotonic() < deadline, f"{base}/widgets never served"
        time.sleep(0.05)
    return base


@pytest.fixture
def widgets(widget_crd: str, ns: str) -> str:
    """The Widget collection in this test's namespace."""
    return f"{widget_crd}/namespaces/{ns}/widgets"


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": spec}


# ------------------------------------------------------------------ answers


def answer(resp: Response) -> dict[str, Any]:
    """A failed request as both servers must agree on it: the Status minus volatile parts."""
    body: dict[str, Any] = resp.json()
    assert body.get("kind") == "Status", body
    assert body["apiVersion"] == "v1" and body["metadata"] == {}, body
    details = dict(body.get("details") or {})
    details.pop("uid", None)
    out = {"code": resp.status, "status": body["status"], "reason": body.get("reason", ""),
           "message": body.get("message", "")}
    assert body["code"] == resp.status, body
    if details:
        out["details"] = details
    return out


VOLATILE_META = {"uid": "<uid>", "creationTimestamp": "<time>", "resourceVersion": "<rv>",
                 "deletionTimestamp": "<time>"}


def normalised(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with uid, timestamps and resourceVersion values replaced by placeholders."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata") or {}
    for key, placeholder in VOLATILE_META.items():
        if key in meta:
            meta[key] = placeholder
    for entry in meta.get("managedFields") or []:
        if "time" in entry:
            entry["time"] = "<time>"
    for ref in meta.get("ownerReferences") or []:
        ref["uid"] = "<uid>"
    return out


def ok(resp: Response, code: int = 200) -> dict[str, Any]:
    assert resp.status == code, (resp.status, resp.body[:2000])
    body: dict[str, Any] = resp.json()
    return body
