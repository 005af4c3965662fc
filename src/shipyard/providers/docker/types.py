"""The Docker provider's API: DockerCluster, DockerMachine, DockerClusterTemplate and
DockerMachineTemplate in `infrastructure.cluster.x-k8s.io`, exactly as upstream's CAPD serves them
(`test/infrastructure/docker/api/v1beta{1,2}/*_types.go`, `config/crd/bases/...docker*.yaml`).

Why hand-written schemas with upstream's names: a manifest written for CAPD must work here
unchanged, at either version. v1beta2 is stored and served; v1beta1 (deprecated) is served too,
through Webhook conversion (`conversion.DockerConverter`, registered in process by Shipyard's API
server; on a real cluster the webhook service named below must exist). The CRDs carry
`cluster.x-k8s.io/v1beta1: v1beta1` and `cluster.x-k8s.io/v1beta2: v1beta2` (the contract labels
upstream's kustomization puts on them), `cluster.x-k8s.io/provider: infrastructure-docker`, the
category `cluster-api`, no short names, and upstream's printer columns.

Fields the controllers must honour (v1beta2 paths; upstream's meaning):
- DockerCluster `spec.controlPlaneEndpoint{host,port}`: filled by the controller with the
  load-balancer container's address (upstream: host port mapped to the LB's 6443); a value set by
  the user is kept. `spec.failureDomains[{name, controlPlane, attributes}]`: not a placement on a
  local engine; copied verbatim to `status.failureDomains` for Cluster API to spread machines
  (upstream also labels each container with its failure domain).
  `spec.loadBalancer{imageRepository, imageTag}`: the haproxy image, upstream default
  `kindest/haproxy:v20210715-a6da3463`; `spec.loadBalancer.customHAProxyConfigTemplateRef.name`:
  a ConfigMap in the namespace whose key `value` is a Go-template haproxy.cfg (variables
  `$IPv6`, `$FrontendControlPlanePort`, `$BackendControlPlanePort`, `$BackendServers`).
- DockerCluster status: `initialization.provisioned` (true once the LB is up and the endpoint
  set), `failureDomains`, `conditions` (Ready, LoadBalancerAvailable, Deleting, Paused),
  `deprecated.v1beta1.conditions` (v1beta1 shape, with `severity`).
- DockerMachine `spec.providerID`: `docker:////<container name>` (`provider_id`), set once the
  machine is bootstrapped; `spec.customImage`: the node image, empty means the controller's
  default, which on Shipyard is Shipyard's own node image (`image.py`), not upstream's
  `kindest/node:<version>`; `spec.preLoadImages`: images loaded into the machine's container
  runtime after creation; `spec.extraMounts[{containerPath, hostPath, readOnly}]`: bind mounts;
  `spec.bootstrapped` (deprecated): true once bootstrap ran, so it is not run again;
  `spec.bootstrapTimeout` (a Duration, default `3m`): how long bootstrap may take.
- DockerMachine status: `initialization.provisioned`, `loadBalancerConfigured` (a control-plane
  machine was added to the LB), `addresses[{type, address}]`, `conditions` (Ready,
  ContainerProvisioned, BootstrapExecSucceeded, Deleting, Paused),
  `deprecated.v1beta1.conditions`. Bootstrap success is the file `BOOTSTRAP_SUCCESS_FILE` in the
  container; the annotation `LOAD_BALANCER_WEIGHT_ANNOTATION` = "0" drains a deleting
  control-plane machine from the LB.
- The templates wrap the same specs in `spec.template.spec`, with `spec.template.metadata`
  (labels, annotations). DockerMachineTemplate has a status subresource with
  `status.capacity` (a ResourceList: cpu, memory, ...), which the autoscaler reads to scale a
  MachineDeployment from zero.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from shipyard.client.interfaces import GVK

GROUP: Final = "infrastructure.cluster.x-k8s.io"
VERSION: Final = "v1beta2"
V1BETA1: Final = "v1beta1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
API_VERSION_V1BETA1: Final = f"{GROUP}/{V1BETA1}"
PROVIDER: Final = "infrastructure-docker"
CLUSTER: Final = GVK(API_VERSION, "DockerCluster")
MACHINE: Final = GVK(API_VERSION, "DockerMachine")
CLUSTER_TEMPLATE: Final = GVK(API_VERSION, "DockerClusterTemplate")
MACHINE_TEMPLATE: Final = GVK(API_VERSION, "DockerMachineTemplate")
KINDS: Final = ("DockerCluster", "DockerMachine", "DockerClusterTemplate",
                "DockerMachineTemplate")

CLUSTER_FINALIZER: Final = "dockercluster.infrastructure.cluster.x-k8s.io"
MACHINE_FINALIZER: Final = "dockermachine.infrastructure.cluster.x-k8s.io"
PROVIDER_ID_PREFIX: Final = "docker:////"
LOAD_BALANCER_WEIGHT_ANNOTATION: Final = "dockermachine.infrastructure.cluster.x-k8s.io/weight"
BOOTSTRAP_SUCCESS_FILE: Final = "/run/cluster-api/bootstrap-success.complete"
DEFAULT_BOOTSTRAP_TIMEOUT_SECONDS: Final = 180

# v1beta2 conditions (status.conditions, metav1.Condition) and their reasons.
READY_CONDITION: Final = "Ready"
READY_REASON: Final = "Ready"
NOT_READY_REASON: Final = "NotReady"
READY_UNKNOWN_REASON: Final = "ReadyUnknown"
DELETING_CONDITION: Final = "Deleting"
DELETING_REASON: Final = "Deleting"
INTERNAL_ERROR_REASON: Final = "InternalError"
# DockerCluster
LOAD_BALANCER_AVAILABLE: Final = "LoadBalancerAvailable"
LOAD_BALANCER_AVAILABLE_REASON: Final = "Available"
LOAD_BALANCER_NOT_AVAILABLE_REASON: Final = "NotAvailable"
LOAD_BALANCER_DELETING_REASON: Final = "Deleting"
# DockerMachine
CONTAINER_PROVISIONED: Final = "ContainerProvisioned"
CONTAINER_WAITING_FOR_CLUSTER_INFRASTRUCTURE_READY_REASON: Final = (
    "WaitingForClusterInfrastructureReady")
CONTAINER_WAITING_FOR_CONTROL_PLANE_INITIALIZED_REASON: Final = "WaitingForControlPlaneInitialized"
CONTAINER_WAITING_FOR_BOOTSTRAP_DATA_REASON: Final = "WaitingForBootstrapData"
CONTAINER_PROVISIONED_REASON: Final = "Provisioned"
CONTAINER_NOT_PROVISIONED_REASON: Final = "NotProvisioned"
CONTAINER_DELETING_REASON: Final = "Deleting"
BOOTSTRAP_EXEC_SUCCEEDED: Final = "BootstrapExecSucceeded"
BOOTSTRAP_EXEC_SUCCEEDED_REASON: Final = "Succeeded"
BOOTSTRAP_EXEC_NOT_SUCCEEDED_REASON: Final = "NotSucceeded"

# v1beta1 conditions (status.deprecated.v1beta1.conditions, with severity): same types, and
# upstream's older reasons.
V1BETA1_WAITING_FOR_CLUSTER_INFRASTRUCTURE_REASON: Final = "WaitingForClusterInfrastructure"
V1BETA1_WAITING_FOR_BOOTSTRAP_DATA_REASON: Final = "WaitingForBootstrapData"
V1BETA1_CONTAINER_PROVISIONING_FAILED_REASON: Final = "ContainerProvisioningFailed"
V1BETA1_CONTAINER_DELETED_REASON: Final = "ContainerDeleted"
V1BETA1_BOOTSTRAPPING_REASON: Final = "Bootstrapping"
V1BETA1_BOOTSTRAP_FAILED_REASON: Final = "BootstrapFailed"
V1BETA1_LOAD_BALANCER_PROVISIONING_FAILED_REASON: Final = "LoadBalancerProvisioningFailed"

WEBHOOK_SERVICE: Final = {"namespace": "capd-system", "name": "capd-webhook-service",
                          "path": "/convert"}
"""Where upstream's CAPD serves conversion; Shipyard's own server converts in process."""


def provider_id(container_name: str) -> str:
    """CAPD's providerID for the machine running in container `container_name`."""
    return f"{PROVIDER_ID_PREFIX}{container_name}"


