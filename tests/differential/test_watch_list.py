"""Watch and list on both servers: initial events, event sequences, 410 in-stream, bookmarks
and WatchList options, paging, label and field selectors, and their bad-input answers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.differential.conftest import GROUP, answer, ok
from tests.integration.live import Watch, query
from tests.kube import Client


def cms(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def make(api: Client, ns: str, name: str, **labels: str) -> dict[str, Any]:
    return ok(api.post(cms(ns), {"metadata": {"name": name, "labels": labels}}), 201)


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"].get("name", "")) for e in events]


def test_initial_events_then_changes(api: Client, ns: str) -> None:
    make(api, ns, "b")
    make(api, ns, "a")
    with Watch(api, query(cms(ns), watch="true", timeoutSeconds=2)) as w:
        initial = [w.next(), w.next()]
        make(api, ns, "c")
        ok(api.patch(cms(ns, "a"), {"data": {"k": "v"}}))
        ok(api.delete(cms(ns, "b")))
        later = [w.next(), w.next(), w.next()]
        assert w.rest() == []
    # The synthetic ADDED events come in no promised order (kube-apiserver 1.33 under load
    # sent b before a).
    assert sorted(kinds(initial)) == [("ADDED", "a"), ("ADDED", "b")]
    assert kinds(later) == [("ADDED", "c"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert initial[0]["object"]["kind"] == "ConfigMap"
    assert initial[0]["object"]["apiVersion"] == "v1"


def test_watch_from_resource_version_replays(api: Client, ns: str) -> None:
    start = make(api, ns, "a")["metadata"]["resourceVersion"]
    ok(api.patch(cms(ns, "a"), {"data": {"k": "v"}}))
    make(api, ns, "b")
    ok(api.delete(cms(ns, "a")))
    with Watch(api, query(cms(ns), watch="true", resourceVersion=start,
                          timeoutSeconds=1)) as w:
        events = w.rest()
    assert kinds(events) == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    assert events[2]["object"]["data"] == {"k": "v"}


def test_label_selector_watch_sees_objects_leave_and_enter(api: Client, ns: str) -> None:
    make(api, ns, "a", app="x")
    rv = ok(api.get(cms(ns)))["metadata"]["resourceVersion"]
    with Watch(api, query(cms(ns), watch="true", resourceVersion=rv, labelSelector="app=x",
                          timeoutSeconds=2)) as w:
        ok(api.patch(cms(ns, "a"), {"metadata": {"labels": {"app": "y"}}}))
        ok(api.patch(cms(ns, "a"), {"metadata": {"labels": {"app": "x"}}}))
        events = [w.next(), w.next()]
    assert kinds(events) == [("DELETED", "a"), ("ADDED", "a")]


@pytest.mark.shipyard_differs(
    reason="Shipyard replays history back to compaction; kube's watch cache answers 410 for "
           "any revision older than its window")
def test_watch_from_an_old_revision_is_410_in_stream(api: Client, ns: str) -> None:
    make(api, ns, "a")
    with Watch(api, query(cms(ns), watch="true", resourceVersion="1", timeoutSeconds=2)) as w:
        events = w.rest()
    assert [e["type"] for e in events] == ["ERROR"]
    status = events[0]["object"]
    assert {k: v for k, v in status.items() if k != "message"} == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "reason": "Expired", "code": 410}
    assert re.fullmatch(r"too old resource version: 1 \(\d+\)", status["message"])


def test_watch_from_a_future_revision_waits(api: Client, ns: str) -> None:
    with Watch(api, query(cms(ns), watch="true", resourceVersion="999999999",
                          timeoutSeconds=1)) as w:
        assert w.rest() == []


def test_list_from_a_future_revision_times_out(api: Client, ns: str) -> None:
    got = answer(api.get(query(cms(ns), resourceVersion="999999999")))
    assert {k: v for k, v in got.items() if k != "message"} == {
        "code": 504, "status": "Failure", "reason": "Timeout",
        "details": {"causes": [{"reason": "ResourceVersionTooLarge",
                                "message": "Too large resource version"}],
                    "retryAfterSeconds": 1}}
    assert re.fullmatch(r"Timeout: Too large resource version: 999999999, current: \d+",
                        got["message"])


def test_invalid_resource_version(api: Client, ns: str) -> None:
    assert answer(api.get(query(cms(ns), resourceVersion="abc"))) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": 'invalid resource version: resourceVersion: Invalid value: "abc": '
                   'strconv.ParseUint: parsing "abc": invalid syntax'}


def test_bookmarks_only_when_asked_and_carry_only_the_revision(api: Client, ns: str) -> None:
    make(api, ns, "a")
    rv = ok(api.get(cms(ns)))["metadata"]["resourceVersion"]
    with Watch(api, query(cms(ns), watch="true", resourceVersion=rv,
                          timeoutSeconds=1)) as w:
        assert w.rest() == []
    with Watch(api, query(cms(ns), watch="true", resourceVersion=rv, allowWatchBookmarks="true",
                          timeoutSeconds=2)) as w:
        events = w.rest()
    # kube sends one a minute (and before a long watch's deadline), Shipyard's test server
    # every second: both may send none here, but any bookmark has this shape.
    for event in events:
        assert event["type"] == "BOOKMARK"
        assert event["object"]["kind"] == "ConfigMap"
        assert set(event["object"]["metadata"]) <= {"resourceVersion", "creationTimestamp"}


@pytest.mark.shipyard_differs(
    reason="Shipyard serves sendInitialEvents (WatchList on, as 1.32); 1.33 has it off")
def test_send_initial_events_needs_the_watch_list_feature(api: Client, ns: str) -> None:
    got = answer(api.get(query(cms(ns), watch="true", sendInitialEvents="true",
                               resourceVersionMatch="NotOlderThan", timeoutSeconds=1)))
    assert got == {
        "code": 422, "status": "Failure", "reason": "Invalid",
        "message": 'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: '
                   "sendInitialEvents is forbidden for watch unless the WatchList feature gate "
                   "is enabled",
        "details": {"group": "meta.k8s.io", "kind": "ListOptions", "causes": [{
            "reason": "FieldValueForbidden",
            "message": "Forbidden: sendInitialEvents is forbidden for watch unless the "
                       "WatchList feature gate is enabled",
            "field": "sendInitialEvents"}]}}


def test_paging_keeps_one_revision(api: Client, ns: str) -> None:
    for name in ("a", "b", "c", "d", "e"):
        make(api, ns, name)
    first = ok(api.get(query(cms(ns), limit=2)))
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    assert first["metadata"]["remainingItemCount"] == 3
    rv = first["metadata"]["resourceVersion"]
    make(api, ns, "bb")  # after the first page: not in this list
    second = ok(api.get(query(cms(ns), limit=2, **{"continue": first["metadata"]["continue"]})))
    third = ok(api.get(query(cms(ns), limit=2, **{"continue": second["metadata"]["continue"]})))
    assert [i["metadata"]["name"] for i in second["items"] + third["items"]] == ["c", "d", "e"]
    assert second["metadata"]["resourceVersion"] == third["metadata"]["resourceVersion"] == rv
    assert "continue" not in third["metadata"] and "remainingItemCount" not in third["metadata"]


def test_list_errors(api: Client, ns: str, widget_crd: str) -> None:
    assert answer(api.get(query(cms(ns), labelSelector="a in b"))) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": "unable to parse requirement: found 'b' expected: '('"}
    assert answer(api.get(query(cms(ns), fieldSelector="data.x=y"))) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": '"data.x" is not a known field selector: only "metadata.name", '
                   '"metadata.namespace"'}
    assert answer(api.get(query(f"/apis/{GROUP}/v1/widgets", fieldSelector="spec.x=y"))) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": "field label not supported: spec.x"}
    assert answer(api.get(query(cms(ns), labelSelector="==="))) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": "found '==', expected: !, identifier, or 'end of string'"}
    bad_continue = answer(api.get(query(cms(ns), limit=1, **{"continue": "abc"})))
    assert (bad_continue["code"], bad_continue["reason"]) == (400, "BadRequest")
    assert bad_continue["message"].startswith("invalid continue token: continue key is not "
                                              "valid: ")


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=x", ["a"]), ("app!=x", ["b", "c"]), ("app in (x,y)", ["a", "b"]),
    ("app notin (x)", ["b", "c"]), ("app", ["a", "b"]), ("!app", ["c"]),
    ("app=x,tier=web", ["a"]), ("n>1", ["b"]), ("n<2", ["a"]),
])
def test_label_selectors(api: Client, ns: str, selector: str, expected: list[str]) -> None:
    make(api, ns, "a", app="x", tier="web", n="1")
    make(api, ns, "b", app="y", n="2")
    make(api, ns, "c")
    got = ok(api.get(query(cms(ns), labelSelector=selector)))
    assert [i["metadata"]["name"] for i in got["items"]] == expected


def test_field_selectors(api: Client, ns: str) -> None:
    make(api, ns, "a")
    make(api, ns, "b")
    names = [i["metadata"]["name"] for i in ok(api.get(query(
        cms(ns), fieldSelector="metadata.name!=a")))["items"]]
    assert names == ["b"]
    cluster_wide = ok(api.get(query("/api/v1/configmaps",
                                    fieldSelector=f"metadata.namespace={ns},metadata.name=a")))
    assert [i["metadata"]["name"] for i in cluster_wide["items"]] == ["a"]
