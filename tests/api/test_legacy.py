"""`shipyard convert`: cluster.k8s.io/v1alpha1 manifests (the shapes of the first Cluster API's
quick starts) become today's objects, every unmapped field is reported, and the result is
accepted by the real server's CRDs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from shipyard.api.legacy import ConversionError, convert
from shipyard.bootstrap.kubeadm import types as kubeadm_types
from shipyard.cli.main import main
from shipyard.controlplane.kubeadm import types as kcp_types
from shipyard.providers.process import types as process_types
from tests.kube import Server
from tests.providers.harness import capi, install_crd

__all__ = ["capi"]

AWS = textwrap.dedent("""\
    apiVersion: cluster.k8s.io/v1alpha1
    kind: Cluster
    metadata: {name: prod}
    spec:
      clusterNetwork:
        services: {cidrBlocks: ["10.96.0.0/12"]}
        pods: {cidrBlocks: ["192.168.0.0/16"]}
        serviceDomain: cluster.local
      providerSpec:
        value:
          apiVersion: awsprovider/v1alpha1
          kind: AWSClusterProviderSpec
          region: eu-west-1
          sshKeyName: ops
          caKeyPair: {cert: "", key: ""}
    ---
    apiVersion: cluster.k8s.io/v1alpha1
    kind: MachineList
    items:
    - apiVersion: cluster.k8s.io/v1alpha1
      kind: Machine
      metadata:
        name: prod-controlplane-0
        labels: {cluster.k8s.io/cluster-name: prod, set: controlplane}
      spec:
        versions: {kubelet: v1.14.4, controlPlane: v1.14.4}
        providerSpec:
          value:
            apiVersion: awsprovider/v1alpha1
            kind: AWSMachineProviderSpec
            instanceType: t3.large
            iamInstanceProfile: control-plane.cluster-api-provider-aws.sigs.k8s.io
            keyName: ops
    - apiVersion: cluster.k8s.io/v1alpha1
      kind: Machine
      metadata:
        name: prod-controlplane-1
        labels: {cluster.k8s.io/cluster-name: prod, set: controlplane}
      spec:
        versions: {kubelet: v1.14.4, controlPlane: v1.14.4}
        providerSpec: {value: {apiVersion: awsprovider/v1alpha1, kind: AWSMachineProviderSpec}}
    - apiVersion: cluster.k8s.io/v1alpha1
      kind: Machine
      metadata:
        name: prod-controlplane-2
        labels: {cluster.k8s.io/cluster-name: prod, set: controlplane}
      spec:
        versions: {kubelet: v1.14.4, controlPlane: v1.14.4}
        providerSpec: {value: {apiVersion: awsprovider/v1alpha1, kind: AWSMachineProviderSpec}}
    ---
    apiVersion: cluster.k8s.io/v1alpha1
    kind: MachineDeployment
    metadata:
      name: prod-md-0
      labels: {cluster.k8s.io/cluster-name: prod}
    spec:
      replicas: 3
      revisionHistoryLimit: 5
      selector:
        matchLabels: {cluster.k8s.io/cluster-name: prod, set: node}
      strategy:
        type: RollingUpdate
        rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
      template:
        metadata:
          labels: {cluster.k8s.io/cluster-name: prod, set: node}
        spec:
          versions: {kubelet: v1.14.4}
          providerSpec:
            value:
              apiVersion: awsprovider/v1alpha1
              kind: AWSMachineProviderSpec
              instanceType: t3.medium
              keyName: ops
              rootDeviceSize: 50
    """)

GENERIC = textwrap.dedent("""\
    apiVersion: cluster.k8s.io/v1alpha1
    kind: Cluster
    metadata: {name: lab, namespace: team}
    spec:
      clusterNetwork:
        services: {cidrBlocks: ["10.96.0.0/12"]}
        pods: {cidrBlocks: ["192.168.0.0/16"]}
        serviceDomain: cluster.local
      providerSpec:
        value: {apiVersion: vsphereproviderconfig/v1alpha1, kind: VsphereClusterProviderConfig,
                server: vcenter.example.com}
    ---
    apiVersion: cluster.k8s.io/v1alpha1
    kind: MachineClass
    metadata: {name: small, namespace: team}
    providerSpec:
      apiVersion: vsphereproviderconfig/v1alpha1
      kind: VsphereMachineProviderConfig
      machineSpec: {numCPUs: 2, memoryMB: 2048}
    ---
    apiVersion: cluster.k8s.io/v1alpha1
    kind: MachineSet
    metadata:
      name: lab-workers
      namespace: team
      labels: {cluster.k8s.io/cluster-name: lab}
    spec:
      replicas: 2
      deletePolicy: Oldest
      minReadySeconds: 10
      selector: {matchLabels: {pool: workers}}
      template:
        metadata: {labels: {pool: workers}}
        spec:
          versions: {kubelet: v1.31.2}
          providerSpec:
            valueFrom:
              machineClass: {name: small, provider: vsphere}
    ---
    apiVersion: cluster.k8s.io/v1alpha1
    kind: Machine
    metadata:
      name: lab-standalone
      namespace: team
      labels: {cluster.k8s.io/cluster-name: lab}
    spec:
      versions: {kubelet: v1.31.2}
      taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
      configSource: {configMap: {name: kubelet-config}}
      providerSpec:
        valueFrom:
          machineClass: {name: small}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: unrelated}
    """)


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for o in objects:
        out.setdefault(o["kind"], []).append(o)
    return out


def test_aws_quick_start_maps_field_by_field() -> None:
    result = convert(list(yaml.safe_load_all(AWS)))
    kinds = by_kind(result.objects)
    cluster = kinds["Cluster"][0]
    assert cluster["apiVersion"] == "cluster.x-k8s.io/v1beta2"
    assert cluster["spec"]["infrastructureRef"] == {
        "apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "AWSCluster", "name": "prod"}
    assert cluster["spec"]["controlPlaneRef"]["kind"] == "KubeadmControlPlane"
    assert cluster["spec"]["clusterNetwork"]["serviceDomain"] == "cluster.local"
    assert kinds["AWSCluster"][0]["spec"] == {"region": "eu-west-1", "sshKeyName": "ops"}
    kcp = kinds["KubeadmControlPlane"][0]
    assert (kcp["spec"]["replicas"], kcp["spec"]["version"]) == (3, "v1.14.4")
    cp_template = next(t for t in kinds["AWSMachineTemplate"]
                       if t["metadata"]["name"] == "prod-control-plane")
    assert cp_template["spec"]["template"]["spec"] == {
        "instanceType": "t3.large", "sshKeyName": "ops",
        "iamInstanceProfile": "control-plane.cluster-api-provider-aws.sigs.k8s.io"}
    md = kinds["MachineDeployment"][0]
    assert md["spec"]["clusterName"] == "prod"
    assert md["spec"]["rollout"]["strategy"]["rollingUpdate"] == {"maxSurge": 1,
                                                                 "maxUnavailable": 0}
    assert md["spec"]["selector"]["matchLabels"] == {"cluster.x-k8s.io/cluster-name": "prod",
                                                     "set": "node"}
    assert md["spec"]["template"]["spec"]["version"] == "v1.14.4"
    assert md["spec"]["template"]["spec"]["bootstrap"]["configRef"]["kind"] == \
        "KubeadmConfigTemplate"
    worker_template = next(t for t in kinds["AWSMachineTemplate"]
                           if t["metadata"]["name"] == "prod-md-0")
    assert worker_template["spec"]["template"]["spec"]["rootVolume"] == {"size": 50}
    assert "Machine" not in kinds  # control-plane machines became the KubeadmControlPlane
    assert sorted(result.unmapped) == [
        "Cluster/prod: providerSpec.value.caKeyPair (no field in AWSCluster)",
        "MachineDeployment/prod-md-0: spec.revisionHistoryLimit (removed in v1beta2)"]


def test_machine_classes_and_other_providers_are_reported(tmp_path: Path) -> None:
    result = convert(list(yaml.safe_load_all(GENERIC)), "process")
    kinds = by_kind(result.objects)
    assert kinds["ProcessCluster"][0]["metadata"] == {"name": "lab", "namespace": "team"}
    ms = kinds["MachineSet"][0]
    assert ms["spec"]["deletion"] == {"order": "Oldest"}
    assert ms["spec"]["template"]["spec"]["minReadySeconds"] == 10
    assert ms["spec"]["template"]["metadata"]["labels"] == {
        "pool": "workers", "cluster.x-k8s.io/cluster-name": "lab"}
    machine = kinds["Machine"][0]
    assert machine["spec"]["taints"] == [{"key": "dedicated", "value": "gpu",
                                          "effect": "NoSchedule", "propagation": "Always"}]
    assert machine["spec"]["bootstrap"]["configRef"] == {
        "apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig",
        "name": "lab-standalone"}
    assert "MachineClass" not in kinds
    notes = "\n".join(result.unmapped)
    assert "Cluster/lab: providerSpec.value.server (no field in ProcessCluster of provider " \
        "process)" in notes
    assert "MachineSet/lab-workers: providerSpec.value.machineSpec" in notes
    assert "Machine/lab-standalone: spec.configSource" in notes
    assert "Secret/unrelated: v1 Secret is not a Cluster API v1alpha1 kind" in notes


def test_input_without_v1alpha1_objects_is_refused() -> None:
    with pytest.raises(ConversionError, match="no cluster.k8s.io/v1alpha1 objects"):
        convert([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}])
    with pytest.raises(ConversionError, match="unknown infrastructure"):
        convert(list(yaml.safe_load_all(GENERIC)), "gcp")


def test_cli_writes_yaml_and_notes(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(GENERIC)
    result = CliRunner().invoke(main, ["convert", "-f", str(old)])
    assert result.exit_code == 0, result.output
    kinds = {d["kind"] for d in yaml.safe_load_all(result.stdout)}
    assert {"Cluster", "ProcessCluster", "MachineSet", "KubeadmConfigTemplate"} <= kinds
    assert result.stderr.startswith("Could not map:\n  - ")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unterminated")
    result = CliRunner().invoke(main, ["convert", "-f", str(bad)])
    assert result.exit_code == 1 and "is not valid YAML" in result.stderr
    result = CliRunner().invoke(main, ["convert", "-f", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1 and "cannot read" in result.stderr


def test_converted_objects_pass_the_servers_validation(capi: Server, namespace: str) -> None:
    api = capi.client()
    for manifest in [*kubeadm_types.crd_manifests(), *kcp_types.crd_manifests(),
                     *process_types.crd_manifests()]:
        # replace: another module may have left a stand-in of the same name (serving v1beta1).
        install_crd(api, manifest, replace=True)
    text = GENERIC.replace("namespace: team", f"namespace: {namespace}")
    result = convert(list(yaml.safe_load_all(text)), "process")
    applied = capi.kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-",
                           stdin=yaml.safe_dump_all(result.objects))
    items = json.loads(applied.stdout)["items"]
    assert len(items) == len(result.objects)
