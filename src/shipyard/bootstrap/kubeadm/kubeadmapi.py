"""kubeadm's own configuration documents, built from a KubeadmConfig's spec.

Why: KubeadmConfig v1beta2 speaks Cluster API's dialect of kubeadm's API (`extraArgs` as
`[{name, value}]`, `*Seconds` integers, no `kubernetesVersion`/`networking`/`clusterName`,
which come from the Machine and Cluster). kubeadm reads its own `kubeadm.k8s.io` documents,
and which version it understands depends on the Kubernetes version, so, as upstream's
`bootstrap/kubeadm/types` does, we pick `kubeadm.k8s.io/v1beta4` from Kubernetes 1.31 and
`v1beta3` from 1.22 (older versions are refused), and convert:

- v1beta4: `extraArgs` lists are kept; `timeouts.<x>Seconds: N` → `timeouts.<x>: "Ns"`;
  `bootstrapTokens[].ttlSeconds` → `ttl`; `certificateValidityPeriodDays` and
  `caCertificateValidityPeriodDays` → `certificateValidityPeriod`/`caCertificateValidityPeriod`
  in hours.
- v1beta3: `extraArgs` lists become maps; fields v1beta3 lacks (`extraEnvs`, `timeouts`,
  `imagePullSerial`, validity periods, `encryptionAlgorithm`) are dropped, except
  `controlPlaneComponentHealthCheckSeconds` → `apiServer.timeoutForControlPlane` and
  `discoverySeconds` → `discovery.timeout`.

Every function is pure and returns plain dicts; `marshal` gives YAML with sorted keys (as Go's
JSON-then-YAML marshalling does).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

KUBEADM_GROUP = "kubeadm.k8s.io"
V1BETA3 = f"{KUBEADM_GROUP}/v1beta3"
V1BETA4 = f"{KUBEADM_GROUP}/v1beta4"

_COMPONENTS = ("apiServer", "controllerManager", "scheduler")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


class UnsupportedKubernetesVersion(ValueError):
    """The Kubernetes version is older than any kubeadm API this provider writes."""


def parse_version(version: str) -> tuple[int, int, int]:
    m = _VERSION.match(version.strip())
    if m is None:
        raise UnsupportedKubernetesVersion(f"invalid Kubernetes version {version!r}")
    return int(m[1]), int(m[2]), int(m[3] or 0)


def kubeadm_api_version(kubernetes_version: str) -> str:
    """`kubeadm.k8s.io/v1beta4` for >= 1.31, `v1beta3` for >= 1.22."""
    parsed = parse_version(kubernetes_version)
    if parsed >= (1, 31, 0):
        return V1BETA4
    if parsed >= (1, 22, 0):
        return V1BETA3
    raise UnsupportedKubernetesVersion(
        f"Kubernetes version {kubernetes_version} is not supported: kubeadm API v1beta3 "
        "needs >= v1.22.0")


def _args_to_map(args: Any) -> dict[str, str]:
    if isinstance(args, dict):
        return {str(k): str(v) for k, v in args.items()}
    return {str(a["name"]): str(a.get("value", "")) for a in args or []}


def _convert_args(node: dict[str, Any], key: str, api_version: str) -> None:
    if key in node and api_version == V1BETA3:
        node[key] = _args_to_map(node[key])


def _seconds(value: Any) -> str:
    return f"{int(value)}s"


def _timeouts_v1beta4(timeouts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in timeouts.items():
        if key.endswith("Seconds"):
            out[key[: -len("Seconds")]] = _seconds(value)
        else:
            out[key] = value
    return out


def _node_registration(nr: dict[str, Any], api_version: str) -> dict[str, Any]:
    nr = dict(nr)
    _convert_args(nr, "kubeletExtraArgs", api_version)
    if api_version == V1BETA3:
        nr.pop("imagePullSerial", None)
    return nr


def _bootstrap_tokens(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for token in tokens:
        token = dict(token)
        if "ttlSeconds" in token:
            token["ttl"] = _seconds(token.pop("ttlSeconds"))
        out.append(token)
    return out


def cluster_configuration(
    spec: dict[str, Any] | None, *, kubernetes_version: str, cluster_name: str,
    control_plane_endpoint: str = "", cluster_network: dict[str, Any] | None = None,
    init_timeouts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """kubeadm's ClusterConfiguration. `control_plane_endpoint` ("host:port", from the
    Cluster) applies unless the spec sets one; `cluster_network` is the Cluster's
    `spec.clusterNetwork` (→ `networking`)."""
    api_version = kubeadm_api_version(kubernetes_version)
    doc: dict[str, Any] = copy.deepcopy(spec or {})
    for component in _COMPONENTS:
        node = doc.get(component)
        if isinstance(node, dict):
            _convert_args(node, "extraArgs", api_version)
            if api_version == V1BETA3:
                node.pop("extraEnvs", None)
    local = (doc.get("etcd") or {}).get("local")
    if isinstance(local, dict):
        _convert_args(local, "extraArgs", api_version)
        if api_version == V1BETA3:
            local.pop("extraEnvs", None)
    days = doc.pop("certificateValidityPeriodDays", None)
    ca_days = doc.pop("caCertificateValidityPeriodDays", None)
    if api_version == V1BETA4:
        if days:
            doc["certificateValidityPeriod"] = f"{int(days) * 24}h0m0s"
        if ca_days:
            doc["caCertificateValidityPeriod"] = f"{int(ca_days) * 24}h0m0s"
    else:
        doc.pop("encryptionAlgorithm", None)
        health = (init_timeouts or {}).get("controlPlaneComponentHealthCheckSeconds")
        if health is not None:
            doc.setdefault("apiServer", {})["timeoutForControlPlane"] = _seconds(health)
    if control_plane_endpoint and not doc.get("controlPlaneEndpoint"):
        doc["controlPlaneEndpoint"] = control_plane_endpoint
    network = cluster_network or {}
    networking: dict[str, Any] = {}
    if (network.get("services") or {}).get("cidrBlocks"):
        networking["serviceSubnet"] = ",".join(network["services"]["cidrBlocks"])
    if (network.get("pods") or {}).get("cidrBlocks"):
        networking["podSubnet"] = ",".join(network["pods"]["cidrBlocks"])
    if network.get("serviceDomain"):
        networking["dnsDomain"] = network["serviceDomain"]
    if networking:
        doc["networking"] = networking
    doc["clusterName"] = cluster_name
    doc["kubernetesVersion"] = kubernetes_version
    doc["apiVersion"] = api_version
    doc["kind"] = "ClusterConfiguration"
    return doc


def init_configuration(spec: dict[str, Any] | None, *, kubernetes_version: str) -> dict[str, Any]:
    api_version = kubeadm_api_version(kubernetes_version)
    doc: dict[str, Any] = copy.deepcopy(spec or {})
    if "nodeRegistration" in doc:
        doc["nodeRegistration"] = _node_registration(doc["nodeRegistration"], api_version)
    if "bootstrapTokens" in doc:
        doc["bootstrapTokens"] = _bootstrap_tokens(doc["bootstrapTokens"])
    timeouts = doc.pop("timeouts", None)
    if timeouts and api_version == V1BETA4:
        doc["timeouts"] = _timeouts_v1beta4(timeouts)
    doc["apiVersion"] = api_version
    doc["kind"] = "InitConfiguration"
    return doc


def join_configuration(spec: dict[str, Any] | None, *, kubernetes_version: str) -> dict[str, Any]:
    api_version = kubeadm_api_version(kubernetes_version)
    doc: dict[str, Any] = copy.deepcopy(spec or {})
    if "nodeRegistration" in doc:
        doc["nodeRegistration"] = _node_registration(doc["nodeRegistration"], api_version)
    timeouts = doc.pop("timeouts", None)
    if timeouts and api_version == V1BETA4:
        doc["timeouts"] = _timeouts_v1beta4(timeouts)
    elif timeouts and timeouts.get("discoverySeconds") is not None:
        doc.setdefault("discovery", {})["timeout"] = _seconds(timeouts["discoverySeconds"])
    doc["apiVersion"] = api_version
    doc["kind"] = "JoinConfiguration"
    return doc


def marshal(doc: dict[str, Any]) -> str:
    return str(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False))
