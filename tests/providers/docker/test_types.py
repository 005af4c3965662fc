"""The Docker provider's CRDs on a real Shipyard API server (with the in-process converter that
`shipyard apiserver` registers): CAPD manifests at v1beta1 and v1beta2 are accepted and read back
at the other version in upstream's shape, bad input is refused with a Status, printer columns
are upstream's; and the CRDs are structural enough for a real kube-apiserver."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from shipyard.api.core.constants import CONVERSION_DATA_ANNOTATION
from shipyard.apiserver import authn, certs
from shipyard.apiserver.serving import ServingOptions, serve_in_thread
from shipyard.cli.apiserver import group_converters, new_api_server
from shipyard.providers.docker import conversion, types
from shipyard.storage import SQLiteStore
from tests.conftest import write_kubeconfig
from tests.kube import Client, Server
from tests.providers.harness import install_crd

Obj = dict[str, Any]
BASE = f"/apis/{types.GROUP}"

# Upstream's test/e2e/data/infrastructure-docker (v1.10 DockerCluster with map failure domains,
# md.yaml's v1beta1 DockerMachineTemplate, cluster-with-kcp.yaml's v1beta2 DockerCluster and
# DockerMachineTemplate), with the variables filled in.
V1BETA1_CLUSTER = """
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerCluster
metadata: {name: capi-quickstart}
spec:
  failureDomains:
    fd1: {controlPlane: true}
    fd3: {controlPlane: true}
    fd2: {controlPlane: true}
    fd4: {controlPlane: false, attributes: {rack: r4}}
  loadBalancer:
    imageRepository: kindest
    imageTag: v20230606-42a2262b
    customHAProxyConfigTemplateRef: {name: my-haproxy}
"""
V1BETA1_MACHINE_TEMPLATE = """
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerMachineTemplate
metadata: {name: capi-quickstart-md-0}
spec:
  template:
    spec:
      extraMounts:
        - containerPath: "/var/run/docker.sock"
          hostPath: "/var/run/docker.sock"
      preLoadImages: []
"""
V1BETA2_CLUSTER = """
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
kind: DockerCluster
metadata: {name: kcp}
spec:
  failureDomains:
    - {name: fd1, controlPlane: true}
    - {name: fd2, controlPlane: true}
    - {name: fd4, controlPlane: false}
"""
V1BETA2_MACHINE_TEMPLATE = """
apiVersion: infrastructure.cluster.x-k8s.io/v1beta2
kind: DockerMachineTemplate
metadata: {name: kcp-control-plane}
spec:
  template:
    metadata: {labels: {role: cp}}
    spec:
      customImage: kindest/node:v1.33.0
      extraMounts:
        - {containerPath: /var/run/docker.sock, hostPath: /var/run/docker.sock, readOnly: true}
      bootstrapTimeout: 5m
"""


def _path(version: str, plural: str, ns: str, name: str = "") -> str:
    return f"{BASE}/{version}/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's own server, composed as `shipyard apiserver` composes it (`new_api_server`,
    so the converter registration is what is tested): the real CAPD CRDs installed here would
    otherwise replace stand-in Docker kinds that other modules install on the session server."""
    root = tmp_path_factory.mktemp("capd-apiserver")
    pki = certs.ensure_pki(root / "pki", key_type="ecdsa")
    app = authn.Authenticator(new_api_server(SQLiteStore(root / "state.db")),
                              tokens=authn.load_token_file(pki.token_file),
                              client_ca=certs.load_cert(pki.ca_cert))
    options = ServingOptions(port=0, cert_file=pki.serving_cert, key_file=pki.serving_key,
                             client_ca_file=pki.ca_cert, shutdown_timeout=1)
    with serve_in_thread(app, options) as running:
        url = f"https://127.0.0.1:{running.bound_port}"
        (root / "home").mkdir()
        write_kubeconfig(root / "kubeconfig", url, pki.ca_cert, pki.admin_token)
        yield Server(url, pki.admin_token, pki.ca_cert, root / "kubeconfig", root / "home")


@pytest.fixture(scope="module")
def docker(server: Server) -> Iterator[Client]:
    api = server.client()
    for manifest in types.crd_manifests():
        install_crd(api, manifest)
    yield api
    api.pool.clear()


@pytest.fixture
def ns(docker: Client) -> Iterator[str]:
    name = f"capd-{uuid.uuid4().hex[:8]}"
    resp = docker.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": name}})
    assert resp.status == 201, resp.body
    yield name
    docker.delete(f"/api/v1/namespaces/{name}")


