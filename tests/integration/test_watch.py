"""Watch semantics against the live server, as client-go, kubectl and kopf rely on them:
synthetic ADDED events, replay from a resourceVersion, selector transitions, bookmarks,
timeouts, 410 Expired in-stream, initial-events-end, Table watches and disconnects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shipyard.apiserver.app import APIServer
from tests.integration.live import Watch, is_bookmark, name_of, private_server, query, wait_for
from tests.kube import Client

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def cm_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def make_cm(api: Client, ns: str, name: str, labels: dict[str, str] | None = None,
            data: dict[str, str] | None = None) -> dict[str, Any]:
    resp = api.post(cm_path(ns), {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": name, "labels": labels or {}},
                                  "data": data or {}})
    assert resp.status == 201, resp.body
    obj: dict[str, Any] = resp.json()
    return obj


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


@pytest.mark.parametrize("resource_version", [None, "0"])
def test_initial_events_are_synthetic_added(
    api: Client, namespace: str, resource_version: str | None
) -> None:
    a = make_cm(api, namespace, "a")
    b = make_cm(api, namespace, "b")
    with Watch(api, query(cm_path(namespace), watch="true",
                          resourceVersion=resource_version)) as w:
        first, second = w.next(), w.next()
        assert [(e["type"], name_of(e)) for e in (first, second)] == [("ADDED", "a"),
                                                                      ("ADDED", "b")]
        assert first["object"]["metadata"]["resourceVersion"] == a["metadata"]["resourceVersion"]
        assert second["object"]["metadata"]["uid"] == b["metadata"]["uid"]
        assert first["object"]["kind"] == "ConfigMap"
        assert first["object"]["apiVersion"] == "v1"
        c = make_cm(api, namespace, "c")
        event = w.next()
        assert (event["type"], name_of(event)) == ("ADDED", "c")
        assert event["object"]["metadata"]["resourceVersion"] == c["metadata"]["resourceVersion"]


def test_watch_from_resource_version_replays_later_changes_in_order(
    api: Client, namespace: str
) -> None:
    a = make_cm(api, namespace, "a")
    start = rv(a)
    patched = api.patch(cm_path(namespace, "a"), {"data": {"k": "v"}}).json()
    make_cm(api, namespace, "b")
    assert api.delete(cm_path(namespace, "a")).status == 200
    with Watch(api, query(cm_path(namespace), watch="true", resourceVersion=str(start))) as w:
        events = [w.next() for _ in range(3)]
    assert [(e["type"], name_of(e)) for e in events] == [
        ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a"),
    ]
    versions = [rv(e["object"]) for e in events]
    assert versions == sorted(versions) and versions[0] > start
    assert events[0]["object"]["data"] == {"k": "v"}
    assert events[0]["object"]["metadata"]["resourceVersion"] == \
        patched["metadata"]["resourceVersion"]
    # A DELETED event carries the last state stamped with the deletion's revision.
    assert events[2]["object"]["data"] == {"k": "v"}
    assert versions[2] > versions[1]


def test_watch_of_the_current_revision_sees_nothing_old(api: Client, namespace: str) -> None:
    make_cm(api, namespace, "old")
    listed = api.get(cm_path(namespace)).json()
    with Watch(api, query(cm_path(namespace), watch="true",
                          resourceVersion=listed["metadata"]["resourceVersion"])) as w:
        make_cm(api, namespace, "new")
        event = w.next()
    assert (event["type"], name_of(event)) == ("ADDED", "new")


def test_live_modified_and_deleted(api: Client, namespace: str) -> None:
    make_cm(api, namespace, "x")
    listed = api.get(cm_path(namespace)).json()
    with Watch(api, query(cm_path(namespace), watch="true",
                          resourceVersion=listed["metadata"]["resourceVersion"])) as w:
        api.patch(cm_path(namespace, "x"), {"metadata": {"labels": {"l": "1"}}})
        modified = w.next()
        api.delete(cm_path(namespace, "x"))
        deleted = w.next()
    assert modified["type"] == "MODIFIED"
    assert modified["object"]["metadata"]["labels"] == {"l": "1"}
    assert deleted["type"] == "DELETED"
    assert name_of(deleted) == "x"
    assert rv(deleted["object"]) > rv(modified["object"])


def test_label_selector_transitions(api: Client, namespace: str) -> None:
    make_cm(api, namespace, "in", labels={"app": "web"})
    make_cm(api, namespace, "out", labels={"app": "db"})
    with Watch(api, query(cm_path(namespace), watch="true", labelSelector="app=web")) as w:
        assert (w.next()["type"], "in") == ("ADDED", "in")
        # Stops matching: DELETED, carrying the new state.
        api.patch(cm_path(namespace, "in"), {"metadata": {"labels": {"app": "db"}}})
        event = w.next()
        assert (event["type"], name_of(event)) == ("DELETED", "in")
        assert event["object"]["metadata"]["labels"] == {"app": "db"}
        # A change that keeps not matching is invisible; starts matching: ADDED.
        api.patch(cm_path(namespace, "out"), {"data": {"x": "1"}})
        api.patch(cm_path(namespace, "out"), {"metadata": {"labels": {"app": "web"}}})
        event = w.next()
        assert (event["type"], name_of(event)) == ("ADDED", "out")
        # Still matching: MODIFIED.
        api.patch(cm_path(namespace, "out"), {"data": {"x": "2"}})
        event = w.next()
        assert (event["type"], name_of(event)) == ("MODIFIED", "out")


def test_field_selector_transition_on_namespace_phase(api: Client) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    listed = api.get("/api/v1/namespaces").json()
    path = query("/api/v1/namespaces", watch="true", fieldSelector="status.phase=Active",
                 resourceVersion=listed["metadata"]["resourceVersion"])
    with Watch(api, path) as w:
        assert api.post("/api/v1/namespaces", {"metadata": {"name": name}}).status == 201
        event = w.until(lambda e: name_of(e) == name)
        assert event["type"] == "ADDED"
        assert api.delete(f"/api/v1/namespaces/{name}").status == 200
        # Active -> Terminating: the namespace stops matching status.phase=Active.
        event = w.until(lambda e: name_of(e) == name)
        assert event["type"] == "DELETED"
        assert event["object"]["status"]["phase"] == "Terminating"


def test_single_object_watch_by_name(api: Client, namespace: str) -> None:
    make_cm(api, namespace, "me")
    make_cm(api, namespace, "other")
    path = query(cm_path(namespace), watch="true", resourceVersion="0",
                 fieldSelector="metadata.name=me")
    with Watch(api, path) as w:
        first = w.next()
        assert (first["type"], name_of(first)) == ("ADDED", "me")
        api.patch(cm_path(namespace, "other"), {"data": {"a": "1"}})
        api.patch(cm_path(namespace, "me"), {"data": {"a": "1"}})
        event = w.next()
        assert (event["type"], name_of(event)) == ("MODIFIED", "me")
        api.delete(cm_path(namespace, "other"))
        api.delete(cm_path(namespace, "me"))
        event = w.next()
        assert (event["type"], name_of(event)) == ("DELETED", "me")


def test_bookmarks_only_when_allowed_and_carry_only_the_revision(
    api: Client, namespace: str
) -> None:
    make_cm(api, namespace, "a")
    path = query(cm_path(namespace), watch="true", allowWatchBookmarks="true")
    with Watch(api, path) as w:
        assert w.next()["type"] == "ADDED"
        bookmark = w.next()  # the server under test bookmarks every second
    assert bookmark["type"] == "BOOKMARK"
    obj = bookmark["object"]
    assert obj["kind"] == "ConfigMap" and obj["apiVersion"] == "v1"
    assert set(obj["metadata"]) == {"resourceVersion"}
    assert int(obj["metadata"]["resourceVersion"]) >= rv(api.get(cm_path(namespace, "a")).json())
    assert set(obj) == {"kind", "apiVersion", "metadata"}

    # Without allowWatchBookmarks, a quiet stream stays silent until its timeout.
    with Watch(api, query(cm_path(namespace), watch="true", resourceVersion="0",
                          timeoutSeconds="2")) as w:
        events = w.rest()
    assert [e["type"] for e in events] == ["ADDED"]


def test_timeout_seconds_ends_the_stream(api: Client, namespace: str) -> None:
    listed = api.get(cm_path(namespace)).json()
    path = query(cm_path(namespace), watch="true", timeoutSeconds="1",
                 resourceVersion=listed["metadata"]["resourceVersion"])
    with Watch(api, path) as w:
        assert w.headers["content-type"].startswith("application/json")
        make_cm(api, namespace, "during")
        events = w.rest()
    assert [(e["type"], name_of(e)) for e in events] == [("ADDED", "during")]
    assert w.ended
    assert api.get("/healthz").status == 200


def test_send_initial_events_ends_with_annotated_bookmark(api: Client, namespace: str) -> None:
    make_cm(api, namespace, "a")
    make_cm(api, namespace, "b")
    path = query(cm_path(namespace), watch="true", sendInitialEvents="true",
                 resourceVersionMatch="NotOlderThan", allowWatchBookmarks="true")
    with Watch(api, path) as w:
        added = [w.next(), w.next()]
        end = w.next()
        assert sorted(name_of(e) for e in added) == ["a", "b"]
        assert {e["type"] for e in added} == {"ADDED"}
        assert end["type"] == "BOOKMARK"
        assert end["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert int(end["object"]["metadata"]["resourceVersion"]) >= max(
            rv(e["object"]) for e in added)
        make_cm(api, namespace, "c")
        later = w.until(lambda e: e["type"] == "ADDED", skip=is_bookmark)
        assert name_of(later) == "c"


def test_table_watch_sends_column_definitions_once(api: Client, namespace: str) -> None:
    make_cm(api, namespace, "a", data={"k": "v"})
    with Watch(api, query(cm_path(namespace), watch="true"), accept=TABLE) as w:
        first = w.next()
        api.patch(cm_path(namespace, "a"), {"data": {"k": "w"}})
        second = w.next()
    assert first["type"] == "ADDED"
    table = first["object"]
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]][:1] == ["Name"]
    assert table["rows"][0]["cells"][0] == "a"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert second["type"] == "MODIFIED"
    assert not second["object"].get("columnDefinitions")
    assert second["object"]["rows"][0]["cells"][0] == "a"


def test_client_disconnect_mid_watch_leaves_server_healthy(
    api: Client, namespace: str
) -> None:
    make_cm(api, namespace, "a")
    for _ in range(3):
        w = Watch(api, query(cm_path(namespace), watch="true"))
        assert w.next()["type"] == "ADDED"
        w.close()
    assert api.get("/healthz").status == 200
    make_cm(api, namespace, "b")
    with Watch(api, query(cm_path(namespace), watch="true", resourceVersion="0")) as w:
        assert sorted(name_of(w.next()) for _ in range(2)) == ["a", "b"]


# ----------------------------------------------------------- a server that compacts


@pytest.fixture(scope="module")
def compacting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, APIServer]]:
    """A private server whose store keeps one revision of history and compacts every 50 ms."""
    with private_server(tmp_path_factory.mktemp("compacting"), compaction_interval=0.05,
                        keep_revisions=1) as running:
        yield running


def test_compacted_resource_version_is_an_expired_error_event(
    compacting: tuple[Client, APIServer],
) -> None:
    api, app = compacting
    first = make_cm(api, "default", f"c-{uuid.uuid4().hex[:8]}")
    for i in range(3):
        make_cm(api, "default", f"c-{uuid.uuid4().hex[:8]}-{i}")
    wait_for(lambda: app.store.compacted_revision > rv(first), what="compaction")
    old = rv(first)
    with Watch(api, query(cm_path("default"), watch="true", resourceVersion=str(old))) as w:
        events = w.rest()
    assert len(events) == 1
    error = events[0]
    assert error["type"] == "ERROR"
    status = error["object"]
    assert status["kind"] == "Status" and status["apiVersion"] == "v1"
    assert status["status"] == "Failure"
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {old} (")


def test_disconnected_watchers_are_released(compacting: tuple[Client, APIServer]) -> None:
    api, app = compacting
    store: Any = app.store
    baseline = store.watcher_count
    watches = [Watch(api, query(cm_path("default"), watch="true", allowWatchBookmarks="true"))
               for _ in range(3)]
    for w in watches:
        w.until(is_bookmark, skip=lambda e: e["type"] == "ADDED")
    assert store.watcher_count == baseline + 3
    for w in watches:
        w.close()
    wait_for(lambda: store.watcher_count == baseline, what="watchers released")
    assert api.get("/readyz").status == 200
    assert api.get("/api/v1/namespaces/default").status == 200



def test_send_initial_events_false_starts_from_now(api: Client, namespace: str) -> None:
    make_cm(api, namespace, "before")
    path = query(cm_path(namespace), watch="true", sendInitialEvents="false",
                 resourceVersionMatch="NotOlderThan", allowWatchBookmarks="true")
    with Watch(api, path) as w:
        make_cm(api, namespace, "after")
        event = w.until(lambda e: e["type"] == "ADDED", skip=is_bookmark)
    assert name_of(event) == "after"


@pytest.mark.parametrize(("params", "messages"), [
    ({"sendInitialEvents": "true"},
     ["Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"]),
    ({"resourceVersionMatch": "NotOlderThan", "resourceVersion": "1"},
     ["Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
      "provided"]),
    ({"sendInitialEvents": "true", "resourceVersionMatch": "Exact"},
     ["Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
      'Unsupported value: "Exact": supported values: "NotOlderThan"']),
])
def test_invalid_watch_options_are_422(
    api: Client, namespace: str, params: dict[str, str], messages: list[str]
) -> None:
    resp = api.get(query(cm_path(namespace), watch="true", **params))
    assert resp.status == 422, resp.body
    body = resp.json()
    assert body["reason"] == "Invalid"
    assert body["details"]["kind"] == "ListOptions"
    assert body["details"]["group"] == "meta.k8s.io"
    assert [c["message"] for c in body["details"]["causes"]] == messages
    assert {c["field"] for c in body["details"]["causes"]} == {"resourceVersionMatch"}
    assert body["message"].startswith('ListOptions.meta.k8s.io "" is invalid: ')


def test_cluster_wide_watch_spans_namespaces(api: Client, namespace: str) -> None:
    listed = api.get("/api/v1/configmaps").json()
    path = query("/api/v1/configmaps", watch="true",
                 resourceVersion=listed["metadata"]["resourceVersion"],
                 fieldSelector=f"metadata.namespace={namespace}")
    with Watch(api, path) as w:
        make_cm(api, namespace, "here")
        event = w.next()
    assert (event["type"], name_of(event)) == ("ADDED", "here")
    assert event["object"]["metadata"]["namespace"] == namespace