JSON = dict[str, Any]
_STR: JSON = {"type": "string"}
_BOOL: JSON = {"type": "boolean"}
_STRMAP: JSON = {"type": "object", "additionalProperties": _STR}


def _obj(properties: JSON, required: list[str] | None = None, **extra: Any) -> JSON:
    schema: JSON = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = required
    return schema


def _str(min_length: int | None = None, max_length: int | None = None) -> JSON:
    schema: JSON = {"type": "string"}
    if min_length is not None:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


# metav1.Condition: v1beta2's status.conditions and v1beta1's status.v1beta2.conditions.
CONDITIONS: Final[JSON] = {
    "type": "array", "maxItems": 32,
    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
    "items": _obj({
        "type": {"type": "string", "maxLength": 316, "pattern":
                 r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                 r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "reason": {"type": "string", "minLength": 1, "maxLength": 1024,
                   "pattern": r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
        "message": _str(max_length=32768),
    }, ["lastTransitionTime", "message", "reason", "status", "type"])}
# Cluster API's v1beta1 Condition: v1beta1's status.conditions, v1beta2's deprecated.v1beta1.
V1BETA1_CONDITIONS: Final[JSON] = {"type": "array", "items": _obj({
    "type": _str(1, 256), "status": _STR, "severity": _str(max_length=32),
    "lastTransitionTime": {"type": "string", "format": "date-time"},
    "reason": _str(1, 256), "message": _str(1, 10240),
}, ["lastTransitionTime", "status", "type"])}

_FAILURE_DOMAIN_SPEC: JSON = _obj({"controlPlane": _BOOL, "attributes": _STRMAP})
FAILURE_DOMAINS_V1BETA1: Final[JSON] = {"type": "object",
                                        "additionalProperties": _FAILURE_DOMAIN_SPEC}
FAILURE_DOMAINS: Final[JSON] = {
    "type": "array", "minItems": 1, "maxItems": 100,
    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
    "items": _obj({"name": _str(1, 256), "controlPlane": _BOOL, "attributes": _STRMAP},
                  ["name"])}

_ENDPOINT_V1BETA1: JSON = _obj({"host": _STR, "port": {"type": "integer"}}, ["host", "port"])
_ENDPOINT: JSON = _obj({"host": _str(1, 512), "port": {
    "type": "integer", "format": "int32", "minimum": 1, "maximum": 65535}}, minProperties=1)
_LOAD_BALANCER: JSON = _obj({
    "imageRepository": _STR, "imageTag": _STR,
    "customHAProxyConfigTemplateRef": {
        "type": "object", "x-kubernetes-map-type": "atomic",
        "properties": {"name": {"type": "string", "default": ""}}},
})


def cluster_spec(version: str) -> JSON:
    v1 = version == V1BETA1
    return _obj({
        "controlPlaneEndpoint": _ENDPOINT_V1BETA1 if v1 else _ENDPOINT,
        "failureDomains": FAILURE_DOMAINS_V1BETA1 if v1 else FAILURE_DOMAINS,
        "loadBalancer": _LOAD_BALANCER,
    })


def cluster_status(version: str) -> JSON:
    if version == V1BETA1:
        return _obj({"ready": _BOOL, "failureDomains": FAILURE_DOMAINS_V1BETA1,
                     "conditions": V1BETA1_CONDITIONS,
                     "v1beta2": _obj({"conditions": CONDITIONS})})
    return _obj({"conditions": CONDITIONS,
                 "initialization": _obj({"provisioned": _BOOL}, minProperties=1),
                 "failureDomains": FAILURE_DOMAINS,
                 "deprecated": _obj({"v1beta1": _obj({"conditions": V1BETA1_CONDITIONS})})})


MACHINE_SPEC: Final[JSON] = _obj({
    "providerID": _STR,
    "customImage": _STR,
    "preLoadImages": {"type": "array", "items": _STR},
    "extraMounts": {"type": "array", "items": _obj(
        {"containerPath": _STR, "hostPath": _STR, "readOnly": _BOOL})},
    "bootstrapped": _BOOL,
    "bootstrapTimeout": _STR,
})


def machine_spec(version: str) -> JSON:
    """The same fields at both versions; v1beta2 bounds `providerID`."""
    spec = copy.deepcopy(MACHINE_SPEC)
    if version != V1BETA1:
        spec["properties"]["providerID"] = _str(1, 512)
    return spec


def machine_status(version: str) -> JSON:
    if version == V1BETA1:
        addresses: JSON = {"type": "array", "items": _obj(
            {"type": _STR, "address": _STR}, ["address", "type"])}
        return _obj({"ready": _BOOL, "loadBalancerConfigured": _BOOL, "addresses": addresses,
                     "conditions": V1BETA1_CONDITIONS,
                     "v1beta2": _obj({"conditions": CONDITIONS})})
    addresses = {"type": "array", "items": _obj({
        "type": {"type": "string", "enum": ["Hostname", "ExternalIP", "InternalIP",
                                            "ExternalDNS", "InternalDNS"]},
        "address": _str(1, 256)}, ["address", "type"])}
    return _obj({"conditions": CONDITIONS,
                 "initialization": _obj({"provisioned": _BOOL}, minProperties=1),
                 "loadBalancerConfigured": _BOOL, "addresses": addresses,
                 "deprecated": _obj({"v1beta1": _obj({"conditions": V1BETA1_CONDITIONS})})})


# corev1.ResourceList: DockerMachineTemplate's status.capacity, for autoscaling from zero.
RESOURCE_LIST: Final[JSON] = {"type": "object", "additionalProperties": {
    "anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True,
    "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
               r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"}}
MACHINE_TEMPLATE_STATUS: Final[JSON] = _obj({"capacity": RESOURCE_LIST})


def template_spec(spec: JSON) -> JSON:
    return _obj({"template": _obj({
        "metadata": _obj({"labels": _STRMAP, "annotations": _STRMAP}),
        "spec": spec}, ["spec"])}, ["template"])


def _column(name: str, type_: str, path: str, description: str) -> JSON:
    return {"name": name, "type": type_, "jsonPath": path, "description": description}


_CLUSTER_COLUMN = _column("Cluster", "string",
                          ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']", "Cluster")


def _columns(kind: str, version: str) -> list[JSON]:
    columns: list[JSON] = []
    if kind == "DockerCluster":
        columns = [_CLUSTER_COLUMN]
    elif kind == "DockerMachine":
        ready = ".status.ready" if version == V1BETA1 else ".status.initialization.provisioned"
        columns = [_CLUSTER_COLUMN,
                   _column("Machine", "string",
                           '.metadata.ownerReferences[?(@.kind=="Machine")].name',
                           "Machine object which owns with this DockerMachine"),
                   _column("ProviderID", "string", ".spec.providerID", "Provider ID"),
                   _column("Ready", "string", ready, "Machine ready status")]
    return [*columns, _column("Age", "date", ".metadata.creationTimestamp",
                              f"Time duration since creation of {kind}")]


def _schemas(kind: str, version: str) -> tuple[JSON, JSON | None]:
    if kind == "DockerCluster":
        return cluster_spec(version), cluster_status(version)
    if kind == "DockerMachine":
        return machine_spec(version), machine_status(version)
    if kind == "DockerClusterTemplate":
        return template_spec(cluster_spec(version)), None
    return template_spec(machine_spec(version)), copy.deepcopy(MACHINE_TEMPLATE_STATUS)


def _version(kind: str, version: str) -> JSON:
    spec, status = _schemas(kind, version)
    properties: JSON = {"apiVersion": _STR, "kind": _STR, "metadata": {"type": "object"},
                        "spec": spec}
    served: JSON = {"name": version, "served": True, "storage": version == VERSION}
    if version == V1BETA1:
        served["deprecated"] = True
    if status is not None:
        properties["status"] = status
        served["subresources"] = {"status": {}}
    served["schema"] = {"openAPIV3Schema": {"type": "object", "properties": properties}}
    served["additionalPrinterColumns"] = _columns(kind, version)
    return served


def crd(kind: str) -> JSON:
    """One of the four CRDs, served at v1beta1 and v1beta2 (stored) with Webhook conversion."""
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not a Docker provider kind")
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {
            "cluster.x-k8s.io/v1beta1": V1BETA1, "cluster.x-k8s.io/v1beta2": VERSION,
            "cluster.x-k8s.io/provider": PROVIDER}},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                      "singular": kind.lower(), "categories": ["cluster-api"]},
            "versions": [_version(kind, V1BETA1), _version(kind, VERSION)],
            "conversion": {"strategy": "Webhook", "webhook": {
                "conversionReviewVersions": ["v1", "v1beta1"],
                "clientConfig": {"caBundle": "Cg==", "service": dict(WEBHOOK_SERVICE)}}},
        },
    }


def crd_manifests() -> list[dict[str, Any]]:
    """The four CRDs, ready to create on Shipyard's API server (which converts in process) or
    on a real cluster running CAPD's conversion webhook service."""
    return [crd(kind) for kind in KINDS]
