"""KubeadmConfig and KubeadmConfigTemplate in `bootstrap.cluster.x-k8s.io/v1beta2`.

Why hand-written schemas: the kinds must accept any manifest written for upstream's CABPK
(`api/bootstrap/kubeadm/v1beta2/kubeadmconfig_types.go`, `kubeadm_types.go`), so field names
are upstream's. The spec's top level is typed; the three kubeadm configurations are typed at
their first level and keep unknown fields below it (kubeadm's API is large and evolves; we
pass it through to kubeadm's own documents rather than prune what we do not model).

Contract: the CRDs carry `cluster.x-k8s.io/v1beta2: v1beta2` (the version implementing the
v1beta2 BootstrapConfig contract) and `cluster.x-k8s.io/provider: bootstrap-kubeadm`; only
KubeadmConfig has a status subresource. v1beta2 is served and stored; `crd_manifests(
serve_v1beta1=True)` also serves v1beta1 through Webhook conversion (`conversion`), as
upstream does, for servers that have the converter registered.
"""

from __future__ import annotations

from typing import Any, Final

from shipyard.client.interfaces import GVK

GROUP: Final = "bootstrap.cluster.x-k8s.io"
VERSION: Final = "v1beta2"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CONFIG: Final = GVK(API_VERSION, "KubeadmConfig")
CONFIG_TEMPLATE: Final = GVK(API_VERSION, "KubeadmConfigTemplate")
PROVIDER: Final = "bootstrap-kubeadm"

# Conditions (upstream's v1beta2 condition types and reasons for KubeadmConfig).
READY_CONDITION: Final = "Ready"
DATA_SECRET_AVAILABLE_CONDITION: Final = "DataSecretAvailable"
CERTIFICATES_AVAILABLE_CONDITION: Final = "CertificatesAvailable"
AVAILABLE_REASON: Final = "Available"
NOT_AVAILABLE_REASON: Final = "NotAvailable"
INTERNAL_ERROR_REASON: Final = "InternalError"
WAITING_FOR_CLUSTER_INFRASTRUCTURE_REASON: Final = "WaitingForClusterInfrastructure"
WAITING_FOR_CONTROL_PLANE_INITIALIZATION_REASON: Final = "WaitingForControlPlaneInitialization"
WAITING_FOR_OWNER_REASON: Final = "WaitingForOwner"
BOOTSTRAP_FORMAT: Final = "cloud-config"

