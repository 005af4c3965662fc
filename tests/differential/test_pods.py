"""Pods, PodDisruptionBudgets and the eviction subresource on both servers.

Neither server runs a kubelet or scheduler here, so Pods stay as written: tests make a Pod
``Running`` and ``Ready`` through its status subresource, which is what a budget counts. Pods are
left unscheduled (no ``spec.nodeName``) where a test looks at the Pod after its eviction, because
kube-apiserver deletes only those at once; scheduled ones wait for their kubelet there.
"""

from __future__ import annotations

import time
from typing import Any

from tests.differential.conftest import answer, ok
from tests.kube import Client, Response

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


def pods(ns: str, name: str = "", sub: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/pods" + (f"/{name}" if name else "") + (
        f"/{sub}" if sub else "")


def pdbs(ns: str, name: str = "", sub: str = "") -> str:
    return f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets" + (
        f"/{name}" if name else "") + (f"/{sub}" if sub else "")


def pod(name: str, node: str = "", **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels}, "spec": spec}


def eviction(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}, **extra}


def create_pod(api: Client, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create a Pod. kube's ServiceAccount admission refuses Pods of a namespace without a
    ``default`` ServiceAccount, and this suite's controller manager makes none: make it here."""
    resp = api.post(f"/api/v1/namespaces/{ns}/serviceaccounts", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
    assert resp.status in (201, 409), resp.body
    return ok(api.post(pods(ns), body), 201)


def make_ready(api: Client, ns: str, name: str) -> None:
    ok(api.patch(pods(ns, name, "status"), {"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}))


def set_budget_status(api: Client, ns: str, name: str, generation: int, healthy: int,
                      desired: int, expected: int) -> None:
    """Write what kube-controller-manager's disruption controller would (this suite's real
    cluster runs none; Shipyard's API server computes the same numbers itself)."""
    ok(api.patch(pdbs(ns, name, "status"), {"status": {
        "observedGeneration": generation, "disruptionsAllowed": max(healthy - desired, 0),
        "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected}}))
    wait_budget(api, ns, name, generation, max(healthy - desired, 0))


def wait_budget(api: Client, ns: str, name: str, generation: int, allowed: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        status = ok(api.get(pdbs(ns, name))).get("status") or {}
        if status.get("observedGeneration") == generation \
                and status.get("disruptionsAllowed") == allowed:
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def evict(api: Client, ns: str, name: str, body: dict[str, Any] | None = None,
          query: str = "") -> Response:
    return api.post(pods(ns, name, "eviction") + query, body or eviction(name))


SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
           "code": 201}


def test_discovery_lists_pods_eviction_and_pdbs(api: Client) -> None:
    core = {r["name"]: r for r in ok(api.get("/api/v1"))["resources"]}
    assert {"pods", "pods/status", "pods/eviction"} <= set(core)
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["categories"] == ["all"]
    evict_entry = core["pods/eviction"]
    assert (evict_entry["group"], evict_entry["version"], evict_entry["kind"],
            evict_entry["verbs"]) == ("policy", "v1", "Eviction", ["create"])
    policy = {r["name"]: r for r in ok(api.get("/apis/policy/v1"))["resources"]}
    assert policy["poddisruptionbudgets"]["shortNames"] == ["pdb"]
    assert "poddisruptionbudgets/status" in policy


def test_pod_without_containers_is_invalid(api: Client, ns: str) -> None:
    create_pod(api, ns, pod("warm"))  # the namespace's ServiceAccount is there now
    got = answer(api.post(pods(ns), {"apiVersion": "v1", "kind": "Pod",
                                     "metadata": {"name": "bad"}, "spec": {}}))
    assert got["code"] == 422 and got["reason"] == "Invalid"
    assert got["message"] == 'Pod "bad" is invalid: spec.containers: Required value'
    assert got["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"}]
    nameless = pod("bad2")
    nameless["spec"]["containers"] = [{"image": "busybox"}, {"name": "b"}]
    got = answer(api.post(pods(ns), nameless))
    assert got["code"] == 422
    fields = {(c["reason"], c["field"]) for c in got["details"]["causes"]}
    assert {("FieldValueRequired", "spec.containers[0].name"),
            ("FieldValueRequired", "spec.containers[1].image")} <= fields


def test_pod_create_starts_pending_and_lists_by_field(api: Client, ns: str) -> None:
    created = create_pod(api, ns, pod("a", node="n1"))
    assert created["status"]["phase"] == "Pending"
    assert created["spec"]["restartPolicy"] == "Always"
    create_pod(api, ns, pod("b", node="n2"))
    create_pod(api, ns, pod("c"))
    make_ready(api, ns, "c")

    def names(selector: str) -> list[str]:
        listed = ok(api.get(pods(ns) + f"?fieldSelector={selector}"))
        assert listed["kind"] == "PodList"
        return sorted(i["metadata"]["name"] for i in listed["items"])

    assert names("spec.nodeName=n1") == ["a"]
    assert names("spec.nodeName!=n1") == ["b", "c"]
    assert names("spec.nodeName=") == ["c"]
    assert names("status.phase=Running") == ["c"]
    assert names("status.phase=Pending,spec.nodeName=n2") == ["b"]
    assert names("metadata.name=b") == ["b"]
    assert answer(api.get(pods(ns) + "?fieldSelector=spec.image=x")) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": "field label not supported: spec.image"}


def test_evict_without_budget_deletes_the_pod(api: Client, ns: str) -> None:
    create_pod(api, ns, pod("a", app="x"))
    make_ready(api, ns, "a")
    resp = evict(api, ns, "a")
    assert (resp.status, resp.json()) == (201, SUCCESS)
    assert api.get(pods(ns, "a")).status == 404


def test_evict_errors(api: Client, ns: str) -> None:
    create_pod(api, ns, pod("a"))
    assert answer(evict(api, ns, "nope")) == {
        "code": 404, "status": "Failure", "reason": "NotFound",
        "message": 'pods "nope" not found', "details": {"name": "nope", "kind": "pods"}}
    assert answer(evict(api, ns, "a", eviction("b"))) == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": "name in URL does not match name in Eviction object"}
    assert api.get(pods(ns, "a")).status == 200


def test_budget_blocks_eviction_until_relaxed(api: Client, ns: str) -> None:
    for name in ("a", "b"):
        create_pod(api, ns, pod(name, app="x"))
        make_ready(api, ns, name)
    ok(api.post(pdbs(ns), {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                           "metadata": {"name": "budget"},
                           "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "x"}}}}),
       201)
    set_budget_status(api, ns, "budget", 1, 2, 2, 2)
    status = ok(api.get(pdbs(ns, "budget")))["status"]
    assert (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"]) == (
        2, 2, 2)

    assert answer(evict(api, ns, "a")) == {
        "code": 429, "status": "Failure", "reason": "TooManyRequests", "message": VIOLATION,
        "details": {"causes": [{"reason": "DisruptionBudget",
                                "message": "The disruption budget budget needs 2 healthy pods "
                                           "and has 2 currently"}]}}
    assert api.get(pods(ns, "a")).status == 200

    ok(api.patch(pdbs(ns, "budget"), {"spec": {"minAvailable": 1}}))
    set_budget_status(api, ns, "budget", 2, 2, 1, 2)
    dry = evict(api, ns, "a", query="?dryRun=All")
    assert dry.status == 201
    assert api.get(pods(ns, "a")).status == 200
    resp = evict(api, ns, "a")
    assert (resp.status, resp.json()) == (201, SUCCESS)
    assert api.get(pods(ns, "a")).status == 404
    wait_budget(api, ns, "budget", 2, 0)  # the eviction spent the one disruption allowed
    assert answer(evict(api, ns, "b"))["code"] == 429


def test_pending_pod_is_evicted_whatever_the_budget(api: Client, ns: str) -> None:
    create_pod(api, ns, pod("a", app="x"))
    ok(api.post(pdbs(ns), {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                           "metadata": {"name": "budget"},
                           "spec": {"minAvailable": 5, "selector": {"matchLabels": {"app": "x"}}}}),
       201)
    set_budget_status(api, ns, "budget", 1, 0, 5, 1)
    resp = evict(api, ns, "a")
    assert (resp.status, resp.json()) == (201, SUCCESS)


def test_two_budgets_for_one_pod_are_refused(api: Client, ns: str) -> None:
    create_pod(api, ns, pod("a", app="x"))
    make_ready(api, ns, "a")
    for name in ("one", "two"):
        ok(api.post(pdbs(ns), {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                               "metadata": {"name": name},
                               "spec": {"maxUnavailable": 1,
                                        "selector": {"matchLabels": {"app": "x"}}}}), 201)
    resp = evict(api, ns, "a")
    assert resp.status == 500
    assert resp.json()["message"] == ("This pod has more than one PodDisruptionBudget, which "
                                      "the eviction subresource does not support.")


def test_strategic_merge_patch_merges_containers_by_name(api: Client, ns: str) -> None:
    body = pod("p")
    body["spec"]["containers"].append({"name": "side", "image": "busybox"})
    create_pod(api, ns, body)
    got = ok(api.patch(pods(ns, "p"), {
        "metadata": {"labels": {"tier": "gold"}},
        "spec": {"containers": [{"name": "side", "image": "busybox:2"}]}},
        content_type="application/strategic-merge-patch+json"))
    assert got["metadata"]["labels"]["tier"] == "gold"
    assert [(c["name"], c["image"]) for c in got["spec"]["containers"]] == [
        ("main", "busybox"), ("side", "busybox:2")]
    assert got["spec"]["containers"][1]["terminationMessagePolicy"] == "File"
