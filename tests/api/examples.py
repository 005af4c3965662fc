"""Manifests in the shape people write them, at v1beta1 and their v1beta2 equivalents."""

from __future__ import annotations

from typing import Any

INFRA = "infrastructure.cluster.x-k8s.io"
V1 = "cluster.x-k8s.io/v1beta1"
V2 = "cluster.x-k8s.io/v1beta2"


def cluster_v1beta1() -> dict[str, Any]:
    return {
        "apiVersion": V1, "kind": "Cluster",
        "metadata": {"name": "capi-quickstart", "namespace": "default"},
        "spec": {
            "clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]},
                               "serviceDomain": "cluster.local"},
            "controlPlaneRef": {"apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
                                "kind": "KubeadmControlPlane", "name": "capi-quickstart-cp",
                                "namespace": "default"},
            "infrastructureRef": {"apiVersion": f"{INFRA}/v1beta1", "kind": "DockerCluster",
                                  "name": "capi-quickstart", "namespace": "default"},
        },
    }


def cluster_v1beta2() -> dict[str, Any]:
    return {
        "apiVersion": V2, "kind": "Cluster",
        "metadata": {"name": "capi-quickstart", "namespace": "default"},
        "spec": {
            "clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]},
                               "serviceDomain": "cluster.local"},
            "controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io",
                                "kind": "KubeadmControlPlane", "name": "capi-quickstart-cp"},
            "infrastructureRef": {"apiGroup": INFRA, "kind": "DockerCluster",
                                  "name": "capi-quickstart"},
        },
    }


def machine_deployment_v1beta1() -> dict[str, Any]:
    return {
        "apiVersion": V1, "kind": "MachineDeployment",
        "metadata": {"name": "capi-quickstart-md-0", "namespace": "default"},
        "spec": {
            "clusterName": "capi-quickstart",
            "replicas": 3,
            "selector": {"matchLabels": {}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%",
                                           "deletePolicy": "Oldest"}},
            "minReadySeconds": 10,
            "template": {
                "metadata": {"labels": {"nodepool": "md-0"}},
                "spec": {
                    "clusterName": "capi-quickstart",
                    "version": "v1.33.0",
                    "bootstrap": {"configRef": {
                        "apiVersion": "bootstrap.cluster.x-k8s.io/v1beta1",
                        "kind": "KubeadmConfigTemplate", "name": "capi-quickstart-md-0"}},
                    "infrastructureRef": {"apiVersion": f"{INFRA}/v1beta1",
                                          "kind": "DockerMachineTemplate",
                                          "name": "capi-quickstart-md-0"},
                    "nodeDrainTimeout": "5m0s",
                },
            },
        },
    }


def machine_deployment_v1beta2() -> dict[str, Any]:
    return {
        "apiVersion": V2, "kind": "MachineDeployment",
        "metadata": {"name": "capi-quickstart-md-0", "namespace": "default"},
        "spec": {
            "clusterName": "capi-quickstart",
            "replicas": 3,
            "selector": {"matchLabels": {}},
            "rollout": {"strategy": {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}},
            "deletion": {"order": "Oldest"},
            "template": {
                "metadata": {"labels": {"nodepool": "md-0"}},
                "spec": {
                    "clusterName": "capi-quickstart",
                    "version": "v1.33.0",
                    "bootstrap": {"configRef": {
                        "apiGroup": "bootstrap.cluster.x-k8s.io",
                        "kind": "KubeadmConfigTemplate", "name": "capi-quickstart-md-0"}},
                    "infrastructureRef": {"apiGroup": INFRA, "kind": "DockerMachineTemplate",
                                          "name": "capi-quickstart-md-0"},
                    "deletion": {"nodeDrainTimeoutSeconds": 300},
                    "minReadySeconds": 10,
                },
            },
        },
    }


def mhc_v1beta1() -> dict[str, Any]:
    return {
        "apiVersion": V1, "kind": "MachineHealthCheck",
        "metadata": {"name": "capi-quickstart-mhc", "namespace": "default"},
        "spec": {
            "clusterName": "capi-quickstart",
            "maxUnhealthy": "40%",
            "nodeStartupTimeout": "10m0s",
            "selector": {"matchLabels": {"nodepool": "md-0"}},
            "unhealthyConditions": [
                {"type": "Ready", "status": "Unknown", "timeout": "5m0s"},
                {"type": "Ready", "status": "False", "timeout": "5m0s"},
            ],
            "remediationTemplate": {"apiVersion": f"{INFRA}/v1beta1",
                                    "kind": "Metal3RemediationTemplate",
                                    "name": "remediate", "namespace": "default"},
        },
    }


def mhc_v1beta2() -> dict[str, Any]:
    return {
        "apiVersion": V2, "kind": "MachineHealthCheck",
        "metadata": {"name": "capi-quickstart-mhc", "namespace": "default"},
        "spec": {
            "clusterName": "capi-quickstart",
            "selector": {"matchLabels": {"nodepool": "md-0"}},
            "checks": {
                "nodeStartupTimeoutSeconds": 600,
                "unhealthyNodeConditions": [
                    {"type": "Ready", "status": "Unknown", "timeoutSeconds": 300},
                    {"type": "Ready", "status": "False", "timeoutSeconds": 300},
                ],
            },
            "remediation": {
                "triggerIf": {"unhealthyLessThanOrEqualTo": "40%"},
                "templateRef": {"apiVersion": f"{INFRA}/v1beta1",
                                "kind": "Metal3RemediationTemplate", "name": "remediate"},
            },
        },
    }
