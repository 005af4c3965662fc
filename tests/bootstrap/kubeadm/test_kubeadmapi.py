"""Cluster API's kubeadm dialect → kubeadm's own documents, per Kubernetes version."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.bootstrap.kubeadm import kubeadmapi

SPEC = {
    "apiServer": {"extraArgs": [{"name": "audit-log-maxage", "value": "30"}],
                  "extraEnvs": [{"name": "A", "value": "b"}], "certSANs": ["x.example"]},
    "etcd": {"local": {"dataDir": "/var/lib/etcd",
                       "extraArgs": [{"name": "quota-backend-bytes", "value": "8589934592"}]}},
    "certificateValidityPeriodDays": 100, "caCertificateValidityPeriodDays": 1000,
    "encryptionAlgorithm": "ECDSA-P256",
}


@pytest.mark.parametrize(("version", "expected"), [
    ("v1.22.0", kubeadmapi.V1BETA3), ("v1.30.9", kubeadmapi.V1BETA3),
    ("v1.31.0", kubeadmapi.V1BETA4), ("1.34.1", kubeadmapi.V1BETA4),
    ("v1.31.0-rc.1", kubeadmapi.V1BETA4)])
def test_api_version_follows_kubernetes_version(version: str, expected: str) -> None:
    assert kubeadmapi.kubeadm_api_version(version) == expected


@pytest.mark.parametrize("version", ["v1.21.9", "banana"])
def test_too_old_or_invalid_versions_are_refused(version: str) -> None:
    with pytest.raises(kubeadmapi.UnsupportedKubernetesVersion):
        kubeadmapi.kubeadm_api_version(version)


def test_v1beta4_keeps_lists_and_converts_durations() -> None:
    cc = kubeadmapi.cluster_configuration(SPEC, kubernetes_version="v1.31.0", cluster_name="c")
    assert cc["apiServer"]["extraArgs"] == [{"name": "audit-log-maxage", "value": "30"}]
    assert cc["apiServer"]["extraEnvs"] == [{"name": "A", "value": "b"}]
    assert cc["certificateValidityPeriod"] == "2400h0m0s"
    assert cc["caCertificateValidityPeriod"] == "24000h0m0s"
    assert cc["encryptionAlgorithm"] == "ECDSA-P256"
    assert "certificateValidityPeriodDays" not in cc
    init = kubeadmapi.init_configuration(
        {"timeouts": {"controlPlaneComponentHealthCheckSeconds": 300},
         "bootstrapTokens": [{"token": "abcdef.0123456789abcdef", "ttlSeconds": 600}]},
        kubernetes_version="v1.31.0")
    assert init["timeouts"] == {"controlPlaneComponentHealthCheck": "300s"}
    assert init["bootstrapTokens"][0]["ttl"] == "600s"


def test_v1beta3_uses_maps_and_drops_newer_fields() -> None:
    cc = kubeadmapi.cluster_configuration(
        SPEC, kubernetes_version="v1.29.3", cluster_name="c",
        init_timeouts={"controlPlaneComponentHealthCheckSeconds": 240})
    assert cc["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert cc["apiServer"]["extraArgs"] == {"audit-log-maxage": "30"}
    assert cc["apiServer"]["timeoutForControlPlane"] == "240s"
    assert cc["etcd"]["local"]["extraArgs"] == {"quota-backend-bytes": "8589934592"}
    for dropped in ("certificateValidityPeriod", "encryptionAlgorithm",
                    "caCertificateValidityPeriod"):
        assert dropped not in cc
    assert "extraEnvs" not in cc["apiServer"]
    join = kubeadmapi.join_configuration(
        {"nodeRegistration": {"kubeletExtraArgs": [{"name": "v", "value": "2"}],
                              "imagePullSerial": True},
         "timeouts": {"discoverySeconds": 60}}, kubernetes_version="v1.29.3")
    assert join["nodeRegistration"] == {"kubeletExtraArgs": {"v": "2"}}
    assert join["discovery"]["timeout"] == "60s" and "timeouts" not in join


def test_user_endpoint_wins_and_spec_is_not_mutated() -> None:
    spec: dict[str, Any] = {"controlPlaneEndpoint": "lb.example:443", "apiServer": {"extraArgs": [
        {"name": "a", "value": "b"}]}}
    cc = kubeadmapi.cluster_configuration(spec, kubernetes_version="v1.29.0", cluster_name="c",
                                          control_plane_endpoint="10.0.0.1:6443")
    assert cc["controlPlaneEndpoint"] == "lb.example:443"
    assert spec["apiServer"]["extraArgs"] == [{"name": "a", "value": "b"}]
    assert "networking" not in cc
