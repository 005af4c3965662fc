"""The generated CRDs: up to date with the models, valid on Shipyard's server and on kube's."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from shipyard.api import crdgen
from tests.api import examples as ex
from tests.integration.live import CRD_PATH, install_crd, wait_for
from tests.kube import Client, Server


def test_checked_in_crds_are_current() -> None:
    """Regenerate in memory; a difference means ``python -m shipyard.api.crdgen`` was not run."""
    stale = []
    for kind in crdgen.KINDS:
        path = crdgen.CRDS_DIR / crdgen.file_name(kind)
        if not path.exists() or path.read_text() != crdgen.render(crdgen.crd(kind)):
            stale.append(path.name)
    assert not stale, f"stale CRDs, run `python -m shipyard.api.crdgen`: {stale}"


def test_crds_carry_upstream_names_subresources_and_labels() -> None:
    by_kind = {c["spec"]["names"]["kind"]: c for c in crdgen.crds()}
    assert set(by_kind) == {"Cluster", "Machine", "MachineSet", "MachineDeployment",
                            "MachineHealthCheck"}
    md = by_kind["MachineDeployment"]
    assert md["metadata"]["name"] == "machinedeployments.cluster.x-k8s.io"
    assert md["metadata"]["labels"] == {"cluster.x-k8s.io/v1beta1": "v1beta1",
                                        "cluster.x-k8s.io/v1beta2": "v1beta2"}
    assert md["spec"]["names"]["shortNames"] == ["md"]
    assert md["spec"]["names"]["categories"] == ["cluster-api"]
    assert [(v["name"], v["served"], v["storage"]) for v in md["spec"]["versions"]] == [
        ("v1beta1", True, False), ("v1beta2", True, True)]
    v2 = md["spec"]["versions"][1]
    assert v2["subresources"]["scale"] == {"specReplicasPath": ".spec.replicas",
                                           "statusReplicasPath": ".status.replicas",
                                           "labelSelectorPath": ".status.selector"}
    assert md["spec"]["conversion"]["strategy"] == "Webhook"
    assert md["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["path"] == "/convert"
    spec = v2["schema"]["openAPIV3Schema"]["properties"]["spec"]
    surge = spec["properties"]["rollout"]["properties"]["strategy"]["properties"][
        "rollingUpdate"]["properties"]["maxSurge"]
    assert surge["x-kubernetes-int-or-string"] is True
    assert spec["properties"]["replicas"]["minimum"] == 0
    status = v2["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["properties"]["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
    assert [by_kind[k]["spec"]["names"]["shortNames"][0] for k in
            ("Cluster", "Machine", "MachineSet", "MachineHealthCheck")] == [
        "cl", "ma", "ms", "mhc"]
    assert "scale" not in by_kind["Machine"]["spec"]["versions"][1]["subresources"]


def test_schemas_are_structural() -> None:
    """No leftovers of the JSON schema dialect Kubernetes refuses."""
    forbidden = {"$ref", "$defs", "title", "default", "const"}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            assert not forbidden & set(node), path
            if node.get("additionalProperties") is True:
                raise AssertionError(f"additionalProperties: true at {path}")
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    for manifest in crdgen.crds(conversion="None"):
        assert manifest["spec"]["conversion"] == {"strategy": "None"}
        walk(manifest["spec"]["versions"], manifest["metadata"]["name"])


def _install_all(api: Client, manifests: list[dict[str, Any]]) -> None:
    for manifest in manifests:
        name = manifest["metadata"]["name"]
        if api.get(f"{CRD_PATH}/{name}").status == 200:
            continue
        install_crd(api, manifest)


@pytest.fixture(scope="module")
def capi(server: Server) -> Iterator[Client]:
    """Shipyard's server with the checked-in (Webhook strategy) CRDs installed."""
    api = server.client()
    _install_all(api, [yaml.safe_load(p.read_text())
                       for p in sorted(crdgen.CRDS_DIR.glob("*.yaml"))])
    yield api
    api.pool.clear()


@pytest.fixture
def capi_namespace(capi: Client) -> Iterator[str]:
    name = f"capi-{uuid.uuid4().hex[:8]}"
    assert capi.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": name}}).status == 201
    yield name
    capi.delete(f"/api/v1/namespaces/{name}")


def _md(namespace: str) -> dict[str, Any]:
    md = ex.machine_deployment_v1beta2()
    md["metadata"]["namespace"] = namespace
    return md


def test_v1beta2_machine_deployment_creates_and_reads_back(
        capi: Client, capi_namespace: str) -> None:
    md = _md(capi_namespace)
    path = f"/apis/cluster.x-k8s.io/v1beta2/namespaces/{capi_namespace}/machinedeployments"
    resp = capi.post(path, md)
    assert resp.status == 201, resp.body
    got = capi.get(f"{path}/{md['metadata']['name']}").json()
    assert got["spec"] == md["spec"]
    assert got["apiVersion"] == "cluster.x-k8s.io/v1beta2"

    scale = capi.get(f"{path}/{md['metadata']['name']}/scale")
    assert scale.status == 200, scale.body
    assert scale.json()["spec"]["replicas"] == 3


def test_every_kind_accepts_its_v1beta2_example(capi: Client, capi_namespace: str) -> None:
    for make, plural in ((ex.cluster_v1beta2, "clusters"),
                         (ex.mhc_v1beta2, "machinehealthchecks")):
        obj = make()
        obj["metadata"]["namespace"] = capi_namespace
        resp = capi.post(
            f"/apis/cluster.x-k8s.io/v1beta2/namespaces/{capi_namespace}/{plural}", obj)
        assert resp.status == 201, resp.body