def test_crds_carry_upstream_names_labels_and_versions() -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in types.crd_manifests()}
    assert sorted(crds) == sorted(types.KINDS)
    for kind, crd in crds.items():
        assert crd["metadata"]["name"] == f"{kind.lower()}s.infrastructure.cluster.x-k8s.io"
        assert crd["metadata"]["labels"] == {
            "cluster.x-k8s.io/v1beta1": "v1beta1", "cluster.x-k8s.io/v1beta2": "v1beta2",
            "cluster.x-k8s.io/provider": "infrastructure-docker"}
        assert crd["spec"]["names"]["categories"] == ["cluster-api"]
        assert "shortNames" not in crd["spec"]["names"]
        versions = {v["name"]: v for v in crd["spec"]["versions"]}
        assert [v["name"] for v in crd["spec"]["versions"]] == ["v1beta1", "v1beta2"]
        assert versions["v1beta2"]["storage"] and not versions["v1beta1"]["storage"]
        assert versions["v1beta1"]["deprecated"] is True
        assert crd["spec"]["conversion"]["strategy"] == "Webhook"
        has_status = kind in ("DockerCluster", "DockerMachine", "DockerMachineTemplate")
        assert all(("subresources" in v) == has_status for v in versions.values())
    assert types.GROUP in group_converters()
    assert isinstance(group_converters()[types.GROUP], conversion.DockerConverter)


def test_public_constants_are_upstreams() -> None:
    assert types.CLUSTER == ("infrastructure.cluster.x-k8s.io/v1beta2", "DockerCluster")
    assert types.MACHINE_TEMPLATE.kind == "DockerMachineTemplate"
    assert types.provider_id("capi-quickstart-md-0-abcde") == \
        "docker:////capi-quickstart-md-0-abcde"
    assert types.CLUSTER_FINALIZER == "dockercluster.infrastructure.cluster.x-k8s.io"
    assert types.MACHINE_FINALIZER == "dockermachine.infrastructure.cluster.x-k8s.io"
    assert (types.CONTAINER_PROVISIONED, types.BOOTSTRAP_EXEC_SUCCEEDED,
            types.LOAD_BALANCER_AVAILABLE) == (
        "ContainerProvisioned", "BootstrapExecSucceeded", "LoadBalancerAvailable")


def test_v1beta1_cluster_is_stored_as_v1beta2_and_reads_back(docker: Client, ns: str) -> None:
    manifest = yaml.safe_load(V1BETA1_CLUSTER)
    resp = docker.post(_path("v1beta1", "dockerclusters", ns), manifest)
    assert resp.status == 201, resp.body
    v2 = docker.get(_path("v1beta2", "dockerclusters", ns, "capi-quickstart")).json()
    assert v2["apiVersion"] == types.API_VERSION
    assert v2["spec"]["failureDomains"] == [
        {"name": "fd1", "controlPlane": True}, {"name": "fd2", "controlPlane": True},
        {"name": "fd3", "controlPlane": True},
        {"name": "fd4", "controlPlane": False, "attributes": {"rack": "r4"}}]
    assert v2["spec"]["loadBalancer"] == manifest["spec"]["loadBalancer"]
    assert CONVERSION_DATA_ANNOTATION not in (v2["metadata"].get("annotations") or {})
    v1 = docker.get(_path("v1beta1", "dockerclusters", ns, "capi-quickstart")).json()
    assert v1["apiVersion"] == types.API_VERSION_V1BETA1
    assert v1["spec"] == manifest["spec"]


def test_v1beta1_machine_template_reads_back_at_v1beta2(docker: Client, ns: str) -> None:
    manifest = yaml.safe_load(V1BETA1_MACHINE_TEMPLATE)
    resp = docker.post(_path("v1beta1", "dockermachinetemplates", ns), manifest)
    assert resp.status == 201, resp.body
    v2 = docker.get(_path("v1beta2", "dockermachinetemplates", ns,
                          "capi-quickstart-md-0")).json()
    assert v2["spec"]["template"]["spec"]["extraMounts"] == [
        {"containerPath": "/var/run/docker.sock", "hostPath": "/var/run/docker.sock"}]
    listed = docker.get(_path("v1beta1", "dockermachinetemplates", ns)).json()
    assert [i["spec"] for i in listed["items"]] == [manifest["spec"]]
    assert all(i["apiVersion"] == types.API_VERSION_V1BETA1 for i in listed["items"])


