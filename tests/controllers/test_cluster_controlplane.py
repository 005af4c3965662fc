"""A Cluster with a control plane provider object (a stand-in kind served by a test CRD):
the Cluster adopts it, reads initialization, availability and replica counters from it, and on
deletion removes it before the infrastructure cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.client import Object
from tests.kube import Server
from tests.providers.harness import (
    INFRA,
    V2,
    Env,
    capi,
    cluster,
    condition,
    env,
    eventually,
    infra_cluster,
    install_crd,
)

__all__ = ["capi", "env"]

CP_GROUP = "controlplane.cluster.x-k8s.io"
CP = f"{CP_GROUP}/v1beta1"
HOLD = "test.shipyard.dev/hold"


@pytest.fixture(scope="module")
def control_plane_crd(capi: Server) -> Iterator[None]:
    api = capi.client()
    install_crd(api, {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"testcontrolplanes.{CP_GROUP}",
                     "labels": {"cluster.x-k8s.io/v1beta1": "v1beta1"}},
        "spec": {"group": CP_GROUP, "scope": "Namespaced",
                 "names": {"kind": "TestControlPlane", "plural": "testcontrolplanes"},
                 "versions": [{"name": "v1beta1", "served": True, "storage": True,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}]},
    })
    yield
    api.pool.clear()


async def test_the_control_plane_object_is_adopted_read_and_deleted_before_infra(
        env: Env, control_plane_crd: None) -> None:
    await env.create(infra_cluster("cp1"))
    await env.create({"apiVersion": CP, "kind": "TestControlPlane",
                      "metadata": {"name": "cp1", "finalizers": [HOLD]}, "spec": {"replicas": 3}})
    c = cluster("cp1")
    c["spec"]["controlPlaneRef"] = {"apiGroup": CP_GROUP, "kind": "TestControlPlane",
                                    "name": "cp1"}
    await env.create(c)

    async def adopted() -> Object | None:
        cp = await env.get(CP, "TestControlPlane", "cp1")
        return cp if cp and cp["metadata"].get("ownerReferences") else None

    cp = await eventually(adopted, "control plane adopted")
    assert cp["metadata"]["ownerReferences"][0]["kind"] == "Cluster"
    assert cp["metadata"]["ownerReferences"][0]["controller"] is True
    assert cp["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "cp1"

    async def waiting() -> Object | None:
        got = await env.get(V2, "Cluster", "cp1")
        return got if condition(got, "ControlPlaneInitialized").get("status") == "False" \
            and (got or {})["status"].get("phase") == "Provisioned" else None

    await eventually(waiting, "Cluster Provisioned, control plane not initialized")

    await env.kube.patch(CP, "TestControlPlane", "cp1", {"status": {
        "initialization": {"controlPlaneInitialized": True}, "replicas": 3, "readyReplicas": 2,
        "conditions": [{"type": "Available", "status": "True", "reason": "Available",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}},
        env.namespace, subresource="status")

    async def initialized() -> Object | None:
        got = await env.get(V2, "Cluster", "cp1")
        return got if condition(got, "ControlPlaneAvailable").get("status") == "True" else None

    got = await eventually(initialized, "control plane initialized and available")
    assert got["status"]["initialization"]["controlPlaneInitialized"] is True
    assert condition(got, "ControlPlaneInitialized")["status"] == "True"
    assert got["status"]["controlPlane"] == {"desiredReplicas": 3, "replicas": 3,
                                             "readyReplicas": 2}
    assert condition(got, "Available")["status"] == "True"

    await env.kube.delete(V2, "Cluster", "cp1", env.namespace)

    async def waiting_for_control_plane() -> Object | None:
        got = await env.get(V2, "Cluster", "cp1")
        return got if condition(got, "Deleting").get(
            "reason") == "WaitingForControlPlaneDeletion" else None

    await eventually(waiting_for_control_plane, "Cluster waiting on its control plane")
    held = await env.get(CP, "TestControlPlane", "cp1")
    assert held is not None and "deletionTimestamp" in held["metadata"]
    infra = await env.get(INFRA, "InMemoryCluster", "cp1")
    assert infra is not None and "deletionTimestamp" not in infra["metadata"]

    await env.kube.patch(CP, "TestControlPlane", "cp1", {"metadata": {"finalizers": None}},
                         env.namespace)

    async def all_gone() -> bool:
        return all(o is None for o in (await env.get(V2, "Cluster", "cp1"),
                                       await env.get(INFRA, "InMemoryCluster", "cp1"),
                                       await env.get(CP, "TestControlPlane", "cp1")))

    await eventually(all_gone, "Cluster, control plane and infrastructure deleted")