@pytest.mark.parametrize(("edit", "field"), [
    (lambda md: md["spec"].__setitem__("replicas", -1), "spec.replicas"),
    (lambda md: md["spec"]["deletion"].__setitem__("order", "Youngest"), "spec.deletion.order"),
    (lambda md: md["spec"]["rollout"]["strategy"].__setitem__("type", "Recreate"),
     "spec.rollout.strategy.type"),
    (lambda md: md["spec"].__setitem__("clusterName", ""), "spec.clusterName"),
], ids=["negative-replicas", "deletion-order", "strategy-type", "empty-cluster-name"])
def test_schema_rejects_invalid_machine_deployments(
        capi: Client, capi_namespace: str, edit: Any, field: str) -> None:
    md = _md(capi_namespace)
    edit(md)
    resp = capi.post(
        f"/apis/cluster.x-k8s.io/v1beta2/namespaces/{capi_namespace}/machinedeployments", md)
    assert resp.status == 422, resp.body
    status = resp.json()
    assert status["reason"] == "Invalid"
    assert field in {c.get("field") for c in status["details"]["causes"]}


# ------------------------------------------------------------------------------ real kube


@pytest.mark.slow
def test_crds_install_on_real_kube_apiserver(realkube_api: Client) -> None:
    manifests = crdgen.crds(conversion="None")
    _install_all(realkube_api, copy.deepcopy(manifests))
    namespace = f"capi-{uuid.uuid4().hex[:8]}"
    assert realkube_api.post("/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}).status == 201
    md = _md(namespace)
    path = f"/apis/cluster.x-k8s.io/v1beta2/namespaces/{namespace}/machinedeployments"
    resp = wait_for(lambda: (r := realkube_api.post(path, md)).status != 404 and r,
                    what="machinedeployments served")
    assert resp.status == 201, resp.body
    assert realkube_api.get(f"{path}/{md['metadata']['name']}").json()["spec"] == md["spec"]
    bad = _md(namespace)
    bad["metadata"]["name"] = "bad"
    bad["spec"]["replicas"] = -1
    assert realkube_api.post(path, bad).status == 422


def _columns(kind: str, version: str) -> list[tuple[str, str, int]]:
    manifest = next(c for c in crdgen.crds() if c["spec"]["names"]["kind"] == kind)
    served = next(v for v in manifest["spec"]["versions"] if v["name"] == version)
    return [(c["name"], c["jsonPath"], c.get("priority", 0))
            for c in served["additionalPrinterColumns"]]


def test_printer_columns_are_upstreams_for_both_versions() -> None:
    """As in Cluster API v1.10 (v1beta1 storage) and v1.11 (v1beta2) ``+kubebuilder:printcolumn``
    markers: names, paths, order and which columns only ``-o wide`` shows."""
    assert _columns("MachineDeployment", "v1beta1") == [
        ("Cluster", ".spec.clusterName", 0), ("Desired", ".spec.replicas", 10),
        ("Replicas", ".status.replicas", 0), ("Ready", ".status.readyReplicas", 0),
        ("Updated", ".status.updatedReplicas", 0),
        ("Unavailable", ".status.unavailableReplicas", 0), ("Phase", ".status.phase", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Version", ".spec.template.spec.version", 0)]
    assert _columns("MachineSet", "v1beta1") == [
        ("Cluster", ".spec.clusterName", 0), ("Desired", ".spec.replicas", 10),
        ("Replicas", ".status.replicas", 0), ("Ready", ".status.readyReplicas", 0),
        ("Available", ".status.availableReplicas", 0),
        ("Age", ".metadata.creationTimestamp", 0),
        ("Version", ".spec.template.spec.version", 0)]
    assert [name for name, _, _ in _columns("Machine", "v1beta2")] == [
        "Cluster", "Node Name", "Provider ID", "Ready", "Available", "Up-to-date", "Internal-IP",
        "External-IP", "OS-Image", "Paused", "Phase", "Age", "Version"]
    assert ("Internal-IP", '.status.addresses[?(@.type=="InternalIP")].address', 10) in \
        _columns("Machine", "v1beta2")
    assert [name for name, _, _ in _columns("Machine", "v1beta1")] == [
        "Cluster", "NodeName", "ProviderID", "Phase", "Age", "Version"]
    assert [name for name, _, _ in _columns("MachineHealthCheck", "v1beta1")] == [
        "Cluster", "ExpectedMachines", "MaxUnhealthy", "CurrentHealthy", "Age"]
    assert _columns("Cluster", "v1beta1")[0] == ("ClusterClass", ".spec.topology.class", 0)
    manifest = next(c for c in crdgen.crds() if c["spec"]["names"]["kind"] == "Cluster")
    ages = {c["description"] for v in manifest["spec"]["versions"]
            for c in v["additionalPrinterColumns"] if c["name"] == "Age"}
    assert ages == {"Time duration since creation of Cluster"}


def test_selector_bounds_let_kube_afford_the_selector_rule() -> None:
    md = next(c for c in crdgen.crds() if c["spec"]["names"]["kind"] == "MachineDeployment")
    for version in md["spec"]["versions"]:
        selector = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
            "selector"]["properties"]
        assert selector["matchLabels"]["additionalProperties"]["maxLength"] == 63
        assert selector["matchExpressions"]["maxItems"] == crdgen.SELECTOR_TERMS_MAX
