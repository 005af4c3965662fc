"""Cluster API's v1beta1 and v1beta2 served side by side, converted in process.

The checked-in CRDs ask for webhook conversion; Shipyard's server runs the same converter the
webhook would, so an object written at one version reads back correctly at the other, and writes
at v1beta1 land in v1beta2 storage without losing v1beta1-only fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from shipyard.api import crdgen
from tests.api import examples as ex
from tests.integration.live import Watch, install_crd
from tests.kube import Client, Server

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
V1 = "/apis/cluster.x-k8s.io/v1beta1"
V2 = "/apis/cluster.x-k8s.io/v1beta2"


def provider_crd(group: str, kind: str) -> dict[str, Any]:
    """A provider's template kind, served at v1beta1 as a provider of the v1beta1 contract
    would: converting a v1beta2 reference (apiGroup only) back to v1beta1 looks its version up
    among the served CRDs, as upstream reads the referenced CRD."""
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced", "names": {"kind": kind, "plural": plural},
            "versions": [{"name": "v1beta1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True},
            }}],
        },
    }


PROVIDER_CRDS = [
    provider_crd("infrastructure.cluster.x-k8s.io", "DockerMachineTemplate"),
    provider_crd("bootstrap.cluster.x-k8s.io", "KubeadmConfigTemplate"),
]


@pytest.fixture(scope="module")
def capi(server: Server) -> Iterator[Client]:
    api = server.client()
    manifests = [yaml.safe_load(p.read_text()) for p in sorted(crdgen.CRDS_DIR.glob("*.yaml"))]
    for manifest in [*manifests, *PROVIDER_CRDS]:
        if api.get(f"{CRD_PATH}/{manifest['metadata']['name']}").status != 200:
            install_crd(api, manifest)
    yield api
    api.pool.clear()


@pytest.fixture
def ns(capi: Client) -> Iterator[str]:
    name = f"conv-{uuid.uuid4().hex[:8]}"
    assert capi.post("/api/v1/namespaces", {"metadata": {"name": name}}).status == 201
    yield name
    capi.delete(f"/api/v1/namespaces/{name}")


def mds(root: str, ns: str, name: str = "") -> str:
    return f"{root}/namespaces/{ns}/machinedeployments" + (f"/{name}" if name else "")


def in_ns(obj: dict[str, Any], ns: str) -> dict[str, Any]:
    obj["metadata"]["namespace"] = ns
    return obj


def test_written_at_v1beta1_read_at_v1beta2(capi: Client, ns: str) -> None:
    md = in_ns(ex.machine_deployment_v1beta1(), ns)
    name = md["metadata"]["name"]
    created = capi.post(mds(V1, ns), md)
    assert created.status == 201, created.body
    assert created.json()["apiVersion"] == "cluster.x-k8s.io/v1beta1"
    assert created.json()["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 1

    v2 = capi.get(mds(V2, ns, name)).json()
    assert v2["apiVersion"] == "cluster.x-k8s.io/v1beta2"
    spec = v2["spec"]
    assert spec["rollout"]["strategy"]["rollingUpdate"] == {"maxSurge": 1,
                                                           "maxUnavailable": "25%"}
    assert spec["deletion"]["order"] == "Oldest"
    assert spec["template"]["spec"]["deletion"]["nodeDrainTimeoutSeconds"] == 300
    assert spec["template"]["spec"]["infrastructureRef"]["apiGroup"] == (
        "infrastructure.cluster.x-k8s.io"
    )
    # Read back at v1beta1: exactly what was written (spec-wise).
    v1 = capi.get(mds(V1, ns, name)).json()
    assert v1["spec"] == md["spec"]


def test_patch_at_v1beta1_lands_in_v1beta2_storage(capi: Client, ns: str) -> None:
    md = in_ns(ex.machine_deployment_v1beta1(), ns)
    name = md["metadata"]["name"]
    assert capi.post(mds(V1, ns), md).status == 201
    patched = capi.patch(mds(V1, ns, name),
                         {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 2}}}})
    assert patched.status == 200, patched.body
    assert patched.json()["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 2
    v2 = capi.get(mds(V2, ns, name)).json()
    assert v2["spec"]["rollout"]["strategy"]["rollingUpdate"]["maxSurge"] == 2


def test_written_at_v1beta2_read_at_v1beta1(capi: Client, ns: str) -> None:
    md = in_ns(ex.machine_deployment_v1beta2(), ns)
    name = md["metadata"]["name"]
    assert capi.post(mds(V2, ns), md).status == 201
    v1 = capi.get(mds(V1, ns, name))
    assert v1.status == 200, v1.body
    spec = v1.json()["spec"]
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["deletePolicy"] == "Oldest"
    assert spec["template"]["spec"]["nodeDrainTimeout"] == "5m0s"
    # References regain an apiVersion: Cluster API's own groups are known to the converter,
    # others come from the served CRD of the referenced kind.
    template = spec["template"]["spec"]
    assert template["bootstrap"]["configRef"]["kind"] == "KubeadmConfigTemplate"
    # The version is the one the served CRD names for the current contract: this module's
    # stand-in CRD serves v1beta1 only; the Docker provider's real CRDs (installed on the same
    # session server by its own tests) name v1beta2.
    crd = capi.get(f"{CRD_PATH}/dockermachinetemplates.infrastructure.cluster.x-k8s.io").json()
    served = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
    expected = "v1beta2" if "v1beta2" in served else "v1beta1"
    assert template["infrastructureRef"]["apiVersion"] == \
        f"infrastructure.cluster.x-k8s.io/{expected}"

    # A PUT at v1beta1 of what was read keeps the v1beta2-only fields.
    body = v1.json()
    body["spec"]["replicas"] = 5
    body["spec"]["template"]["spec"]["infrastructureRef"]["name"] = "bigger-machines"
    put = capi.put(mds(V1, ns, name), body)
    assert put.status == 200, put.body
    v2 = capi.get(mds(V2, ns, name)).json()
    assert v2["spec"]["replicas"] == 5
    assert v2["spec"]["template"]["spec"]["minReadySeconds"] == 10
    assert v2["spec"]["template"]["spec"]["infrastructureRef"] == {
        "apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachineTemplate",
        "name": "bigger-machines"}


def test_a_reference_nobody_serves_fails_the_read_not_the_server(capi: Client, ns: str) -> None:
    md = in_ns(ex.machine_deployment_v1beta2(), ns)
    md["spec"]["template"]["spec"]["infrastructureRef"] = {
        "apiGroup": "infrastructure.example.com", "kind": "NoSuchTemplate", "name": "x"}
    assert capi.post(mds(V2, ns), md).status == 201
    failed = capi.get(mds(V1, ns, md["metadata"]["name"]))
    assert failed.status == 500
    assert failed.json()["reason"] == "InternalError"
    assert "conversion webhook for cluster.x-k8s.io/v1beta1" in failed.json()["message"]
    assert capi.get(mds(V2, ns, md["metadata"]["name"])).status == 200


def test_lists_and_watches_speak_the_requested_version(capi: Client, ns: str) -> None:
    watch = Watch(capi, mds(V1, ns) + "?watch=true")
    try:
        md = in_ns(ex.machine_deployment_v1beta2(), ns)
        assert capi.post(mds(V2, ns), md).status == 201
        event = watch.next()
        assert event["type"] == "ADDED"
        assert event["object"]["apiVersion"] == "cluster.x-k8s.io/v1beta1"
        assert "strategy" in event["object"]["spec"]
    finally:
        watch.close()
    items = capi.get(mds(V1, ns)).json()["items"]
    assert [i["apiVersion"] for i in items] == ["cluster.x-k8s.io/v1beta1"]
    assert "rollout" not in items[0]["spec"]
