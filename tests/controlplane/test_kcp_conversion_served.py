"""KubeadmControlPlane(Template) at v1beta1 on a real Shipyard API server composed as `shipyard
apiserver` composes it (`new_api_server`): CAPD's quick-start KCP applied with kubectl reads
back at v1beta2 in upstream's shape and unchanged at v1beta1; v1beta2 objects and their status
read at v1beta1 with the reference resolved against the served DockerMachineTemplate CRD; bad
v1beta1 input is refused as upstream refuses it. And the CRDs establish on a real kube-apiserver."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from shipyard.api import crdgen
from shipyard.api.core.constants import CONVERSION_DATA_ANNOTATION
from shipyard.apiserver import authn, certs
from shipyard.apiserver.serving import ServingOptions, serve_in_thread
from shipyard.bootstrap.kubeadm import types as bootstrap_types
from shipyard.cli.apiserver import new_api_server
from shipyard.controlplane.kubeadm import types
from shipyard.providers.docker import types as docker_types
from shipyard.storage import SQLiteStore
from tests.conftest import write_kubeconfig
from tests.integration.live import CRD_PATH
from tests.kube import Client, Server
from tests.providers.harness import install_crd

Obj = dict[str, Any]
BASE = f"/apis/{types.GROUP}"
INFRA = docker_types.GROUP

# Upstream's CAPD cluster template (test/infrastructure/docker/templates/cluster-template.yaml,
# Cluster API v1.10), control plane part, variables filled in.
QUICK_START = """
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerMachineTemplate
metadata: {name: capi-quickstart-control-plane}
spec:
  template:
    spec:
      extraMounts:
        - {containerPath: /var/run/docker.sock, hostPath: /var/run/docker.sock}
---
apiVersion: controlplane.cluster.x-k8s.io/v1beta1
kind: KubeadmControlPlane
metadata: {name: capi-quickstart-control-plane}
spec:
  replicas: 3
  version: v1.32.0
  machineTemplate:
    infrastructureRef:
      apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
      kind: DockerMachineTemplate
      name: capi-quickstart-control-plane
  kubeadmConfigSpec:
    clusterConfiguration:
      apiServer:
        certSANs: [localhost, 127.0.0.1, 0.0.0.0, host.docker.internal]
      controllerManager:
        extraArgs: {enable-hostpath-provisioner: "true"}
    initConfiguration:
      nodeRegistration:
        criSocket: unix:///var/run/containerd/containerd.sock
        kubeletExtraArgs:
          eviction-hard: nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%
    joinConfiguration:
      nodeRegistration:
        criSocket: unix:///var/run/containerd/containerd.sock
        kubeletExtraArgs:
          eviction-hard: nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%
"""
V1BETA1_TEMPLATE = """
apiVersion: controlplane.cluster.x-k8s.io/v1beta1
kind: KubeadmControlPlaneTemplate
metadata: {name: quick-start-control-plane}
spec:
  template:
    spec:
      machineTemplate: {nodeDrainTimeout: 1m0s}
      kubeadmConfigSpec:
        clusterConfiguration:
          apiServer: {certSANs: [localhost]}
          controllerManager: {extraArgs: {enable-hostpath-provisioner: "true"}}
        initConfiguration:
          nodeRegistration: {kubeletExtraArgs: {eviction-hard: "nodefs.available<0%"}}
"""
EVICTION = [{"name": "eviction-hard",
             "value": "nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%"}]


def _path(version: str, plural: str, ns: str, name: str = "") -> str:
    return f"{BASE}/{version}/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's own server: the real CAPD CRDs installed here would replace the stand-in
    Docker kinds other modules install on the session server."""
    root = tmp_path_factory.mktemp("kcp-apiserver")
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
def api(server: Server) -> Iterator[Client]:
    client = server.client()
    core = [yaml.safe_load(p.read_text()) for p in sorted(crdgen.CRDS_DIR.glob("*.yaml"))]
    for manifest in [*core, *bootstrap_types.crd_manifests(serve_v1beta1=True),
                     *types.crd_manifests(), *docker_types.crd_manifests()]:
        install_crd(client, manifest)
    yield client
    client.pool.clear()