def test_v1beta2_manifests_read_back_at_v1beta1(docker: Client, ns: str) -> None:
    cluster = yaml.safe_load(V1BETA2_CLUSTER)
    template = yaml.safe_load(V1BETA2_MACHINE_TEMPLATE)
    assert docker.post(_path("v1beta2", "dockerclusters", ns), cluster).status == 201
    assert docker.post(_path("v1beta2", "dockermachinetemplates", ns), template).status == 201
    v1 = docker.get(_path("v1beta1", "dockerclusters", ns, "kcp")).json()
    assert v1["spec"]["failureDomains"] == {
        "fd1": {"controlPlane": True}, "fd2": {"controlPlane": True},
        "fd4": {"controlPlane": False}}
    v1t = docker.get(_path("v1beta1", "dockermachinetemplates", ns, "kcp-control-plane")).json()
    assert v1t["spec"] == template["spec"]
    assert CONVERSION_DATA_ANNOTATION not in (v1t["metadata"].get("annotations") or {})


def test_kubectl_applies_capd_manifests_unchanged(server: Server, docker: Client,
                                                  ns: str) -> None:
    manifests = "---".join([V1BETA1_CLUSTER, V1BETA1_MACHINE_TEMPLATE, V1BETA2_CLUSTER])
    out = server.kubectl("apply", "-n", ns, "-f", "-", stdin=manifests).stdout
    assert "dockercluster.infrastructure.cluster.x-k8s.io/capi-quickstart created" in out
    # A second apply is a three-way merge patch at v1beta1: nothing to change.
    out = server.kubectl("apply", "-n", ns, "-f", "-", stdin=manifests).stdout
    assert out.count("unchanged") == 3, out
    edited = V1BETA1_CLUSTER.replace("imageTag: v20230606-42a2262b", "imageTag: v2")
    server.kubectl("apply", "-n", ns, "-f", "-", stdin=edited)
    v2 = docker.get(_path("v1beta2", "dockerclusters", ns, "capi-quickstart")).json()
    assert v2["spec"]["loadBalancer"]["imageTag"] == "v2"
    assert [d["name"] for d in v2["spec"]["failureDomains"]] == ["fd1", "fd2", "fd3", "fd4"]
    table = server.kubectl("get", "dockerclusters", "-n", ns).stdout
    assert table.split("\n")[0].split() == ["NAME", "CLUSTER", "AGE"]


