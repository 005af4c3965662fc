"""``kubectl drain`` against Shipyard: Pods, PodDisruptionBudgets and the eviction subresource.

The real kubectl binaries (the oldest and newest supported) cordon a Node, find its Pods by
``spec.nodeName``, look up DaemonSet owners, evict through ``pods/eviction`` and wait for the Pods
to go. Pods are owned by a ReplicaSet (kubectl refuses to drain Pods without a controller unless
``--force``) or a DaemonSet, both served as plain objects. What the server holds afterwards is
read back over HTTP, never through kubectl.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.kube import Client, Server

pytestmark = pytest.mark.kubectl

VERSIONS = ("1.27", "1.33")
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture
def node(api: Client) -> Iterator[str]:
    name = f"n-{uuid.uuid4().hex[:8]}"
    resp = api.post("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node",
                                      "metadata": {"name": name}})
    assert resp.status == 201, resp.body
    yield name
    api.delete(f"/api/v1/nodes/{name}")


def _owner(api: Client, namespace: str, resource: str, kind: str) -> dict[str, Any]:
    body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": resource[:-1]},
            "spec": {"selector": {"matchLabels": {"app": kind.lower()}},
                     "template": {"metadata": {"labels": {"app": kind.lower()}}}}}
    resp = api.post(f"/apis/apps/v1/namespaces/{namespace}/{resource}", body)
    assert resp.status == 201, resp.body
    meta = resp.json()["metadata"]
    return {"apiVersion": "apps/v1", "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def pods_path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/pods" + (f"/{name}" if name else "")


def make_pod(api: Client, namespace: str, name: str, node: str, owner: dict[str, Any],
             ready: bool = True) -> None:
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": owner["kind"].lower()},
                         "ownerReferences": [owner]},
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox"}],
                     "volumes": [{"name": "scratch", "emptyDir": {}}]}}
    resp = api.post(pods_path(namespace), body)
    assert resp.status == 201, resp.body
    if ready:
        resp = api.patch(pods_path(namespace, name) + "/status", {"status": {
            "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0,
                                   "image": "busybox", "imageID": "",
                                   "state": {"running": {}}}]}})
        assert resp.status == 200, resp.body


@pytest.fixture
def workload(api: Client, namespace: str, node: str) -> dict[str, dict[str, Any]]:
    owners = {"rs": _owner(api, namespace, "replicasets", "ReplicaSet"),
              "ds": _owner(api, namespace, "daemonsets", "DaemonSet")}
    make_pod(api, namespace, "web-0", node, owners["rs"])
    make_pod(api, namespace, "web-1", node, owners["rs"])
    make_pod(api, namespace, "agent", node, owners["ds"])
    make_pod(api, namespace, "elsewhere", "some-other-node", owners["rs"])
    return owners


def exists(api: Client, namespace: str, name: str) -> bool:
    status = api.get(pods_path(namespace, name)).status
    assert status in (200, 404)
    return status == 200


@pytest.mark.parametrize("version", VERSIONS)
def test_drain_evicts_the_nodes_pods_but_daemonset_ones(
    server: Server, api: Client, namespace: str, node: str,
    workload: dict[str, dict[str, Any]], version: str,
) -> None:
    proc = server.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                          "--timeout=30s", version=version)
    assert f"node/{node} cordoned" in proc.stdout
    assert "pod/web-0 evicted" in proc.stdout and "pod/web-1 evicted" in proc.stdout
    assert f"node/{node} drained" in proc.stdout
    assert f"ignoring DaemonSet-managed Pods: {namespace}/agent" in proc.stderr
    assert "agent" not in proc.stdout
    assert not exists(api, namespace, "web-0") and not exists(api, namespace, "web-1")
    assert exists(api, namespace, "agent") and exists(api, namespace, "elsewhere")
    assert api.get(f"/api/v1/nodes/{node}").json()["spec"]["unschedulable"] is True


@pytest.mark.parametrize("version", VERSIONS)
def test_drain_waits_on_a_disruption_budget_until_it_is_relaxed(
    server: Server, api: Client, namespace: str, node: str,
    workload: dict[str, dict[str, Any]], version: str,
) -> None:
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "metadata": {"name": "web"},
              "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "replicaset"}}}}
    resp = api.post(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets", budget)
    assert resp.status == 201, resp.body

    blocked = server.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                             "--timeout=2s", version=version, check=False)
    assert blocked.returncode != 0
    assert VIOLATION in blocked.stderr
    assert "global timeout reached: 2s" in blocked.stderr
    assert exists(api, namespace, "web-0") and exists(api, namespace, "web-1")

    # Three healthy Pods match and two may go: drain evicts both.
    resp = api.patch(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/web",
                     {"spec": {"minAvailable": 1}})
    assert resp.status == 200, resp.body
    server.kubectl("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                   "--timeout=30s", version=version)
    assert not exists(api, namespace, "web-0") and not exists(api, namespace, "web-1")
    lines = server.kubectl("get", "pdb", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED",
                                "DISRUPTIONS", "AGE"]
    # The DaemonSet's Pod does not match; "elsewhere" is the one healthy Pod left.
    assert lines[1].split()[:4] == ["web", "1", "N/A", "0"]


def test_kubectl_get_pods_prints_kubes_columns(
    server: Server, api: Client, namespace: str, node: str,
    workload: dict[str, dict[str, Any]],
) -> None:
    make_pod(api, namespace, "waiting", node, workload["rs"], ready=False)
    out = server.kubectl("get", "pods", "-n", namespace).stdout
    assert out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()[1:]}
    assert rows["web-0"] == ["1/1", "Running", "0"]
    assert rows["waiting"] == ["0/1", "Pending", "0"]
    wide = server.kubectl("get", "po", "-n", namespace, "-o", "wide",
                          f"--field-selector=spec.nodeName={node}").stdout
    assert wide.splitlines()[0].split()[5:7] == ["IP", "NODE"]
    assert sorted(line.split()[0] for line in wide.splitlines()[1:]) == [
        "agent", "waiting", "web-0", "web-1"]
    assert all(line.split()[6] == node for line in wide.splitlines()[1:])
