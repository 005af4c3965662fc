"""LIST over HTTP with kube-apiserver's rules: the global revision as the list's resourceVersion,
label and field selectors, limit/continue paging on one snapshot, resourceVersionMatch, and the
410/504 answers for revisions the store no longer has or does not have yet.

Compaction needs the store itself, so those tests start their own server (`own` fixture) on the
same production composition and drive ``store.compact`` on the server's event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from shipyard.apiserver.app import APIServer
from shipyard.apiserver.http import Receive, Scope, Send
from shipyard.apiserver.serving import ServingOptions, serve_in_thread
from shipyard.storage import SQLiteStore
from tests.kube import Client, Response, Server

GROUP = "list.shipyard.test"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)


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
                    "spec": {"type": "object", "properties": {"color": {"type": "string"},
                                                              "size": {"type": "integer"}}},
                }}},
                "selectableFields": [{"jsonPath": ".spec.color"}],
            }],
        },
    }


@dataclass(frozen=True)
class Coll:
    api: Client
    plural: str
    kind: str
    namespace: str | None

    @property
    def path(self) -> str:
        ns = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"/apis/{GROUP}/v1{ns}/{self.plural}"

    def create(self, name: str, labels: dict[str, str] | None = None,
               **spec: Any) -> dict[str, Any]:
        resp = self.api.post(self.path, {
            "apiVersion": f"{GROUP}/v1", "kind": self.kind,
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec,
        })
        assert resp.status == 201, resp.body
        obj: dict[str, Any] = resp.json()
        return obj

    def get(self, **params: str) -> Response:
        query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
        return self.api.get(self.path + (f"?{query}" if query else ""))

    def names(self, **params: str) -> list[str]:
        resp = self.get(**params)
        assert resp.status == 200, resp.body
        return [o["metadata"]["name"] for o in resp.json()["items"]]


@pytest.fixture(scope="module", params=["Namespaced", "Cluster"], ids=["namespaced", "cluster"])
def thing_crd(request: pytest.FixtureRequest, server: Server) -> Iterator[tuple[str, str, bool]]:
    plural, kind = ("things", "Thing") if request.param == "Namespaced" else ("globes", "Globe")
    api = server.client()
    resp = api.post(CRD_PATH, crd_manifest(plural, kind, request.param))
    assert resp.status == 201, resp.body
    yield plural, kind, request.param == "Namespaced"
    api.delete(f"{CRD_PATH}/{plural}.{GROUP}")


@pytest.fixture
def coll(thing_crd: tuple[str, str, bool], api: Client, request: pytest.FixtureRequest) -> Coll:
    plural, kind, namespaced = thing_crd
    ns = request.getfixturevalue("namespace") if namespaced else None
    return Coll(api, plural, kind, ns)


def tag() -> str:
    return uuid.uuid4().hex[:8]


def bad_request(resp: Response) -> dict[str, Any]:
    assert resp.status == 400, resp.body
    body: dict[str, Any] = resp.json()
    assert body["kind"] == "Status" and body["reason"] == "BadRequest" and body["code"] == 400
    return body


# ------------------------------------------------------------------------- resourceVersion


def test_list_resource_version_is_the_global_revision(coll: Coll, api: Client,
                                                      namespace: str) -> None:
    created = coll.create(f"rv-{tag()}")
    rv = int(created["metadata"]["resourceVersion"])
    listed = coll.get()
    assert listed.status == 200
    body = listed.json()
    assert body["kind"] == f"{coll.kind}List" and body["apiVersion"] == f"{GROUP}/v1"
    assert int(body["metadata"]["resourceVersion"]) >= rv
    # An empty list of another resource still reports the store's revision.
    other = api.get(f"/api/v1/namespaces/{namespace}/configmaps").json()
    assert other["items"] == []
    assert int(other["metadata"]["resourceVersion"]) >= rv


# ------------------------------------------------------------------------ label selectors

LABELLED = {
    "a": {"env": "prod", "tier": "1"},
    "b": {"env": "dev", "tier": "5"},
    "c": {"tier": "10"},
    "d": {"env": "prod"},
}


@pytest.mark.parametrize(("selector", "expected"), [
    ("env=prod", "ad"),
    ("env==prod", "ad"),
    ("env!=prod", "bc"),
    ("env in (prod,dev)", "abd"),
    ("env notin (prod)", "bc"),
    ("env", "abd"),
    ("!env", "c"),
    ("tier>4", "bc"),
    ("tier<5", "a"),
    ("env=prod,tier", "a"),
    ("env in (prod),!tier", "d"),
    ("env=staging", ""),
])
def test_label_selector_operators(coll: Coll, selector: str, expected: str) -> None:
    run = tag()
    for suffix, labels in LABELLED.items():
        coll.create(f"{suffix}-{run}", {**labels, "run": run})
    names = coll.names(labelSelector=f"run={run},{selector}")
    assert sorted(n.split("-")[0] for n in names) == list(expected)


@pytest.mark.parametrize(("selector", "message"), [
    ("env in prod", "unable to parse requirement: found 'prod' expected: '('"),
    ("env=(a", None),
    ("tier>x", None),
    ("a==b==c", None),
    ("-bad-key=1", None),
])
def test_invalid_label_selectors_are_bad_requests(coll: Coll, selector: str,
                                                  message: str | None) -> None:
    body = bad_request(coll.get(labelSelector=selector))
    assert body["message"]
    if message is not None:
        assert message in body["message"]


# ------------------------------------------------------------------------ field selectors


def test_field_selector_metadata_name(coll: Coll) -> None:
    run = tag()
    for i in range(3):
        coll.create(f"f{i}-{run}")
    assert coll.names(fieldSelector=f"metadata.name=f1-{run}") == [f"f1-{run}"]
    rest = coll.names(fieldSelector=f"metadata.name!=f1-{run}")
    assert f"f1-{run}" not in rest and {f"f0-{run}", f"f2-{run}"} <= set(rest)
    assert coll.names(fieldSelector="metadata.name=absent") == []


def test_field_selector_metadata_namespace(server: Server, api: Client) -> None:
    """Across namespaces: a namespaced kind listed cluster-wide, filtered by namespace."""
    namespaces = [f"t-{tag()}" for _ in range(2)]
    for ns in namespaces:
        assert api.post("/api/v1/namespaces", {"metadata": {"name": ns}}).status == 201
        assert api.post(f"/api/v1/namespaces/{ns}/configmaps",
                        {"metadata": {"name": "cm"}}).status == 201
    try:
        resp = api.get(f"/api/v1/configmaps?fieldSelector=metadata.namespace%3D{namespaces[0]}")
        assert resp.status == 200
        items = resp.json()["items"]
        assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in items] == [
            (namespaces[0], "cm")]
    finally:
        for ns in namespaces:
            api.delete(f"/api/v1/namespaces/{ns}")


def test_field_selector_on_crd_selectable_fields(coll: Coll) -> None:
    run = tag()
    coll.create(f"red-{run}", {"run": run}, color="red")
    coll.create(f"blue-{run}", {"run": run}, color="blue")
    coll.create(f"none-{run}", {"run": run})
    assert coll.names(labelSelector=f"run={run}", fieldSelector="spec.color=red") == [
        f"red-{run}"]
    assert sorted(coll.names(labelSelector=f"run={run}", fieldSelector="spec.color!=red")) == [
        f"blue-{run}", f"none-{run}"]


def test_unsupported_field_label_is_bad_request(coll: Coll) -> None:
    body = bad_request(coll.get(fieldSelector="spec.size=1"))
    assert body["message"].endswith("field label not supported: spec.size")


def test_invalid_field_selector_is_bad_request(coll: Coll) -> None:
    bad_request(coll.get(fieldSelector="metadata.name"))


def test_event_involved_object_field_selectors(api: Client, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/events"
    for name, kind, target in (("e1", "ConfigMap", "cm-a"), ("e2", "ConfigMap", "cm-b"),
                               ("e3", "Secret", "cm-a")):
        resp = api.post(path, {"metadata": {"name": name}, "reason": "R", "message": "m",
                               "involvedObject": {"kind": kind, "name": target,
                                                  "namespace": namespace}})
        assert resp.status == 201, resp.body

    def names(selector: str) -> list[str]:
        resp = api.get(f"{path}?fieldSelector={quote(selector)}")
        assert resp.status == 200, resp.body
        return sorted(o["metadata"]["name"] for o in resp.json()["items"])

    assert names("involvedObject.name=cm-a") == ["e1", "e3"]
    assert names("involvedObject.kind=ConfigMap,involvedObject.name=cm-a") == ["e1"]
    assert names(f"involvedObject.namespace={namespace},involvedObject.kind!=ConfigMap") == [
        "e3"]
    body = bad_request(api.get(f"{path}?fieldSelector=involvedObject.color%3Dred"))
    assert body["message"].endswith("field label not supported: involvedObject.color")


# -------------------------------------------------------------------------------- paging


def test_limit_and_continue_page_through_everything(coll: Coll) -> None:
    run = tag()
    for i in range(5):
        coll.create(f"p{i}-{run}")
    full = coll.names()
    assert len(full) >= 5
    pages: list[list[str]] = []
    token = ""
    revisions = set()
    first = True
    while True:
        params = {"limit": "2"}
        if token:
            params["continue"] = token
        resp = coll.get(**params)
        assert resp.status == 200, resp.body
        body = resp.json()
        meta = body["metadata"]
        revisions.add(meta["resourceVersion"])
        pages.append([o["metadata"]["name"] for o in body["items"]])
        if first:
            assert meta["remainingItemCount"] == len(full) - 2
            first = False
        token = meta.get("continue", "")
        if not token:
            assert "remainingItemCount" not in meta
            break
        assert len(body["items"]) == 2
    assert [n for page in pages for n in page] == full
    assert len(revisions) == 1


def test_pages_stay_on_the_first_pages_revision(coll: Coll) -> None:
    run = tag()
    for i in range(4):
        coll.create(f"s{i}-{run}", {"run": run}, size=i)
    first = coll.get(labelSelector=f"run={run}", limit="2").json()
    revision = first["metadata"]["resourceVersion"]
    token = first["metadata"]["continue"]
    # Writes between pages: a new object at the end, a change to one on the next page.
    coll.create(f"s9-{run}", {"run": run})
    changed = coll.api.patch(f"{coll.path}/s3-{run}", {"spec": {"size": 99}})
    assert changed.status == 200
    second = coll.get(labelSelector=f"run={run}", limit="10", **{"continue": token}).json()
    assert second["metadata"]["resourceVersion"] == revision
    assert [o["metadata"]["name"] for o in second["items"]] == [f"s2-{run}", f"s3-{run}"]
    assert second["items"][1]["spec"]["size"] == 3  # as of the first page's revision
    assert "continue" not in second["metadata"]
    assert "remainingItemCount" not in first["metadata"]  # filtered lists do not count


def test_invalid_limit_and_continue(coll: Coll) -> None:
    bad_request(coll.get(limit="many"))
    bad_request(coll.get(**{"continue": "not-a-token"}))


# ---------------------------------------------------------------- resourceVersionMatch


def test_resource_version_match_exact_and_not_older_than(coll: Coll) -> None:
    run = tag()
    coll.create(f"x0-{run}", {"run": run})
    before = coll.get(labelSelector=f"run={run}").json()["metadata"]["resourceVersion"]
    coll.create(f"x1-{run}", {"run": run})
    exact = coll.get(labelSelector=f"run={run}", resourceVersion=before,
                      resourceVersionMatch="Exact")
    assert exact.status == 200, exact.body
    assert exact.json()["metadata"]["resourceVersion"] == before
    assert [o["metadata"]["name"] for o in exact.json()["items"]] == [f"x0-{run}"]
    newer = coll.get(labelSelector=f"run={run}", resourceVersion=before,
                      resourceVersionMatch="NotOlderThan")
    assert newer.status == 200
    assert int(newer.json()["metadata"]["resourceVersion"]) > int(before)
    assert len(newer.json()["items"]) == 2
    legacy = coll.get(labelSelector=f"run={run}", resourceVersion="0")
    assert legacy.status == 200 and len(legacy.json()["items"]) == 2


@pytest.mark.parametrize(("params", "cause"), [
    ({"resourceVersionMatch": "Exact"},
     "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"),
    ({"resourceVersionMatch": "NotOlderThan", "resourceVersion": "1", "continue": "TOKEN"},
     "Forbidden: resourceVersionMatch is forbidden when continue is provided"),
    ({"resourceVersionMatch": "Exact", "resourceVersion": "0"},
     'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"'),
    ({"resourceVersionMatch": "Newest", "resourceVersion": "1"},
     'Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", ""'),
])
def test_forbidden_resource_version_match_combinations(coll: Coll, params: dict[str, str],
                                                       cause: str) -> None:
    """kube-apiserver validates ListOptions first: 422 Invalid on ListOptions.meta.k8s.io."""
    if params.get("continue") == "TOKEN":
        coll.create(f"c0-{tag()}")
        coll.create(f"c1-{tag()}")
        params = dict(params, **{"continue": coll.get(limit="1").json()["metadata"]["continue"]})
    resp = coll.get(**params)
    assert resp.status == 422, resp.body
    body = resp.json()
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        f'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: {cause}'
    )
    assert body["details"]["causes"] == [{"reason": body["details"]["causes"][0]["reason"],
                                          "message": cause, "field": "resourceVersionMatch"}]


def test_too_large_resource_version_is_a_timeout(coll: Coll) -> None:
    current = int(coll.get().json()["metadata"]["resourceVersion"])
    wanted = current + 1_000_000
    resp = coll.get(resourceVersion=str(wanted))
    assert resp.status == 504, resp.body
    body = resp.json()
    assert body["reason"] == "Timeout"
    assert body["message"].startswith(f"Timeout: Too large resource version: {wanted}, current: ")
    assert body["details"]["causes"] == [{"reason": "ResourceVersionTooLarge",
                                          "message": "Too large resource version"}]
    assert body["details"]["retryAfterSeconds"] == 1


def test_invalid_resource_version_is_bad_request(coll: Coll) -> None:
    bad_request(coll.get(resourceVersion="abc"))


# ------------------------------------------------------------------- compaction (own server)


class LoopCapture:
    """ASGI pass-through that remembers the server's event loop, to run store calls on it."""

    def __init__(self, app: APIServer) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


