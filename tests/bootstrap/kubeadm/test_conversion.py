"""KubeadmConfig(Template) v1beta1 ⇄ v1beta2: upstream's moves, and lossless round trips."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from shipyard.api.converting import Converter
from shipyard.api.core.conversion import ConversionError
from shipyard.bootstrap.kubeadm import conversion, types

V1 = """
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfig
metadata: {name: cp, namespace: ns, uid: u1, resourceVersion: "7"}
spec:
  clusterConfiguration:
    kubernetesVersion: v1.29.0
    clusterName: c1
    networking: {podSubnet: 192.168.0.0/16}
    apiServer:
      timeoutForControlPlane: 20m0s
      extraArgs: {audit-log-maxage: "30", enable-admission-plugins: NodeRestriction}
    etcd: {local: {extraArgs: {listen-metrics-urls: "http://0.0.0.0:2381"}}}
  initConfiguration:
    bootstrapTokens: [{token: abcdef.0123456789abcdef, ttl: 24h0m0s}]
    nodeRegistration: {kubeletExtraArgs: {cloud-provider: external}}
  joinConfiguration:
    discovery: {timeout: 5m0s, bootstrapToken: {apiServerEndpoint: "1.2.3.4:6443"}}
    nodeRegistration: {kubeletExtraArgs: {cloud-provider: external}}
  useExperimentalRetryJoin: true
  files: [{path: /etc/a, content: x}]
  preKubeadmCommands: [echo hi]
status:
  ready: true
  dataSecretName: cp
  observedGeneration: 3
  conditions: [{type: Ready, status: "True", lastTransitionTime: "2025-01-01T00:00:00Z"}]
  v1beta2:
    conditions: [{type: Ready, status: "True", reason: Ready, message: "",
                  lastTransitionTime: "2025-01-01T00:00:00Z"}]
"""


def _v1() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(V1)
    return doc


def test_up_applies_upstream_moves() -> None:
    v2 = conversion.convert(_v1(), conversion.V1BETA2)
    assert v2["apiVersion"] == types.API_VERSION
    spec = v2["spec"]
    cc = spec["clusterConfiguration"]
    assert cc["apiServer"]["extraArgs"] == [
        {"name": "audit-log-maxage", "value": "30"},
        {"name": "enable-admission-plugins", "value": "NodeRestriction"}]
    assert cc["etcd"]["local"]["extraArgs"] == [{"name": "listen-metrics-urls",
                                                 "value": "http://0.0.0.0:2381"}]
    for dropped in ("kubernetesVersion", "clusterName", "networking"):
        assert dropped not in cc
    assert "timeoutForControlPlane" not in cc["apiServer"]
    assert spec["initConfiguration"]["timeouts"] == {
        "controlPlaneComponentHealthCheckSeconds": 1200}
    assert spec["joinConfiguration"]["timeouts"] == {
        "controlPlaneComponentHealthCheckSeconds": 1200, "tlsBootstrapSeconds": 300}
    assert "timeout" not in spec["joinConfiguration"]["discovery"]
    assert spec["initConfiguration"]["bootstrapTokens"][0]["ttlSeconds"] == 86400
    assert spec["initConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "cloud-provider", "value": "external"}]
    assert "useExperimentalRetryJoin" not in spec
    assert spec["files"] == [{"path": "/etc/a", "content": "x"}]
    status = v2["status"]
    assert status["initialization"] == {"dataSecretCreated": True}
    assert status["conditions"][0]["reason"] == "Ready"
    assert status["deprecated"]["v1beta1"]["conditions"][0]["type"] == "Ready"
    assert status["dataSecretName"] == "cp" and status["observedGeneration"] == 3
    assert "conversion-data" in str(v2["metadata"].get("annotations"))


def test_round_trip_through_v1beta2_restores_v1beta1_exactly() -> None:
    original = _v1()
    back = conversion.convert(conversion.convert(original, conversion.V1BETA2),
                              conversion.V1BETA1)
    assert back == original


def test_v1beta2_round_trip_is_lossless() -> None:
    v2 = conversion.convert(_v1(), conversion.V1BETA2)
    v2["metadata"].pop("annotations")
    v1 = conversion.convert(v2, conversion.V1BETA1)
    assert v1["spec"]["clusterConfiguration"]["apiServer"]["timeoutForControlPlane"] == "20m0s"
    assert v1["spec"]["joinConfiguration"]["discovery"]["timeout"] == "5m0s"
    assert v1["status"]["ready"] is True
    assert conversion.convert(v1, conversion.V1BETA2) == v2


def test_an_edit_made_at_the_other_version_wins_over_saved_data() -> None:
    v2 = conversion.convert(_v1(), conversion.V1BETA2)
    v2["spec"]["preKubeadmCommands"] = ["echo edited"]
    v1 = conversion.convert(v2, conversion.V1BETA1)
    assert v1["spec"]["preKubeadmCommands"] == ["echo edited"]
    assert v1["spec"]["clusterConfiguration"]["apiServer"]["extraArgs"] == {
        "audit-log-maxage": "30", "enable-admission-plugins": "NodeRestriction"}


def test_templates_convert_their_template_spec() -> None:
    tpl = {"apiVersion": conversion.V1BETA1, "kind": "KubeadmConfigTemplate",
           "metadata": {"name": "t"},
           "spec": {"template": {"spec": {"joinConfiguration": {"nodeRegistration": {
               "kubeletExtraArgs": {"eviction-hard": "nodefs.available<0%"}}}}}}}
    v2 = conversion.convert(copy.deepcopy(tpl), conversion.V1BETA2)
    assert v2["spec"]["template"]["spec"]["joinConfiguration"]["nodeRegistration"][
        "kubeletExtraArgs"] == [{"name": "eviction-hard", "value": "nodefs.available<0%"}]
    assert "annotations" not in v2["metadata"]
    assert conversion.convert(v2, conversion.V1BETA1) == tpl


def test_bad_input_is_a_conversion_error() -> None:
    converter: Converter = conversion.KubeadmConverter()
    with pytest.raises(ConversionError):
        converter.convert({"apiVersion": conversion.V1BETA1, "kind": "Machine"},
                          conversion.V1BETA2)
    with pytest.raises(ConversionError):
        converter.convert(_v1(), "bootstrap.cluster.x-k8s.io/v1alpha4")
    bad = _v1()
    bad["spec"]["joinConfiguration"]["discovery"]["timeout"] = "soon"
    with pytest.raises(ConversionError):
        converter.convert(bad, conversion.V1BETA2)


def test_crds_can_serve_v1beta1_with_webhook_conversion() -> None:
    for crd in types.crd_manifests(serve_v1beta1=True):
        assert crd["metadata"]["labels"]["cluster.x-k8s.io/v1beta1"] == "v1beta1"
        assert [v["name"] for v in crd["spec"]["versions"]] == ["v1beta1", "v1beta2"]
        assert [v["storage"] for v in crd["spec"]["versions"]] == [False, True]
        assert crd["spec"]["conversion"]["strategy"] == "Webhook"
    assert all("conversion" not in crd["spec"] for crd in types.crd_manifests())