def _condition(type_: str, status: str, reason: str) -> Obj:
    return {"type": type_, "status": status, "reason": reason, "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}


def test_status_written_at_v1beta2_reads_as_v1beta1(docker: Client, ns: str) -> None:
    machine = {"apiVersion": types.API_VERSION, "kind": "DockerMachine",
               "metadata": {"name": "m0", "labels": {"cluster.x-k8s.io/cluster-name": "c"}},
               "spec": {"customImage": "shipyard/node:dev"}}
    created = docker.post(_path("v1beta2", "dockermachines", ns), machine)
    assert created.status == 201, created.body
    body = created.json()
    body["status"] = {
        "initialization": {"provisioned": True}, "loadBalancerConfigured": True,
        "addresses": [{"type": "InternalIP", "address": "172.18.0.3"}],
        "conditions": [_condition(types.CONTAINER_PROVISIONED, "True",
                                  types.CONTAINER_PROVISIONED_REASON)],
        "deprecated": {"v1beta1": {"conditions": [
            {"type": "ContainerProvisioned", "status": "True",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}}
    resp = docker.put(_path("v1beta2", "dockermachines", ns, "m0") + "/status", body)
    assert resp.status == 200, resp.body
    v1 = docker.get(_path("v1beta1", "dockermachines", ns, "m0")).json()
    assert v1["status"] == {
        "ready": True, "loadBalancerConfigured": True,
        "addresses": [{"type": "InternalIP", "address": "172.18.0.3"}],
        "conditions": body["status"]["deprecated"]["v1beta1"]["conditions"],
        "v1beta2": {"conditions": body["status"]["conditions"]}}
    table = docker.get(_path("v1beta2", "dockermachines", ns), headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == ["Name", "Cluster", "Machine", "ProviderID", "Ready", "Age"]
    assert table["rows"][0]["cells"][1] == "c"
    assert str(table["rows"][0]["cells"][4]).lower() == "true"


def test_machine_template_capacity_is_its_status(docker: Client, ns: str) -> None:
    template = yaml.safe_load(V1BETA2_MACHINE_TEMPLATE)
    created = docker.post(_path("v1beta2", "dockermachinetemplates", ns), template)
    assert created.status == 201, created.body
    body = created.json()
    body["status"] = {"capacity": {"cpu": "4", "memory": "8Gi"}}
    path = _path("v1beta2", "dockermachinetemplates", ns, "kcp-control-plane") + "/status"
    resp = docker.put(path, body)
    assert resp.status == 200, resp.body
    v1 = docker.get(_path("v1beta1", "dockermachinetemplates", ns, "kcp-control-plane")).json()
    assert v1["status"] == {"capacity": {"cpu": "4", "memory": "8Gi"}}
    body = resp.json()
    body["status"]["capacity"]["memory"] = "lots"
    assert docker.put(path, body).status == 422


BAD: list[tuple[str, str, str, Obj, str]] = [
    ("v1beta2", "dockermachines", "DockerMachine", {"preLoadImages": "kindest/node"},
     "spec.preLoadImages"),
    ("v1beta1", "dockermachines", "DockerMachine", {"extraMounts": [{"readOnly": "yes"}]},
     "spec.extraMounts[0].readOnly"),
    ("v1beta2", "dockerclusters", "DockerCluster", {"failureDomains": {"fd1": {}}},
     "spec.failureDomains"),
    ("v1beta1", "dockerclusters", "DockerCluster",
     {"controlPlaneEndpoint": {"host": "10.0.0.1"}}, "spec.controlPlaneEndpoint.port"),
    ("v1beta2", "dockerclusters", "DockerCluster",
     {"controlPlaneEndpoint": {"host": "10.0.0.1", "port": 70000}},
     "spec.controlPlaneEndpoint.port"),
    ("v1beta2", "dockermachines", "DockerMachine", {"providerID": ""}, "spec.providerID"),
]


@pytest.mark.parametrize(("version", "plural", "kind", "spec", "field"), BAD)
def test_invalid_input_is_refused_with_a_status(docker: Client, ns: str, version: str,
                                                plural: str, kind: str, spec: Obj,
                                                field: str) -> None:
    body = {"apiVersion": f"{types.GROUP}/{version}", "kind": kind,
            "metadata": {"name": "bad"}, "spec": spec}
    resp = docker.post(_path(version, plural, ns), body)
    assert resp.status == 422, resp.body
    status = resp.json()
    assert status["kind"] == "Status" and status["reason"] == "Invalid"
    assert any(c.get("field") == field for c in status["details"]["causes"]), status


def test_template_requires_its_spec(docker: Client, ns: str) -> None:
    body: Obj = {"apiVersion": types.API_VERSION, "kind": "DockerClusterTemplate",
            "metadata": {"name": "t"}, "spec": {"template": {"metadata": {}}}}
    resp = docker.post(_path("v1beta2", "dockerclustertemplates", ns), body)
    assert resp.status == 422, resp.body
    body["spec"]["template"]["spec"] = {"loadBalancer": {"customHAProxyConfigTemplateRef": {}}}
    resp = docker.post(_path("v1beta2", "dockerclustertemplates", ns), body)
    assert resp.status == 201, resp.body
    ref = resp.json()["spec"]["template"]["spec"]["loadBalancer"]["customHAProxyConfigTemplateRef"]
    assert ref == {"name": ""}  # upstream's schema default


@pytest.mark.slow
def test_crds_are_accepted_by_a_real_kube_apiserver(realkube_api: Client) -> None:
    from tests.integration.live import CRD_PATH

    for manifest in types.crd_manifests():
        manifest = copy.deepcopy(manifest)
        # No conversion webhook runs there (and kube wants a real CA bundle for one): the schema
        # is what is judged here, so serve with relabelling only.
        manifest["spec"]["conversion"] = {"strategy": "None"}
        install_crd(realkube_api, manifest)
        crd = realkube_api.get(f"{CRD_PATH}/{manifest['metadata']['name']}").json()
        assert not any(c["type"] == "NonStructuralSchema" and c["status"] == "True"
                       for c in crd["status"]["conditions"]), crd["status"]
    ns = f"capd-{uuid.uuid4().hex[:8]}"
    assert realkube_api.post("/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).status == 201
    template = yaml.safe_load(V1BETA2_MACHINE_TEMPLATE)
    resp = realkube_api.post(_path("v1beta2", "dockermachinetemplates", ns), template)
    assert resp.status == 201, resp.body
    assert resp.json()["spec"] == template["spec"]
    realkube_api.delete(f"/api/v1/namespaces/{ns}")
