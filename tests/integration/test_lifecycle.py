"""Object lifecycle on the live server: finalizers and graceful deletion, owner-reference
garbage collection (Background, Foreground, Orphan, dangling owners, chains, cluster-scoped
owners) and namespace deletion, as kube-apiserver and kube-controller-manager do them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.live import (
    CRD_PATH,
    Watch,
    crd,
    gone,
    install_crd,
    name_of,
    query,
    wait_for,
)
from tests.kube import Client

GROUP = f"lc{uuid.uuid4().hex[:6]}.example.com"
FINALIZER = "example.com/hold"


def cm_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def widget_path(ns: str, name: str = "") -> str:
    return f"/apis/{GROUP}/v1/namespaces/{ns}/widgets" + (f"/{name}" if name else "")


def cluster_path(name: str = "") -> str:
    return f"/apis/{GROUP}/v1/clusterwidgets" + (f"/{name}" if name else "")


@pytest.fixture(scope="module")
def widgets(server: Any) -> Iterator[None]:
    api = server.client()
    install_crd(api, crd(GROUP, "widgets", "Widget", status=True))
    install_crd(api, crd(GROUP, "clusterwidgets", "ClusterWidget", scope="Cluster"))
    yield
    for plural in ("widgets", "clusterwidgets"):
        api.delete(f"{CRD_PATH}/{plural}.{GROUP}")


def make(api: Client, path: str, name: str, *, kind: str = "ConfigMap",
         api_version: str = "v1", finalizers: list[str] | None = None,
         owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if finalizers:
        meta["finalizers"] = finalizers
    if owners:
        meta["ownerReferences"] = owners
    resp = api.post(path, {"apiVersion": api_version, "kind": kind, "metadata": meta})
    assert resp.status == 201, resp.body
    obj: dict[str, Any] = resp.json()
    return obj


def owner_ref(obj: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    ref = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
           "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}
    if block:
        ref["blockOwnerDeletion"] = True
    return ref


def drop_finalizers(api: Client, path: str) -> Any:
    return api.patch(path, {"metadata": {"finalizers": None}})


# ---------------------------------------------------------------- finalizers


def test_delete_with_finalizer_marks_then_last_removal_deletes(
    api: Client, namespace: str
) -> None:
    make(api, cm_path(namespace), "held", finalizers=[FINALIZER, "example.com/second"])
    listed = api.get(cm_path(namespace)).json()
    with Watch(api, query(cm_path(namespace), watch="true",
                          resourceVersion=listed["metadata"]["resourceVersion"])) as w:
        resp = api.delete(cm_path(namespace, "held"))
        assert resp.status == 200
        body = resp.json()
        assert body["kind"] == "ConfigMap"
        assert body["metadata"]["deletionTimestamp"]
        assert body["metadata"]["deletionGracePeriodSeconds"] == 0
        marked = w.next()
        assert marked["type"] == "MODIFIED"
        assert marked["object"]["metadata"]["deletionTimestamp"] == \
            body["metadata"]["deletionTimestamp"]

        # Deleting again changes nothing and still answers with the object.
        again = api.delete(cm_path(namespace, "held"))
        assert again.status == 200
        assert again.json()["metadata"]["deletionTimestamp"] == \
            body["metadata"]["deletionTimestamp"]

        api.patch(cm_path(namespace, "held"), {"metadata": {"finalizers": [FINALIZER]}})
        assert w.next()["type"] == "MODIFIED"
        assert api.get(cm_path(namespace, "held")).status == 200

        resp = drop_finalizers(api, cm_path(namespace, "held"))
        assert resp.status == 200
        deleted = w.next()
        assert (deleted["type"], name_of(deleted)) == ("DELETED", "held")
    assert api.get(cm_path(namespace, "held")).status == 404


def test_delete_of_a_custom_resource_with_finalizer_bumps_generation(
    api: Client, namespace: str, widgets: None
) -> None:
    created = make(api, widget_path(namespace), "w", kind="Widget",
                   api_version=f"{GROUP}/v1", finalizers=[FINALIZER])
    assert created["metadata"]["generation"] == 1
    resp = api.delete(widget_path(namespace, "w"))
    assert resp.status == 200
    body = resp.json()
    assert body["kind"] == "Widget"
    assert body["metadata"]["deletionTimestamp"]
    assert body["metadata"]["generation"] == 2
    assert drop_finalizers(api, widget_path(namespace, "w")).status == 200
    assert api.get(widget_path(namespace, "w")).status == 404


def test_delete_without_finalizers_answers_success_status(api: Client, namespace: str) -> None:
    obj = make(api, cm_path(namespace), "plain")
    body = api.delete(cm_path(namespace, "plain")).json()
    assert body["kind"] == "Status" and body["status"] == "Success"
    assert body["details"] == {"name": "plain", "kind": "configmaps",
                               "uid": obj["metadata"]["uid"]}


def test_no_new_finalizers_while_deleting(api: Client, namespace: str) -> None:
    make(api, cm_path(namespace), "held", finalizers=[FINALIZER])
    api.delete(cm_path(namespace, "held"))
    resp = api.patch(cm_path(namespace, "held"),
                     {"metadata": {"finalizers": [FINALIZER, "example.com/new"]}})
    assert resp.status == 422, resp.body
    body = resp.json()
    assert body["reason"] == "Invalid"
    cause = body["details"]["causes"][0]
    assert cause["field"] == "metadata.finalizers"
    assert cause["message"] == ('Forbidden: no new finalizers can be added if the object is '
                                'being deleted, found new finalizers []string{"example.com/new"}')
    assert 'no new finalizers can be added' in body["message"]
    drop_finalizers(api, cm_path(namespace, "held"))


def test_deletion_timestamp_is_immutable(api: Client, namespace: str) -> None:
    make(api, cm_path(namespace), "held", finalizers=[FINALIZER])
    stamp = api.delete(cm_path(namespace, "held")).json()["metadata"]["deletionTimestamp"]
    resp = api.patch(cm_path(namespace, "held"),
                     {"metadata": {"deletionTimestamp": "2001-01-01T00:00:00Z"}})
    # As upstream's BeforeUpdate: the stored deletionTimestamp silently wins.
    assert resp.status == 200, resp.body
    assert api.get(cm_path(namespace, "held")).json()["metadata"]["deletionTimestamp"] == stamp
    current = api.get(cm_path(namespace, "held")).json()
    del current["metadata"]["deletionTimestamp"]
    assert api.put(cm_path(namespace, "held"), current).status == 200
    assert api.get(cm_path(namespace, "held")).json()["metadata"]["deletionTimestamp"] == stamp
    drop_finalizers(api, cm_path(namespace, "held"))
    wait_for(gone(api, cm_path(namespace, "held")), what="held deleted")


def test_deletion_timestamp_cannot_be_set_by_a_write(api: Client, namespace: str) -> None:
    make(api, cm_path(namespace), "live")
    api.patch(cm_path(namespace, "live"),
              {"metadata": {"deletionTimestamp": "2001-01-01T00:00:00Z"}})
    assert "deletionTimestamp" not in api.get(cm_path(namespace, "live")).json()["metadata"]


# ---------------------------------------------------------------- garbage collection


def test_background_deletes_dependents(api: Client, namespace: str) -> None:
    owner = make(api, cm_path(namespace), "owner")
    make(api, cm_path(namespace), "dep1", owners=[owner_ref(owner)])
    make(api, cm_path(namespace), "dep2", owners=[owner_ref(owner, block=True)])
    resp = api.delete(cm_path(namespace, "owner"), {"kind": "DeleteOptions", "apiVersion": "v1",
                                                    "propagationPolicy": "Background"})
    assert resp.status == 200
    assert api.get(cm_path(namespace, "owner")).status == 404
    for dep in ("dep1", "dep2"):
        wait_for(gone(api, cm_path(namespace, dep)), what=f"{dep} collected")


def test_dependent_with_a_surviving_owner_stays(api: Client, namespace: str) -> None:
    a = make(api, cm_path(namespace), "a")
    b = make(api, cm_path(namespace), "b")
    make(api, cm_path(namespace), "shared", owners=[owner_ref(a), owner_ref(b)])
    make(api, cm_path(namespace), "only-a", owners=[owner_ref(a)])
    api.delete(cm_path(namespace, "a"))
    wait_for(gone(api, cm_path(namespace, "only-a")), what="only-a collected")
    assert api.get(cm_path(namespace, "shared")).status == 200


def test_foreground_waits_for_blocking_dependents(api: Client, namespace: str) -> None:
    owner = make(api, cm_path(namespace), "owner")
    make(api, cm_path(namespace), "blocker", owners=[owner_ref(owner, block=True)],
         finalizers=[FINALIZER])
    make(api, cm_path(namespace), "free", owners=[owner_ref(owner)])
    resp = api.delete(cm_path(namespace, "owner"), {"propagationPolicy": "Foreground"})
    assert resp.status == 200
    body = resp.json()
    assert body["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in body["metadata"]["finalizers"]
    # The GC deletes the dependents; the blocker is held by its own finalizer.
    wait_for(gone(api, cm_path(namespace, "free")), what="free collected")
    wait_for(lambda: api.get(cm_path(namespace, "blocker")).json()["metadata"].get(
        "deletionTimestamp"), what="blocker marked")
    owner_now = api.get(cm_path(namespace, "owner"))
    assert owner_now.status == 200
    assert owner_now.json()["metadata"]["finalizers"] == ["foregroundDeletion"]
    drop_finalizers(api, cm_path(namespace, "blocker"))
    wait_for(gone(api, cm_path(namespace, "blocker")), what="blocker deleted")
    wait_for(gone(api, cm_path(namespace, "owner")), what="owner deleted")


def test_orphan_keeps_dependents_and_strips_owner_reference(
    api: Client, namespace: str
) -> None:
    owner = make(api, cm_path(namespace), "owner")
    other = make(api, cm_path(namespace), "other")
    make(api, cm_path(namespace), "dep", owners=[owner_ref(owner), owner_ref(other)])
    make(api, cm_path(namespace), "lone", owners=[owner_ref(owner)])
    resp = api.delete(cm_path(namespace, "owner"), {"propagationPolicy": "Orphan"})
    assert resp.status == 200
    assert "orphan" in resp.json()["metadata"]["finalizers"]
    wait_for(gone(api, cm_path(namespace, "owner")), what="owner deleted")
    dep = api.get(cm_path(namespace, "dep")).json()
    assert dep["metadata"]["ownerReferences"] == [owner_ref(other)]
    lone = api.get(cm_path(namespace, "lone"))
    assert lone.status == 200
    assert "ownerReferences" not in lone.json()["metadata"]


def test_orphan_dependents_query_parameter(api: Client, namespace: str) -> None:
    owner = make(api, cm_path(namespace), "owner")
    make(api, cm_path(namespace), "dep", owners=[owner_ref(owner)])
    assert api.delete(query(cm_path(namespace, "owner"), orphanDependents="true")).status == 200
    wait_for(gone(api, cm_path(namespace, "owner")), what="owner deleted")
    assert "ownerReferences" not in api.get(cm_path(namespace, "dep")).json()["metadata"]


def test_dangling_owner_reference_is_collected(api: Client, namespace: str) -> None:
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost",
             "uid": str(uuid.uuid4())}
    make(api, cm_path(namespace), "dangling", owners=[ghost])
    wait_for(gone(api, cm_path(namespace, "dangling")), what="dangling collected")


def test_three_level_chain(api: Client, namespace: str, widgets: None) -> None:
    top = make(api, widget_path(namespace), "top", kind="Widget", api_version=f"{GROUP}/v1")
    middle = make(api, cm_path(namespace), "middle", owners=[owner_ref(top)])
    make(api, cm_path(namespace), "bottom", owners=[owner_ref(middle)])
    assert api.delete(widget_path(namespace, "top")).status == 200
    wait_for(gone(api, cm_path(namespace, "middle")), what="middle collected")
    wait_for(gone(api, cm_path(namespace, "bottom")), what="bottom collected")


def test_foreground_chain_deletes_bottom_up(api: Client, namespace: str) -> None:
    top = make(api, cm_path(namespace), "top")
    middle = make(api, cm_path(namespace), "middle", owners=[owner_ref(top, block=True)])
    make(api, cm_path(namespace), "bottom", owners=[owner_ref(middle, block=True)],
         finalizers=[FINALIZER])
    api.delete(cm_path(namespace, "top"), {"propagationPolicy": "Foreground"})
    wait_for(lambda: api.get(cm_path(namespace, "bottom")).json()["metadata"].get(
        "deletionTimestamp"), what="bottom marked")
    middle_now = api.get(cm_path(namespace, "middle")).json()
    assert "foregroundDeletion" in middle_now["metadata"]["finalizers"]
    assert api.get(cm_path(namespace, "top")).status == 200
    drop_finalizers(api, cm_path(namespace, "bottom"))
    for name in ("bottom", "middle", "top"):
        wait_for(gone(api, cm_path(namespace, name)), what=f"{name} deleted")


def test_cluster_scoped_owner_of_namespaced_dependents(
    api: Client, namespace: str, widgets: None
) -> None:
    name = f"cw-{uuid.uuid4().hex[:8]}"
    owner = make(api, cluster_path(), name, kind="ClusterWidget", api_version=f"{GROUP}/v1")
    make(api, cm_path(namespace), "dep", owners=[owner_ref(owner)])
    make(api, widget_path(namespace), "wdep", kind="Widget", api_version=f"{GROUP}/v1",
         owners=[owner_ref(owner)])
    assert api.delete(cluster_path(name)).status == 200
    wait_for(gone(api, cm_path(namespace, "dep")), what="dep collected")
    wait_for(gone(api, widget_path(namespace, "wdep")), what="wdep collected")


# ---------------------------------------------------------------- namespaces


def test_system_namespaces_exist(api: Client) -> None:
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        resp = api.get(f"/api/v1/namespaces/{name}")
        assert resp.status == 200, name
        assert resp.json()["status"]["phase"] == "Active"


def test_namespace_deletion_empties_then_removes_it(api: Client, widgets: None) -> None:
    ns = f"t-{uuid.uuid4().hex[:10]}"
    assert api.post("/api/v1/namespaces", {"metadata": {"name": ns}}).status == 201
    make(api, cm_path(ns), "plain")
    make(api, cm_path(ns), "held", finalizers=[FINALIZER])
    make(api, widget_path(ns), "w", kind="Widget", api_version=f"{GROUP}/v1")
    make(api, f"/api/v1/namespaces/{ns}/secrets", "s", kind="Secret")

    resp = api.delete(f"/api/v1/namespaces/{ns}")
    assert resp.status == 200
    body = resp.json()
    assert body["kind"] == "Namespace"
    assert body["status"]["phase"] == "Terminating"
    assert body["metadata"]["deletionTimestamp"]
    assert body["spec"]["finalizers"] == ["kubernetes"]

    refused = api.post(cm_path(ns), {"metadata": {"name": "late"}})
    assert refused.status == 403, refused.body
    status = refused.json()
    assert status["reason"] == "Forbidden"
    assert status["message"] == (f'configmaps "late" is forbidden: unable to create new '
                                 f"content in namespace {ns} because it is being terminated")
    assert status["details"]["causes"][0]["reason"] == "NamespaceTerminating"

    for path in (cm_path(ns, "plain"), widget_path(ns, "w"),
                 f"/api/v1/namespaces/{ns}/secrets/s"):
        wait_for(gone(api, path), what=f"{path} deleted")
    # The finalizer on "held" keeps the namespace.
    wait_for(lambda: api.get(cm_path(ns, "held")).json()["metadata"].get("deletionTimestamp"),
             what="held marked")
    still = api.get(f"/api/v1/namespaces/{ns}")
    assert still.status == 200
    assert still.json()["status"]["phase"] == "Terminating"

    with Watch(api, query("/api/v1/namespaces", watch="true",
                          fieldSelector=f"metadata.name={ns}")) as w:
        assert w.next()["type"] == "ADDED"
        assert drop_finalizers(api, cm_path(ns, "held")).status == 200
        event = w.until(lambda e: e["type"] == "DELETED",
                        skip=lambda e: e["type"] == "MODIFIED")
        assert name_of(event) == ns
    assert api.get(f"/api/v1/namespaces/{ns}").status == 404
    assert api.get(cm_path(ns, "held")).status == 404


def test_create_in_missing_namespace_is_not_found(api: Client) -> None:
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    resp = api.post(cm_path(missing), {"metadata": {"name": "x"}})
    assert resp.status == 404
    body = resp.json()
    assert body["reason"] == "NotFound"
    assert body["message"] == f'namespaces "{missing}" not found'


def test_foreground_without_dependents_deletes_at_once(api: Client, namespace: str) -> None:
    make(api, cm_path(namespace), "alone")
    resp = api.delete(cm_path(namespace, "alone"), {"propagationPolicy": "Foreground"})
    assert resp.status == 200
    wait_for(gone(api, cm_path(namespace, "alone")), what="alone deleted")


def test_delete_collection_runs_the_same_lifecycle(api: Client, namespace: str) -> None:
    owner = make(api, cm_path(namespace), "owner")
    make(api, cm_path(namespace), "held", finalizers=[FINALIZER])
    make(api, f"/api/v1/namespaces/{namespace}/secrets", "dep", kind="Secret",
         owners=[owner_ref(owner)])
    resp = api.delete(cm_path(namespace))
    assert resp.status == 200
    assert resp.json()["status"] == "Success"
    assert api.get(cm_path(namespace, "owner")).status == 404
    assert api.get(cm_path(namespace, "held")).json()["metadata"]["deletionTimestamp"]
    wait_for(gone(api, f"/api/v1/namespaces/{namespace}/secrets/dep"), what="dep collected")
    drop_finalizers(api, cm_path(namespace, "held"))
    assert api.get(cm_path(namespace, "held")).status == 404
