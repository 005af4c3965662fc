"""InMemoryBootstrapConfig and its template in `bootstrap.cluster.x-k8s.io/v1beta1`.

A deliberately distinct kind (not a KubeadmConfig look-alike) so it never collides with the
kubeadm bootstrap provider's CRD. It follows the v1beta1 BootstrapConfig contract:
`status.dataSecretName`, `status.ready` and `status.initialization.dataSecretCreated`, a Ready
condition; the CRD carries `cluster.x-k8s.io/v1beta1: v1beta1`. Its spec is tiny:
`files[]{path, content, permissions}` and `commands[]`, rendered into a cloud-config document.
"""

from __future__ import annotations

from typing import Any, Final

from shipyard.api.providers import provider_crd
from shipyard.client.interfaces import GVK

GROUP: Final = "bootstrap.cluster.x-k8s.io"
VERSION: Final = "v1beta1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CONFIG: Final = GVK(API_VERSION, "InMemoryBootstrapConfig")
CONFIG_TEMPLATE: Final = GVK(API_VERSION, "InMemoryBootstrapConfigTemplate")

_STR: dict[str, Any] = {"type": "string"}
SPEC: dict[str, Any] = {"type": "object", "properties": {
    "files": {"type": "array", "items": {"type": "object", "required": ["path", "content"],
                                         "properties": {"path": _STR, "content": _STR,
                                                        "permissions": _STR}}},
    "commands": {"type": "array", "items": _STR},
}}
STATUS: dict[str, Any] = {"type": "object", "properties": {
    "ready": {"type": "boolean"}, "dataSecretName": _STR,
    "initialization": {"type": "object", "properties": {"dataSecretCreated": {"type": "boolean"}}},
    "conditions": {"type": "array", "items": {
        "type": "object", "required": ["type", "status"],
        "properties": {"type": _STR, "status": _STR, "reason": _STR, "message": _STR,
                       "lastTransitionTime": {"type": "string", "format": "date-time"},
                       "observedGeneration": {"type": "integer", "format": "int64"}}},
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
}}


def _crd(kind: str, spec: dict[str, Any], status: dict[str, Any] | None) -> dict[str, Any]:
    return provider_crd(group=GROUP, version=VERSION, kind=kind, provider="bootstrap-inmemory",
                        spec=spec, status=status)


def crd_manifests() -> list[dict[str, Any]]:
    template = {"type": "object", "required": ["template"], "properties": {"template": {
        "type": "object", "properties": {"spec": SPEC}}}}
    return [_crd("InMemoryBootstrapConfig", SPEC, STATUS),
            _crd("InMemoryBootstrapConfigTemplate", template, None)]