@dataclass
class Own:
    api: Client
    store: SQLiteStore
    capture: LoopCapture

    def compact(self) -> int:
        assert self.capture.loop is not None
        revision = self.store.revision
        asyncio.run_coroutine_threadsafe(self.store.compact(revision),
                                         self.capture.loop).result(10)
        return revision


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Own]:
    root: Path = tmp_path_factory.mktemp("own-apiserver")
    store = SQLiteStore(root / "state.db", compaction_interval=0)
    capture = LoopCapture(APIServer(store))
    with serve_in_thread(capture, ServingOptions(port=0, insecure=True,
                                                 shutdown_timeout=1)) as running:
        api = Client(f"http://127.0.0.1:{running.bound_port}", None, None)
        assert api.get("/readyz").status == 200
        yield Own(api, store, capture)


def test_expired_continue_token_after_compaction(own: Own) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    for i in range(3):
        assert own.api.post(path, {"metadata": {"name": f"cm{i}"}}).status == 201
    first = own.api.get(path + "?limit=1").json()
    token = first["metadata"]["continue"]
    assert own.api.patch(f"{path}/cm2", {"data": {"k": "v"}}).status == 200
    own.compact()
    resp = own.api.get(f"{path}?limit=1&continue={token}")
    assert resp.status == 410, resp.body
    body = resp.json()
    assert body["reason"] == "Expired" and body["code"] == 410
    assert body["message"] == EXPIRED_CONTINUE
    # A fresh list still works.
    assert own.api.get(path).status == 200


def test_exact_list_at_a_compacted_revision_is_expired(own: Own) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    assert own.api.post(path, {"metadata": {"name": f"old-{tag()}"}}).status == 201
    old = own.api.get(path).json()["metadata"]["resourceVersion"]
    assert own.api.post(path, {"metadata": {"name": f"new-{tag()}"}}).status == 201
    compacted = own.compact()
    resp = own.api.get(f"{path}?resourceVersion={old}&resourceVersionMatch=Exact")
    assert resp.status == 410, resp.body
    body = resp.json()
    assert body["reason"] == "Expired"
    assert body["message"] == f"too old resource version: {old} ({compacted})"