@pytest.fixture
def ns(api: Client) -> Iterator[str]:
    name = f"kcp-{uuid.uuid4().hex[:8]}"
    resp = api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": name}})
    assert resp.status == 201, resp.body
    yield name
    api.delete(f"/api/v1/namespaces/{name}")


def test_kubectl_applies_the_quick_start_unchanged(server: Server, api: Client,
                                                   ns: str) -> None:
    out = server.kubectl("apply", "-n", ns, "-f", "-", stdin=QUICK_START).stdout
    assert "kubeadmcontrolplane.controlplane.cluster.x-k8s.io/capi-quickstart-control-plane " \
        "created" in out, out
    name = "capi-quickstart-control-plane"
    v2 = api.get(_path("v1beta2", "kubeadmcontrolplanes", ns, name)).json()
    assert v2["apiVersion"] == types.API_VERSION
    spec = v2["spec"]
    assert spec["machineTemplate"]["spec"]["infrastructureRef"] == {
        "apiGroup": INFRA, "kind": "DockerMachineTemplate", "name": name}
    assert spec["kubeadmConfigSpec"]["clusterConfiguration"] == {
        "apiServer": {"certSANs": ["localhost", "127.0.0.1", "0.0.0.0", "host.docker.internal"]},
        "controllerManager": {"extraArgs": [{"name": "enable-hostpath-provisioner",
                                             "value": "true"}]}}
    for conf in ("initConfiguration", "joinConfiguration"):
        assert spec["kubeadmConfigSpec"][conf]["nodeRegistration"]["kubeletExtraArgs"] == \
            EVICTION
    # v1beta1's schema default for rolloutStrategy, as upstream's CRD has it.
    assert spec["rollout"] == {"strategy": {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxSurge": 1}}}
    assert (spec["replicas"], spec["version"]) == (3, "v1.32.0")

    v1 = api.get(_path("v1beta1", "kubeadmcontrolplanes", ns, name)).json()
    manifest = list(yaml.safe_load_all(QUICK_START))[1]
    assert v1["apiVersion"] == "controlplane.cluster.x-k8s.io/v1beta1"
    assert v1["spec"] == {**manifest["spec"], "rolloutStrategy": {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}
    assert CONVERSION_DATA_ANNOTATION not in v1["metadata"].get("annotations", {})

    # A second apply is a three-way merge patch at v1beta1: nothing to change.
    out = server.kubectl("apply", "-n", ns, "-f", "-", stdin=QUICK_START).stdout
    assert out.count("unchanged") == 2, out
    # An edit at v1beta1 reaches the stored object.
    edited = QUICK_START.replace("replicas: 3", "replicas: 5").replace(
        'enable-hostpath-provisioner: "true"', 'enable-hostpath-provisioner: "false"')
    server.kubectl("apply", "-n", ns, "-f", "-", stdin=edited)
    v2 = api.get(_path("v1beta2", "kubeadmcontrolplanes", ns, name)).json()
    assert v2["spec"]["replicas"] == 5
    assert v2["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["controllerManager"] == {
        "extraArgs": [{"name": "enable-hostpath-provisioner", "value": "false"}]}
    table = server.kubectl("get", "kcp", "-n", ns).stdout
    assert table.split("\n")[1].split()[0] == name


# The whole of upstream's CAPD cluster template (Cluster API v1.10, every kind at v1beta1).
CAPD_CLUSTER = """
apiVersion: cluster.x-k8s.io/v1beta1
kind: Cluster
metadata: {name: capi-quickstart}
spec:
  clusterNetwork:
    services: {cidrBlocks: ["10.128.0.0/12"]}
    pods: {cidrBlocks: ["192.168.0.0/16"]}
    serviceDomain: cluster.local
  infrastructureRef:
    apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
    kind: DockerCluster
    name: capi-quickstart
  controlPlaneRef:
    kind: KubeadmControlPlane
    apiVersion: controlplane.cluster.x-k8s.io/v1beta1
    name: capi-quickstart-control-plane
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerCluster
metadata: {name: capi-quickstart}
spec: {}
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerMachineTemplate
metadata: {name: capi-quickstart-control-plane}
spec:
  template:
    spec:
      extraMounts:
        - {containerPath: /var/run/docker.sock, hostPath: /var/run/docker.sock}
---
kind: KubeadmControlPlane
apiVersion: controlplane.cluster.x-k8s.io/v1beta1
metadata: {name: capi-quickstart-control-plane}
spec:
  replicas: 1
  machineTemplate:
    infrastructureRef:
      kind: DockerMachineTemplate
      apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
      name: capi-quickstart-control-plane
  kubeadmConfigSpec:
    clusterConfiguration:
      apiServer:
        certSANs: [localhost, 127.0.0.1, 0.0.0.0, host.docker.internal]
    initConfiguration:
      nodeRegistration: {}
    joinConfiguration:
      nodeRegistration: {}
  version: v1.32.0
---
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: DockerMachineTemplate
metadata: {name: capi-quickstart-md-0}
spec:
  template:
    spec: {}
---
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfigTemplate
metadata: {name: capi-quickstart-md-0}
spec:
  template:
    spec:
      joinConfiguration:
        nodeRegistration: {}
---
apiVersion: cluster.x-k8s.io/v1beta1
kind: MachineDeployment
metadata: {name: capi-quickstart-md-0}
spec:
  clusterName: capi-quickstart
  replicas: 1
  selector:
    matchLabels:
  template:
    spec:
      clusterName: capi-quickstart
      version: v1.32.0
      bootstrap:
        configRef:
          name: capi-quickstart-md-0
          apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
          kind: KubeadmConfigTemplate
      infrastructureRef:
        name: capi-quickstart-md-0
        apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
        kind: DockerMachineTemplate
"""


def test_kubectl_applies_the_whole_capd_cluster_template(server: Server, api: Client,
                                                         ns: str) -> None:
    out = server.kubectl("apply", "-n", ns, "-f", "-", stdin=CAPD_CLUSTER).stdout
    assert out.count(" created") == 7, out
    kcp = api.get(_path("v1beta2", "kubeadmcontrolplanes", ns,
                        "capi-quickstart-control-plane")).json()
    assert kcp["spec"]["machineTemplate"]["spec"]["infrastructureRef"]["apiGroup"] == INFRA
    cluster = api.get(f"/apis/cluster.x-k8s.io/v1beta2/namespaces/{ns}/clusters/"
                      "capi-quickstart").json()
    assert cluster["spec"]["controlPlaneRef"] == {
        "apiGroup": types.GROUP, "kind": "KubeadmControlPlane",
        "name": "capi-quickstart-control-plane"}
    out = server.kubectl("apply", "-n", ns, "-f", "-", stdin=CAPD_CLUSTER).stdout
    assert out.count("unchanged") == 7, out


def test_v1beta2_object_and_its_status_read_at_v1beta1(api: Client, ns: str) -> None:
    kcp: Obj = {"apiVersion": types.API_VERSION, "kind": "KubeadmControlPlane",
                "metadata": {"name": "cp"}, "spec": {
                    "replicas": 1, "version": "v1.33.0",
                    "machineTemplate": {"spec": {
                        "infrastructureRef": {"apiGroup": INFRA, "name": "cp",
                                              "kind": "DockerMachineTemplate"},
                        "deletion": {"nodeDrainTimeoutSeconds": 600}}},
                    "kubeadmConfigSpec": {"clusterConfiguration": {"apiServer": {
                        "extraArgs": [{"name": "v", "value": "4"}]}}},
                    "remediation": {"retryPeriodSeconds": 30}}}
    created = api.post(_path("v1beta2", "kubeadmcontrolplanes", ns), kcp)
    assert created.status == 201, created.body
    body = created.json()
    conditions = [{"type": types.INITIALIZED_CONDITION, "status": "True",
                   "reason": types.INITIALIZED_REASON, "message": "",
                   "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    body["status"] = {"initialization": {"controlPlaneInitialized": True}, "replicas": 1,
                      "readyReplicas": 1, "availableReplicas": 1, "upToDateReplicas": 1,
                      "version": "v1.33.0", "conditions": conditions,
                      "deprecated": {"v1beta1": {"readyReplicas": 1, "updatedReplicas": 1}}}
    resp = api.put(_path("v1beta2", "kubeadmcontrolplanes", ns, "cp") + "/status", body)
    assert resp.status == 200, resp.body

    v1 = api.get(_path("v1beta1", "kubeadmcontrolplanes", ns, "cp")).json()
    assert v1["spec"]["machineTemplate"] == {
        "infrastructureRef": {"apiVersion": docker_types.API_VERSION,  # the CRD's storage
                              "kind": "DockerMachineTemplate", "namespace": ns, "name": "cp"},
        "nodeDrainTimeout": "10m0s"}
    assert v1["spec"]["kubeadmConfigSpec"] == {
        "clusterConfiguration": {"apiServer": {"extraArgs": {"v": "4"}}}}
    assert v1["spec"]["remediationStrategy"] == {"retryPeriod": "30s"}
    assert v1["status"] == {
        "initialized": True, "ready": True, "replicas": 1, "version": "v1.33.0",
        "readyReplicas": 1, "updatedReplicas": 1,
        "v1beta2": {"readyReplicas": 1, "availableReplicas": 1, "upToDateReplicas": 1,
                    "conditions": conditions}}
    listed = api.get(_path("v1beta1", "kubeadmcontrolplanes", ns)).json()
    assert [i["status"]["initialized"] for i in listed["items"]] == [True]
    table = api.get(_path("v1beta1", "kubeadmcontrolplanes", ns), headers={
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == ["Name", "Cluster", "Initialized", "API Server Available", "Desired",
                       "Replicas", "Ready", "Updated", "Unavailable", "Age", "Version"]
    cells = dict(zip(columns, table["rows"][0]["cells"], strict=True))
    assert (cells["Initialized"], cells["API Server Available"], cells["Ready"]) == \
        (True, True, 1)
    # A status written at v1beta1 lands in v1beta2's places.
    v1["status"] = {"initialized": True, "ready": True, "readyReplicas": 1, "replicas": 1,
                    "v1beta2": {"readyReplicas": 0, "conditions": conditions}}
    resp = api.put(_path("v1beta1", "kubeadmcontrolplanes", ns, "cp") + "/status", v1)
    assert resp.status == 200, resp.body
    v2 = api.get(_path("v1beta2", "kubeadmcontrolplanes", ns, "cp")).json()
    assert v2["status"] == {"initialization": {"controlPlaneInitialized": True},
                            "replicas": 1, "readyReplicas": 0, "conditions": conditions,
                            "deprecated": {"v1beta1": {"readyReplicas": 1}}}


def test_v1beta1_template_reads_back_at_v1beta2(api: Client, ns: str) -> None:
    manifest = yaml.safe_load(V1BETA1_TEMPLATE)
    resp = api.post(_path("v1beta1", "kubeadmcontrolplanetemplates", ns), manifest)
    assert resp.status == 201, resp.body
    v2 = api.get(_path("v1beta2", "kubeadmcontrolplanetemplates", ns,
                       "quick-start-control-plane")).json()
    spec = v2["spec"]["template"]["spec"]
    assert spec["machineTemplate"] == {"spec": {"deletion": {"nodeDrainTimeoutSeconds": 60}}}
    assert spec["kubeadmConfigSpec"]["clusterConfiguration"]["controllerManager"] == {
        "extraArgs": [{"name": "enable-hostpath-provisioner", "value": "true"}]}
    v1 = api.get(_path("v1beta1", "kubeadmcontrolplanetemplates", ns,
                       "quick-start-control-plane")).json()
    assert v1["spec"]["template"]["spec"] == {
        **manifest["spec"]["template"]["spec"],
        "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}


BAD: list[tuple[Obj, str, str]] = [
    ({"replicas": 2}, "spec.replicas", "cannot be an even number when etcd is stacked"),
    ({"replicas": 0}, "spec.replicas", "cannot be less than or equal to 0"),
    ({"rolloutStrategy": {"rollingUpdate": {"maxSurge": 2}}},
     "spec.rolloutStrategy.rollingUpdate.maxSurge", "value must be 1 or 0"),
    ({"version": "1.33"}, "spec.version", "must be a valid semantic version"),
    ({"machineTemplate": {"infrastructureRef": {"name": "x"}, "nodeDrainTimeout": 5}},
     "spec.machineTemplate.nodeDrainTimeout", ""),
    ({"kubeadmConfigSpec": {"clusterConfiguration": {"apiServer": {"extraArgs": [
        {"name": "v", "value": "4"}]}}}},
     "spec.kubeadmConfigSpec.clusterConfiguration.apiServer.extraArgs", ""),
]


@pytest.mark.parametrize(("spec", "field", "message"), BAD)
def test_bad_v1beta1_input_is_refused(api: Client, ns: str, spec: Obj, field: str,
                                      message: str) -> None:
    body: Obj = {"apiVersion": f"{types.GROUP}/v1beta1", "kind": "KubeadmControlPlane",
                 "metadata": {"name": "bad"}, "spec": {
                     "replicas": 1, "version": "v1.33.0", "kubeadmConfigSpec": {},
                     "machineTemplate": {"infrastructureRef": {"name": "x"}}, **spec}}
    resp = api.post(_path("v1beta1", "kubeadmcontrolplanes", ns), body)
    assert resp.status == 422, resp.body
    causes = resp.json()["details"]["causes"]
    assert any(c.get("field") == field and message in c.get("message", "")
               for c in causes), causes


@pytest.mark.slow
def test_crds_establish_on_a_real_kube_apiserver(realkube_api: Client) -> None:
    """The CRDs as shipped establish (no placeholder CA bundle) with structural schemas; with
    conversion `None` (no webhook there) v1beta1's own rules judge v1beta1 writes as here."""
    manifests = types.crd_manifests()
    try:
        for manifest in manifests:
            _replace(realkube_api, manifest)
        for manifest in manifests:
            relabelled = copy.deepcopy(manifest)
            relabelled["spec"]["conversion"] = {"strategy": "None"}
            _replace(realkube_api, relabelled)
        ns = f"kcp-{uuid.uuid4().hex[:8]}"
        assert realkube_api.post("/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).status == 201
        for spec, field, message in BAD[:4]:
            body: Obj = {"apiVersion": f"{types.GROUP}/v1beta1", "kind": "KubeadmControlPlane",
                         "metadata": {"name": "bad"}, "spec": {
                             "replicas": 1, "version": "v1.33.0", "kubeadmConfigSpec": {},
                             "machineTemplate": {"infrastructureRef": {"name": "x"}}, **spec}}
            resp = realkube_api.post(_path("v1beta1", "kubeadmcontrolplanes", ns), body)
            assert resp.status == 422, resp.body
            assert any(c.get("field") == field and message in c.get("message", "")
                       for c in resp.json()["details"]["causes"]), resp.body
        realkube_api.delete(f"/api/v1/namespaces/{ns}")
    finally:
        for manifest in manifests:  # as other modules expect to find them
            _replace(realkube_api, manifest)


def _replace(api: Client, manifest: Obj) -> None:
    name = manifest["metadata"]["name"]
    current = api.get(f"{CRD_PATH}/{name}")
    if current.status == 404:
        install_crd(api, manifest)
    else:
        body = copy.deepcopy(manifest)
        body["metadata"]["resourceVersion"] = current.json()["metadata"]["resourceVersion"]
        resp = api.put(f"{CRD_PATH}/{name}", body)
        assert resp.status == 200, resp.body
    install_crd(api, manifest)  # waits for Established
    crd = api.get(f"{CRD_PATH}/{name}").json()
    assert not any(c["type"] == "NonStructuralSchema" and c["status"] == "True"
                   for c in crd["status"]["conditions"]), crd["status"]
