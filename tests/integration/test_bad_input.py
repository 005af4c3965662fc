"""Hostile and broken requests: each gets kube-apiserver's status code and a Status body, the
server keeps serving, and nothing stored changes (a list before and after is compared).

The disconnect test needs the store's watcher count, so it runs on its own server.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import urllib3

from shipyard.apiserver.app import APIServer
from shipyard.apiserver.http import MAX_BODY_BYTES, Receive, Scope, Send
from shipyard.apiserver.serving import ServingOptions, serve_in_thread
from shipyard.storage import SQLiteStore
from tests.kube import Client, Response, Server

GROUP = "badinput.shipyard.test"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
NOT_FOUND = "the server could not find the requested resource"


@pytest.fixture(scope="module")
def crd(server: Server) -> Iterator[str]:
    api = server.client()
    resp = api.post(CRD_PATH, {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"probes.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": "probes", "kind": "Probe"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {
                                   "type": "object", "properties": {"spec": {
                                       "type": "object",
                                       "properties": {"replicas": {"type": "integer"}}}}}}}]},
    })
    assert resp.status == 201, resp.body
    yield f"/apis/{GROUP}/v1"
    api.delete(f"{CRD_PATH}/probes.{GROUP}")


class Snapshot:
    """What a namespace holds (ConfigMaps and Probes), to prove a bad request changed nothing."""

    def __init__(self, api: Client, namespace: str, crd: str) -> None:
        self.api = api
        self.paths = (f"/api/v1/namespaces/{namespace}/configmaps",
                      f"{crd}/namespaces/{namespace}/probes")
        self.cms, self.probes = self.paths
        assert api.post(self.cms, {"metadata": {"name": "keep"}, "data": {"a": "1"}}).status == 201
        resp = api.post(self.probes, {"apiVersion": f"{GROUP}/v1", "kind": "Probe",
                                      "metadata": {"name": "keep"}, "spec": {"replicas": 1}})
        assert resp.status == 201, resp.body
        self.before = self.take()

    def take(self) -> list[list[dict[str, Any]]]:
        out = []
        for path in self.paths:
            resp = self.api.get(path)
            assert resp.status == 200, resp.body
            out.append(resp.json()["items"])
        return out

    def unchanged(self) -> None:
        assert self.api.get("/readyz").status == 200
        assert self.take() == self.before


@pytest.fixture
def snap(api: Client, namespace: str, crd: str) -> Iterator[Snapshot]:
    snapshot = Snapshot(api, namespace, crd)
    yield snapshot
    snapshot.unchanged()  # every test in this module ends with the store untouched


def status(resp: Response, code: int, reason: str) -> dict[str, Any]:
    assert resp.status == code, resp.body
    body: dict[str, Any] = resp.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure" and body["code"] == code and body["reason"] == reason
    return body


# --------------------------------------------------------------------------------- bodies


@pytest.mark.parametrize("raw", [b"{", b'{"metadata": }', b"[1, 2", b"\xff\xfe", b"null x"])
def test_malformed_json(api: Client, snap: Snapshot, raw: bytes) -> None:
    status(api.post(snap.cms, None, raw=raw), 400, "BadRequest")


def test_empty_body(api: Client, snap: Snapshot) -> None:
    status(api.post(snap.cms, None, raw=b""), 400, "BadRequest")


def test_json_that_is_not_an_object(api: Client, snap: Snapshot) -> None:
    status(api.post(snap.cms, [1, 2]), 400, "BadRequest")
    status(api.post(snap.cms, "text"), 400, "BadRequest")


@pytest.mark.parametrize("raw", [
    b"metadata: {name: x\n",
    b"a: b: c\n",
    b"- [\n",
    b"metadata:\n  name: a\n---\nmetadata:\n  name: b\n",
    b"!!python/object:os.system {}\n",
])
def test_malformed_yaml(api: Client, snap: Snapshot, raw: bytes) -> None:
    status(api.post(snap.cms, None, raw=raw, content_type="application/yaml"), 400, "BadRequest")


def test_yaml_body_is_accepted(api: Client, snap: Snapshot) -> None:
    raw = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  t: 2024-01-01\n"
    resp = api.post(snap.cms, None, raw=raw, content_type="application/yaml")
    assert resp.status == 201, resp.body
    assert resp.json()["data"] == {"t": "2024-01-01"}
    assert api.delete(f"{snap.cms}/from-yaml").status == 200


@pytest.mark.parametrize(("body", "message"), [
    ({"apiVersion": "v2", "kind": "ConfigMap"},
     "the API version in the data (v2) does not match the expected API version (v1)"),
    ({"apiVersion": "apps/v1", "kind": "ConfigMap"},
     "the API version in the data (apps/v1) does not match the expected API version (v1)"),
    ({"apiVersion": "v1", "kind": "Secret"},  # the typed decoder's words for built-ins
     'Secret in version "v1" cannot be handled as a ConfigMap: converting (v1.Secret) to '
     "(core.ConfigMap): unknown conversion"),
])
def test_type_in_body_must_match_url(api: Client, snap: Snapshot, body: dict[str, Any],
                                     message: str) -> None:
    obj = {**body, "metadata": {"name": "keep"}}
    assert status(api.post(snap.cms, {**obj, "metadata": {"name": "n"}}), 400,
                  "BadRequest")["message"] == message
    assert status(api.put(f"{snap.cms}/keep", obj), 400, "BadRequest")["message"] == message


def test_namespace_in_body_must_match_url(api: Client, snap: Snapshot) -> None:
    resp = api.post(snap.cms, {"metadata": {"name": "n", "namespace": "elsewhere"}})
    assert "does not match the namespace" in status(resp, 400, "BadRequest")["message"]


def test_body_over_three_mebibytes(api: Client, snap: Snapshot) -> None:
    big = {"metadata": {"name": "big"}, "data": {"blob": "x" * (MAX_BODY_BYTES + 10)}}
    body = status(api.post(snap.cms, big), 413, "RequestEntityTooLarge")
    assert body["message"] == f"Request entity too large: limit is {MAX_BODY_BYTES}"


@pytest.mark.parametrize("content_type", ["application/json", "application/yaml"])
def test_deeply_nested_document(api: Client, snap: Snapshot, content_type: str) -> None:
    depth = 100_000
    raw = b'{"metadata":{"name":"deep"},"data":' + b"[" * depth + b"]" * depth + b"}"
    status(api.post(snap.cms, None, raw=raw, content_type=content_type), 400, "BadRequest")


def test_deeply_nested_patch(api: Client, snap: Snapshot) -> None:
    depth = 100_000
    raw = b'{"data":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    status(api.patch(f"{snap.cms}/keep", None, raw=raw), 400, "BadRequest")


def test_json_patch_body_that_is_not_a_list(api: Client, snap: Snapshot) -> None:
    status(api.patch(f"{snap.cms}/keep", {"op": "add"},
                     content_type="application/json-patch+json"), 400, "BadRequest")


# ------------------------------------------------------------------------------- routing


@pytest.mark.parametrize("path", [
    "/api/v1/namespaces/default/widgets",
    "/apis/nope.example.com/v1/things",
    "/apis/apps/v1/deployments",
    "/api/v2/configmaps",
    "/nothing/here",
    "/api/v1/namespaces/default/configmaps/a/b/c/d",
])
def test_unknown_resource_path(api: Client, snap: Snapshot, path: str) -> None:
    body = status(api.get(path), 404, "NotFound")
    assert body["message"] == NOT_FOUND
    assert status(api.post(path, {"metadata": {"name": "x"}}), 404, "NotFound")


def test_unknown_subresource(api: Client, snap: Snapshot) -> None:
    status(api.get(f"{snap.cms}/keep/scale"), 404, "NotFound")
    status(api.put(f"{snap.probes}/keep/status", {}), 404, "NotFound")


def test_method_not_allowed(api: Client, snap: Snapshot) -> None:
    status(api.put(snap.cms, {"metadata": {"name": "x"}}), 405, "MethodNotAllowed")


def test_missing_token_is_unauthorized(server: Server, snap: Snapshot) -> None:
    anonymous = server.client(token=None)
    body = status(anonymous.get(snap.cms), 401, "Unauthorized")
    assert body["message"] == "Unauthorized"
    status(anonymous.post(snap.cms, {"metadata": {"name": "x"}}), 401, "Unauthorized")
    status(server.client(token="wrong").delete(f"{snap.cms}/keep"), 401, "Unauthorized")


# ---------------------------------------------------------------------- parameters / CRs


def test_invalid_label_selector(api: Client, snap: Snapshot) -> None:
    status(api.get(f"{snap.cms}?labelSelector=a%20in%20b"), 400, "BadRequest")
    status(api.delete(f"{snap.cms}?labelSelector=%3D%3D%3D"), 400, "BadRequest")


def test_update_without_resource_version_on_a_custom_resource(api: Client,
                                                              snap: Snapshot) -> None:
    resp = api.put(f"{snap.probes}/keep", {"apiVersion": f"{GROUP}/v1", "kind": "Probe",
                                           "metadata": {"name": "keep"},
                                           "spec": {"replicas": 9}})
    body = status(resp, 422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.resourceVersion"


def test_strict_unknown_fields(api: Client, snap: Snapshot) -> None:
    resp = api.post(f"{snap.probes}?fieldValidation=Strict", {
        "apiVersion": f"{GROUP}/v1", "kind": "Probe", "metadata": {"name": "n"},
        "spec": {"replias": 1}})
    assert status(resp, 400, "BadRequest")["message"] == (
        'Probe in version "v1" cannot be handled as a Probe: '
        'strict decoding error: unknown field "spec.replias"')


def test_invalid_resource_versions(api: Client, snap: Snapshot) -> None:
    status(api.put(f"{snap.cms}/keep", {"metadata": {"name": "keep", "resourceVersion": "x"}}),
           400, "BadRequest")


# --------------------------------------------------------------------------------- watch


def test_watch_from_a_resource_version_that_is_not_a_number(api: Client,
                                                            snap: Snapshot) -> None:
    status(api.get(f"{snap.cms}?watch=true&resourceVersion=abc"), 400, "BadRequest")


def test_watch_from_a_resource_version_ahead_of_the_server(api: Client,
                                                          snap: Snapshot) -> None:
    """kube-apiserver's watch cache waits for a revision it has not reached: the stream opens
    and carries nothing from before that revision (here: nothing at all before it ends)."""
    current = int(api.get(snap.cms).json()["metadata"]["resourceVersion"])
    events = list(api.stream(
        f"{snap.cms}?watch=true&resourceVersion={current + 1_000_000}&timeoutSeconds=1"
    ))
    assert events == []


# ------------------------------------------------------------------- own server: watchers


class LoopCapture:
    def __init__(self, app: APIServer) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SQLiteStore]]:
    root: Path = tmp_path_factory.mktemp("bad-input-apiserver")
    store = SQLiteStore(root / "state.db", compaction_interval=0)
    with serve_in_thread(LoopCapture(APIServer(store)),
                         ServingOptions(port=0, insecure=True, shutdown_timeout=1)) as running:
        yield f"http://127.0.0.1:{running.bound_port}", store


def wait_until(condition: Any, what: str, deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def test_client_disconnecting_mid_watch_leaks_nothing(own: tuple[str, SQLiteStore]) -> None:
    url, store = own
    api = Client(url, None, None)
    path = "/api/v1/namespaces/default/configmaps"
    assert api.post(path, {"metadata": {"name": f"w-{uuid.uuid4().hex[:6]}"}}).status == 201
    baseline = store.watcher_count
    for _ in range(5):
        pool = urllib3.PoolManager(retries=False)
        resp = pool.request("GET", f"{url}{path}?watch=true", preload_content=False,
                            timeout=urllib3.Timeout(connect=5, read=10))
        assert resp.status == 200
        first = b""
        while b"\n" not in first:
            first += resp.read1(65536)
        assert first.startswith(b'{"type":"ADDED"')
        wait_until(lambda: store.watcher_count > baseline, "the watch to register")
        resp.close()  # drop the connection without reading the rest
        pool.clear()
        wait_until(lambda: store.watcher_count == baseline, "the watcher to be released")
    # The server still serves reads, writes and new watches.
    assert api.post(path, {"metadata": {"name": f"after-{uuid.uuid4().hex[:6]}"}}).status == 201
    events = cast(Generator[dict[str, Any], None, None],
                  api.stream(f"{path}?watch=true&timeoutSeconds=1"))
    try:
        assert next(events)["type"] == "ADDED"
    finally:
        events.close()
