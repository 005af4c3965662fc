"""Restarting the server on the same SQLite file loses nothing: the same objects with the same
uids and resourceVersions, a revision that continues where it stopped, history a watch can
resume from, and CRDs (with their objects) served from the first request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.live import (
    CRD_PATH,
    Watch,
    crd,
    gone,
    install_crd,
    private_server,
    query,
    wait_for,
)
from tests.kube import Client

GROUP = "restart.example.com"
NS = "default"
WIDGETS = f"/apis/{GROUP}/v1/namespaces/{NS}/widgets"
CMS = f"/api/v1/namespaces/{NS}/configmaps"


def test_restart_keeps_objects_revisions_and_crds(tmp_path: Path) -> None:
    before: dict[str, dict[str, Any]] = {}
    with private_server(tmp_path) as (api, _app):
        install_crd(api, crd(GROUP, "widgets", "Widget", versions=("v1beta1", "v1"),
                             storage="v1", status=True))
        assert api.post(CMS, {"metadata": {"name": "cm", "labels": {"a": "b"}},
                              "data": {"k": "v"}}).status == 201
        assert api.patch(f"{CMS}/cm", {"data": {"k": "w"}}).status == 200
        assert api.post(WIDGETS, {"apiVersion": f"{GROUP}/v1", "kind": "Widget",
                                  "metadata": {"name": "w", "finalizers": ["x.io/hold"]},
                                  "spec": {"size": 1}}).status == 201
        assert api.post("/api/v1/namespaces", {"metadata": {"name": "extra"}}).status == 201
        assert api.post(CMS, {"metadata": {"name": "doomed"}}).status == 201
        assert api.delete(f"{CMS}/doomed").status == 200
        for path in (f"{CMS}/cm", f"{WIDGETS}/w", "/api/v1/namespaces/extra",
                     f"{CRD_PATH}/widgets.{GROUP}"):
            before[path] = api.get(path).json()
        listed = api.get(CMS).json()
        revision = int(listed["metadata"]["resourceVersion"])

    with private_server(tmp_path) as (api, _app):
        # CRDs are served by the first request after startup, not after a controller pass.
        first = api.get(f"{WIDGETS}/w")
        assert first.status == 200, first.body
        for path, obj in before.items():
            assert api.get(path).json() == obj, path
        assert api.get(f"{CMS}/doomed").status == 404
        as_beta = api.get(f"/apis/{GROUP}/v1beta1/namespaces/{NS}/widgets/w").json()
        assert as_beta["apiVersion"] == f"{GROUP}/v1beta1"
        assert as_beta["metadata"]["resourceVersion"] == \
            before[f"{WIDGETS}/w"]["metadata"]["resourceVersion"]

        listed = api.get(CMS).json()
        assert int(listed["metadata"]["resourceVersion"]) >= revision
        created = api.post(CMS, {"metadata": {"name": "after"}})
        assert created.status == 201
        assert int(created.json()["metadata"]["resourceVersion"]) > revision

        # History survives: a watch from before the restart replays what came after it.
        cm_rv = before[f"{CMS}/cm"]["metadata"]["resourceVersion"]
        with Watch(api, query(CMS, watch="true", resourceVersion=cm_rv)) as w:
            added = w.next()
            assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", "doomed")
            assert w.next()["type"] == "DELETED"
            assert w.next()["object"]["metadata"]["name"] == "after"

        # The restarted server's controllers still run: finalizers and GC work.
        assert api.delete(f"{WIDGETS}/w").status == 200
        assert api.patch(f"{WIDGETS}/w", {"metadata": {"finalizers": None}}).status == 200
        assert api.get(f"{WIDGETS}/w").status == 404
        system = [api.get(f"/api/v1/namespaces/{n}").status
                  for n in ("default", "kube-system", "kube-public", "kube-node-lease")]
        assert system == [200] * 4
        assert api.get("/readyz").status == 200


def marked(api: Client, path: str) -> Callable[[], bool]:
    return lambda: bool(api.get(path).json()["metadata"].get("deletionTimestamp"))


def test_deletions_in_progress_resume_after_restart(tmp_path: Path) -> None:
    ns = "leaving"
    with private_server(tmp_path) as (api, _app):
        assert api.post("/api/v1/namespaces", {"metadata": {"name": ns}}).status == 201
        assert api.post(f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {
            "name": "held", "finalizers": ["x.io/hold"]}}).status == 201
        owner = api.post(f"{CMS}", {"metadata": {"name": "owner"}}).json()
        assert api.post(f"{CMS}", {"metadata": {
            "name": "blocker", "finalizers": ["x.io/hold"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                 "uid": owner["metadata"]["uid"],
                                 "blockOwnerDeletion": True}]}}).status == 201
        assert api.delete(f"/api/v1/namespaces/{ns}").status == 200
        assert api.delete(f"{CMS}/owner", {"propagationPolicy": "Foreground"}).status == 200

    with private_server(tmp_path) as (api, _app):
        assert api.get(f"/api/v1/namespaces/{ns}").json()["status"]["phase"] == "Terminating"
        assert "foregroundDeletion" in api.get(f"{CMS}/owner").json()["metadata"]["finalizers"]
        for path in (f"/api/v1/namespaces/{ns}/configmaps/held", f"{CMS}/blocker"):
            wait_for(marked(api, path), what=f"{path} marked")
            assert api.patch(path, {"metadata": {"finalizers": None}}).status == 200
        wait_for(gone(api, f"/api/v1/namespaces/{ns}"), what="namespace gone")
        wait_for(gone(api, f"{CMS}/owner"), what="owner gone")
