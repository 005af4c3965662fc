"""The in-memory provider's API: InMemoryCluster, InMemoryMachine and their templates in
`infrastructure.cluster.x-k8s.io/v1beta1`, as CRD manifests (plain dicts).

They follow the v1beta1 InfraCluster/InfraMachine contract, and the CRDs carry the label
`cluster.x-k8s.io/v1beta1: v1beta1` that Cluster API reads to resolve a reference's version:

- InMemoryCluster: `spec.controlPlaneEndpoint{host,port}` (filled by the provider with its
  simulated API server), `status.ready` and `status.initialization.provisioned` (both written),
  `status.failureDomains` (v1beta1 map shape), `status.conditions` (Ready).
- InMemoryMachine: `spec.providerID` (`inmemory://<namespace>/<cluster>/<machine>`),
  `spec.failureDomain`, `spec.bootDelaySeconds` (ours: how long "booting" takes; the provider's
  default otherwise), `status.ready`, `status.initialization.provisioned`, `status.addresses`,
  `status.conditions`.
- The templates wrap the same specs in `spec.template.spec`, for MachineSets and ClusterClass.
"""

from __future__ import annotations

from typing import Any, Final

from shipyard.api.providers import provider_crd
from shipyard.client.interfaces import GVK

GROUP: Final = "infrastructure.cluster.x-k8s.io"
VERSION: Final = "v1beta1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CLUSTER: Final = GVK(API_VERSION, "InMemoryCluster")
MACHINE: Final = GVK(API_VERSION, "InMemoryMachine")
CLUSTER_TEMPLATE: Final = GVK(API_VERSION, "InMemoryClusterTemplate")
MACHINE_TEMPLATE: Final = GVK(API_VERSION, "InMemoryMachineTemplate")

CLUSTER_FINALIZER: Final = "inmemorycluster.infrastructure.cluster.x-k8s.io"
MACHINE_FINALIZER: Final = "inmemorymachine.infrastructure.cluster.x-k8s.io"
PROVIDER_ID_PREFIX: Final = "inmemory://"

_STR: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_ENDPOINT: dict[str, Any] = {"type": "object", "properties": {
    "host": _STR, "port": {"type": "integer", "format": "int32"}}}
_CONDITIONS: dict[str, Any] = {"type": "array", "items": {
    "type": "object", "required": ["type", "status"],
    "properties": {"type": _STR, "status": _STR, "reason": _STR, "message": _STR,
                   "severity": _STR,
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
    "ready": _BOOL, "initialization": _INITIALIZATION, "conditions": _CONDITIONS,
    "failureDomains": {"type": "object", "additionalProperties": {
        "type": "object", "properties": {
            "controlPlane": _BOOL,
            "attributes": {"type": "object", "additionalProperties": _STR}}}},
}}
MACHINE_SPEC: dict[str, Any] = {"type": "object", "properties": {
    "providerID": _STR, "failureDomain": _STR,
    "bootDelaySeconds": {"type": "number", "minimum": 0},
}}
MACHINE_STATUS: dict[str, Any] = {"type": "object", "properties": {
    "ready": _BOOL, "initialization": _INITIALIZATION, "conditions": _CONDITIONS,
    "addresses": {"type": "array", "items": {"type": "object", "required": ["type", "address"],
                                             "properties": {"type": _STR, "address": _STR}}},
    "failureReason": _STR, "failureMessage": _STR,
}}


def _crd(kind: str, spec: dict[str, Any], status: dict[str, Any] | None,
         categories: list[str]) -> dict[str, Any]:
    return provider_crd(group=GROUP, version=VERSION, kind=kind,
                        provider="infrastructure-inmemory", spec=spec, status=status,
                        categories=tuple(categories))


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
        _crd("InMemoryCluster", CLUSTER_SPEC, CLUSTER_STATUS, ["cluster-api"]),
        _crd("InMemoryMachine", MACHINE_SPEC, MACHINE_STATUS, ["cluster-api"]),
        _crd("InMemoryClusterTemplate", _template(CLUSTER_SPEC), None, ["cluster-api"]),
        _crd("InMemoryMachineTemplate", _template(MACHINE_SPEC), None, ["cluster-api"]),
    ]


def provider_id(namespace: str, cluster: str, machine: str) -> str:
    return f"{PROVIDER_ID_PREFIX}{namespace}/{cluster}/{machine}"
