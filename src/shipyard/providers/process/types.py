"""The process provider's API: ProcessCluster, ProcessMachine and their templates in
`infrastructure.cluster.x-k8s.io/v1beta2`, following Cluster API's v1beta2 provider contract.

Why: the default provider of Shipyard's main command must create real machines with nothing but
Python packages installed. A process machine is a directory (its root filesystem), a loopback
address and a process tree running the node agent (`shipyard node run`).

Fields (plain dict CRD schemas; the CRDs carry `cluster.x-k8s.io/v1beta2: v1beta2`, the label
Cluster API reads to resolve a contract reference's version):
- ProcessCluster: `spec.controlPlaneEndpoint{host,port}` (filled by the provider with its TCP
  load balancer on 127.0.0.1 in front of the control-plane machines; a port set by the user is
  kept), `status.initialization.provisioned`, `status.conditions` (Ready),
  `status.failureDomains` (v1beta2 list of `{name, controlPlane}`, from `spec.failureDomains`).
- ProcessMachine: `spec.providerID` (`process://<cluster>/<machine>`), `spec.failureDomain`,
  `status.initialization.provisioned`, `status.addresses` (InternalIP = the machine's loopback
  address, Hostname, InternalDNS), `status.conditions` (Ready; `BootstrapSucceeded` with the
  reason the node agent reported).
- The templates wrap the same specs in `spec.template.spec`.
"""

from __future__ import annotations

from typing import Any, Final

from shipyard.api.providers import provider_crd
from shipyard.client.interfaces import GVK

GROUP: Final = "infrastructure.cluster.x-k8s.io"
VERSION: Final = "v1beta2"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CLUSTER: Final = GVK(API_VERSION, "ProcessCluster")
MACHINE: Final = GVK(API_VERSION, "ProcessMachine")
CLUSTER_TEMPLATE: Final = GVK(API_VERSION, "ProcessClusterTemplate")
MACHINE_TEMPLATE: Final = GVK(API_VERSION, "ProcessMachineTemplate")

CLUSTER_FINALIZER: Final = "processcluster.infrastructure.cluster.x-k8s.io"
MACHINE_FINALIZER: Final = "processmachine.infrastructure.cluster.x-k8s.io"
PROVIDER_ID_PREFIX: Final = "process://"
BOOTSTRAP_SUCCEEDED_CONDITION: Final = "BootstrapSucceeded"

_STR: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_ENDPOINT: dict[str, Any] = {"type": "object", "properties": {
    "host": _STR, "port": {"type": "integer", "format": "int32"}}}
_CONDITIONS: dict[str, Any] = {"type": "array", "items": {
    "type": "object", "required": ["type", "status"],
    "properties": {"type": _STR, "status": _STR, "reason": _STR, "message": _STR,
                   "lastTransitionTime": {"type": "string", "format": "date-time"},
                   "observedGeneration": {"type": "integer", "format": "int64"}}},
    "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
_INITIALIZATION: dict[str, Any] = {"type": "object", "properties": {"provisioned": _BOOL}}

CLUSTER_SPEC: dict[str, Any] = {"type": "object", "properties": {
    "controlPlaneEndpoint": _ENDPOINT,
    "failureDomains": {"type": "array", "items": _STR,
                       "description": "Names of the failure domains to report (default none)."},
}}
CLUSTER_STATUS: dict[str, Any] = {"type": "object", "properties": {
    "initialization": _INITIALIZATION, "conditions": _CONDITIONS,
    "failureDomains": {"type": "array", "items": {
        "type": "object", "required": ["name"], "properties": {
            "name": _STR, "controlPlane": _BOOL,
            "attributes": {"type": "object", "additionalProperties": _STR}}},
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
}}
MACHINE_SPEC: dict[str, Any] = {"type": "object", "properties": {
    "providerID": _STR, "failureDomain": _STR,
}}
MACHINE_STATUS: dict[str, Any] = {"type": "object", "properties": {
    "initialization": _INITIALIZATION, "conditions": _CONDITIONS,
    "addresses": {"type": "array", "items": {"type": "object", "required": ["type", "address"],
                                             "properties": {"type": _STR, "address": _STR}}},
}}


def _crd(kind: str, spec: dict[str, Any], status: dict[str, Any] | None) -> dict[str, Any]:
    crd = provider_crd(group=GROUP, version=VERSION, kind=kind,
                       provider="infrastructure-process", spec=spec, status=status)
    labels = crd["metadata"]["labels"]
    labels.pop("cluster.x-k8s.io/v1beta1", None)
    labels["cluster.x-k8s.io/v1beta2"] = VERSION
    return crd


def _template(spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["template"], "properties": {"template": {
        "type": "object", "required": ["spec"], "properties": {
            "metadata": {"type": "object", "properties": {
                "labels": {"type": "object", "additionalProperties": _STR},
                "annotations": {"type": "object", "additionalProperties": _STR}}},
            "spec": spec}}}}


def crd_manifests() -> list[dict[str, Any]]:
    """The four CRDs of the provider, ready to create on any API server."""
    return [
        _crd("ProcessCluster", CLUSTER_SPEC, CLUSTER_STATUS),
        _crd("ProcessMachine", MACHINE_SPEC, MACHINE_STATUS),
        _crd("ProcessClusterTemplate", _template(CLUSTER_SPEC), None),
        _crd("ProcessMachineTemplate", _template(MACHINE_SPEC), None),
    ]


def provider_id(cluster: str, machine: str) -> str:
    return f"{PROVIDER_ID_PREFIX}{cluster}/{machine}"