_STR: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_INT: dict[str, Any] = {"type": "integer", "format": "int32"}
_STRS: dict[str, Any] = {"type": "array", "items": _STR}
_OPEN: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _obj(properties: dict[str, Any], required: list[str] | None = None,
         open_: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if open_:
        schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


_ARGS: dict[str, Any] = {"type": "array", "items": _obj({"name": _STR, "value": _STR},
                                                         ["name", "value"])}
_TAINTS: dict[str, Any] = {"type": "array", "items": _obj(
    {"key": _STR, "value": _STR, "effect": _STR, "timeAdded": _STR}, ["key", "effect"])}
_NODE_REGISTRATION = _obj({
    "name": _STR, "criSocket": _STR, "taints": _TAINTS, "kubeletExtraArgs": _ARGS,
    "ignorePreflightErrors": _STRS, "imagePullPolicy": _STR, "imagePullSerial": _BOOL,
}, open_=True)
_API_ENDPOINT = _obj({"advertiseAddress": _STR, "bindPort": _INT})
_COMPONENT = _obj({"extraArgs": _ARGS, "extraVolumes": {"type": "array", "items": _OPEN},
                   "extraEnvs": {"type": "array", "items": _OPEN}}, open_=True)

CLUSTER_CONFIGURATION = _obj({
    "etcd": _OPEN, "controlPlaneEndpoint": _STR, "apiServer": _COMPONENT,
    "controllerManager": _COMPONENT, "scheduler": _COMPONENT, "dns": _OPEN,
    "certificatesDir": _STR, "imageRepository": _STR,
    "featureGates": {"type": "object", "additionalProperties": _BOOL},
    "certificateValidityPeriodDays": _INT, "caCertificateValidityPeriodDays": _INT,
    "encryptionAlgorithm": {"type": "string", "enum": [
        "ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096"]},
}, open_=True)
INIT_CONFIGURATION = _obj({
    "bootstrapTokens": {"type": "array", "items": _OPEN},
    "nodeRegistration": _NODE_REGISTRATION, "localAPIEndpoint": _API_ENDPOINT,
    "skipPhases": _STRS, "patches": _OPEN, "timeouts": _OPEN,
}, open_=True)
JOIN_CONFIGURATION = _obj({
    "nodeRegistration": _NODE_REGISTRATION, "caCertPath": _STR,
    "discovery": _obj({
        "bootstrapToken": _obj({"token": _STR, "apiServerEndpoint": _STR,
                                "caCertHashes": _STRS, "unsafeSkipCAVerification": _BOOL}),
        "file": _OPEN, "tlsBootstrapToken": _STR,
    }, open_=True),
    "controlPlane": _obj({"localAPIEndpoint": _API_ENDPOINT}),
    "skipPhases": _STRS, "patches": _OPEN, "timeouts": _OPEN,
}, open_=True)
_SECRET_SOURCE = _obj({"secret": _obj({"name": _STR, "key": _STR}, ["name", "key"])},
                      ["secret"])
FILE = _obj({
    "path": _STR, "owner": _STR, "permissions": _STR,
    "encoding": {"type": "string", "enum": ["base64", "gzip", "gzip+base64"]},
    "append": _BOOL, "content": _STR, "contentFrom": _SECRET_SOURCE,
}, ["path"])
USER = _obj({
    "name": _STR, "gecos": _STR, "groups": _STR, "homeDir": _STR, "inactive": _BOOL,
    "shell": _STR, "passwd": _STR, "passwdFrom": _SECRET_SOURCE, "primaryGroup": _STR,
    "lockPassword": _BOOL, "sudo": _STR, "sshAuthorizedKeys": _STRS,
}, ["name"])
DISK_SETUP = _obj({
    "partitions": {"type": "array", "items": _obj({
        "device": _STR, "layout": _BOOL, "overwrite": _BOOL,
        "tableType": {"type": "string", "enum": ["mbr", "gpt"]}}, ["device", "layout"])},
    "filesystems": {"type": "array", "items": _obj({
        "device": _STR, "filesystem": _STR, "label": _STR, "partition": _STR,
        "overwrite": _BOOL, "replaceFS": _STR, "extraOpts": _STRS},
        ["device", "filesystem"])},
})

SPEC = _obj({
    "clusterConfiguration": CLUSTER_CONFIGURATION,
    "initConfiguration": INIT_CONFIGURATION,
    "joinConfiguration": JOIN_CONFIGURATION,
    "files": {"type": "array", "items": FILE},
    "diskSetup": DISK_SETUP,
    "mounts": {"type": "array", "items": _STRS},
    "bootCommands": _STRS,
    "preKubeadmCommands": _STRS,
    "postKubeadmCommands": _STRS,
    "users": {"type": "array", "items": USER},
    "ntp": _obj({"servers": _STRS, "enabled": _BOOL}),
    "format": {"type": "string", "enum": ["cloud-config", "ignition"]},
    "verbosity": _INT,
    "ignition": _OPEN,
})

_CONDITIONS: dict[str, Any] = {
    "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
    "items": _obj({"type": _STR, "status": _STR, "reason": _STR, "message": _STR,
                   "lastTransitionTime": {"type": "string", "format": "date-time"},
                   "observedGeneration": {"type": "integer", "format": "int64"}},
                  ["type", "status"])}
STATUS = _obj({
    "conditions": _CONDITIONS,
    "initialization": _obj({"dataSecretCreated": _BOOL}),
    "dataSecretName": _STR,
    "observedGeneration": {"type": "integer", "format": "int64"},
    "deprecated": _OPEN,
})
TEMPLATE_SPEC = _obj({"template": _obj({"metadata": _obj({
    "labels": {"type": "object", "additionalProperties": _STR},
    "annotations": {"type": "object", "additionalProperties": _STR}}), "spec": SPEC})},
    ["template"])


WEBHOOK_SERVICE: Final = {"namespace": "capi-kubeadm-bootstrap-system",
                          "name": "capi-kubeadm-bootstrap-webhook-service", "path": "/convert"}
"""Where upstream's CABPK serves conversion; Shipyard's own server converts in process."""


def _v1beta1(status: bool) -> dict[str, Any]:
    """v1beta1 as served alongside: its shape is upstream's older one (maps for extraArgs,
    Durations, `status.ready`), converted by `conversion`; the schema keeps what it is sent."""
    properties: dict[str, Any] = {"apiVersion": _STR, "kind": _STR,
                                  "metadata": {"type": "object"}, "spec": _OPEN}
    version: dict[str, Any] = {"name": "v1beta1", "served": True, "storage": False,
                               "deprecated": True}
    if status:
        properties["status"] = _OPEN
        version["subresources"] = {"status": {}}
    version["schema"] = {"openAPIV3Schema": {"type": "object", "properties": properties}}
    return version


def _crd(kind: str, plural: str, spec: dict[str, Any], status: dict[str, Any] | None,
         columns: list[dict[str, Any]], serve_v1beta1: bool = False) -> dict[str, Any]:
    properties: dict[str, Any] = {"apiVersion": _STR, "kind": _STR,
                                  "metadata": {"type": "object"}, "spec": spec}
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if status is not None:
        properties["status"] = status
        version["subresources"] = {"status": {}}
    version["schema"] = {"openAPIV3Schema": {"type": "object", "properties": properties}}
    version["additionalPrinterColumns"] = [
        *columns, {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    labels = {"cluster.x-k8s.io/v1beta2": VERSION, "cluster.x-k8s.io/provider": PROVIDER}
    crd_spec: dict[str, Any] = {
        "group": GROUP, "scope": "Namespaced",
        "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                  "singular": kind.lower(), "categories": ["cluster-api"]},
        "versions": [version]}
    if serve_v1beta1:
        labels["cluster.x-k8s.io/v1beta1"] = "v1beta1"
        crd_spec["versions"] = [_v1beta1(status is not None), version]
        crd_spec["conversion"] = {"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": {"caBundle": "Cg==", "service": dict(WEBHOOK_SERVICE)}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}", "labels": labels}, "spec": crd_spec}


def crd_manifests(serve_v1beta1: bool = False) -> list[dict[str, Any]]:
    """The two CRDs. With `serve_v1beta1`, v1beta1 is served too through Webhook conversion:
    the API server must then have `conversion.KubeadmConverter` registered for the group
    (Shipyard's server, in process) or the CABPK webhook service must exist (a real cluster)."""
    cluster_column = {"name": "Cluster", "type": "string",
                      "jsonPath": ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']"}
    return [
        _crd("KubeadmConfig", "kubeadmconfigs", SPEC, STATUS, [
            cluster_column,
            {"name": "Data secret created", "type": "string",
             "jsonPath": ".status.initialization.dataSecretCreated"}], serve_v1beta1),
        _crd("KubeadmConfigTemplate", "kubeadmconfigtemplates", TEMPLATE_SPEC, None, [],
             serve_v1beta1),
    ]
