"""KubeadmConfig and KubeadmConfigTemplate between `bootstrap.cluster.x-k8s.io` v1beta1 and
v1beta2 (upstream's `api/bootstrap/kubeadm/v1beta1/conversion.go`, as data moves).

Why: manifests written for Cluster API before v1.11 use v1beta1; v1beta2 is stored. A
`Converter` here is what Shipyard's API server calls in process for the group (and what a
conversion webhook would run on a real cluster).

Moves going up (the reverse going down):
- `extraArgs` maps (apiServer, controllerManager, scheduler, etcd.local, and
  `nodeRegistration.kubeletExtraArgs`) → `[{name, value}]` lists, sorted by name;
- `clusterConfiguration.apiServer.timeoutForControlPlane` → `initConfiguration.timeouts.
  controlPlaneComponentHealthCheckSeconds` (and `joinConfiguration`'s when it exists);
  `joinConfiguration.discovery.timeout` → `joinConfiguration.timeouts.tlsBootstrapSeconds`;
  `bootstrapTokens[].ttl` → `ttlSeconds` (Durations → seconds);
- v1beta1-only fields (`clusterConfiguration.kubernetesVersion`, `clusterName`, `networking`,
  `useExperimentalRetryJoin`) have no v1beta2 home;
- status: `ready` → `initialization.dataSecretCreated`; v1beta1 `conditions`, `failureReason`,
  `failureMessage` → `deprecated.v1beta1.*`; `v1beta2.conditions` → `conditions`.
Whatever a conversion cannot carry is kept, as upstream does, in the annotation
`cluster.x-k8s.io/conversion-data` (the source body as JSON) and restored when the object comes
back unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

from shipyard.api.core.conversion import ConversionError, convert_keeping_data
from shipyard.api.core.durations import format_seconds, parse_seconds

from .types import GROUP

V1BETA1 = f"{GROUP}/v1beta1"
V1BETA2 = f"{GROUP}/v1beta2"
KINDS = ("KubeadmConfig", "KubeadmConfigTemplate")
_COMPONENTS = ("apiServer", "controllerManager", "scheduler")
JSON = dict[str, Any]


def _args_up(args: Any) -> Any:
    if isinstance(args, dict):
        return [{"name": k, "value": v} for k, v in sorted(args.items())]
    return args


def _args_down(args: Any) -> Any:
    if isinstance(args, list):
        return {str(a["name"]): str(a.get("value", "")) for a in args}
    return args


def _node(obj: JSON, *path: str) -> JSON | None:
    for key in path:
        nxt = obj.get(key)
        if not isinstance(nxt, dict):
            return None
        obj = nxt
    return obj


def _convert_args(spec: JSON, fn: Any) -> None:
    for comp in _COMPONENTS:
        node = _node(spec, "clusterConfiguration", comp)
        if node is not None and "extraArgs" in node:
            node["extraArgs"] = fn(node["extraArgs"])
    local = _node(spec, "clusterConfiguration", "etcd", "local")
    if local is not None and "extraArgs" in local:
        local["extraArgs"] = fn(local["extraArgs"])
    for conf in ("initConfiguration", "joinConfiguration"):
        registration = _node(spec, conf, "nodeRegistration")
        if registration is not None and "kubeletExtraArgs" in registration:
            registration["kubeletExtraArgs"] = fn(registration["kubeletExtraArgs"])


def _prune_empty(node: JSON, key: str) -> None:
    if key in node and node[key] == {}:
        del node[key]


def spec_up(spec: JSON) -> JSON:
    spec = copy.deepcopy(spec)
    _convert_args(spec, _args_up)
    spec.pop("useExperimentalRetryJoin", None)
    cc = spec.get("clusterConfiguration")
    if isinstance(cc, dict):
        for field in ("kubernetesVersion", "clusterName", "networking", "apiVersion", "kind"):
            cc.pop(field, None)
        api_server = cc.get("apiServer")
        if isinstance(api_server, dict) and "timeoutForControlPlane" in api_server:
            seconds = parse_seconds(str(api_server.pop("timeoutForControlPlane")))
            spec.setdefault("initConfiguration", {}).setdefault("timeouts", {})[
                "controlPlaneComponentHealthCheckSeconds"] = seconds
            if isinstance(spec.get("joinConfiguration"), dict):
                spec["joinConfiguration"].setdefault("timeouts", {})[
                    "controlPlaneComponentHealthCheckSeconds"] = seconds
            _prune_empty(cc, "apiServer")
    for conf in ("initConfiguration", "joinConfiguration"):
        node = spec.get(conf)
        if isinstance(node, dict):
            node.pop("apiVersion", None)
            node.pop("kind", None)
    init = spec.get("initConfiguration")
    if isinstance(init, dict):
        for token in init.get("bootstrapTokens") or []:
            if "ttl" in token:
                token["ttlSeconds"] = parse_seconds(str(token.pop("ttl")))
    discovery = _node(spec, "joinConfiguration", "discovery")
    if discovery is not None and "timeout" in discovery:
        spec["joinConfiguration"].setdefault("timeouts", {})["tlsBootstrapSeconds"] = \
            parse_seconds(str(discovery.pop("timeout")))
    return spec


def spec_down(spec: JSON) -> JSON:
    spec = copy.deepcopy(spec)
    _convert_args(spec, _args_down)
    health = None
    for conf in ("initConfiguration", "joinConfiguration"):
        node = spec.get(conf)
        if not isinstance(node, dict):
            continue
        timeouts = node.get("timeouts")
        if isinstance(timeouts, dict):
            value = timeouts.pop("controlPlaneComponentHealthCheckSeconds", None)
            health = value if health is None else health
            if conf == "joinConfiguration" and "tlsBootstrapSeconds" in timeouts:
                node.setdefault("discovery", {})["timeout"] = format_seconds(
                    int(timeouts.pop("tlsBootstrapSeconds")))
            _prune_empty(node, "timeouts")
    if health is not None:
        spec.setdefault("clusterConfiguration", {}).setdefault("apiServer", {})[
            "timeoutForControlPlane"] = format_seconds(int(health))
    init = spec.get("initConfiguration")
    if isinstance(init, dict):
        for token in init.get("bootstrapTokens") or []:
            if "ttlSeconds" in token:
                token["ttl"] = format_seconds(int(token.pop("ttlSeconds")))
    return spec


def status_up(status: JSON) -> JSON:
    status = copy.deepcopy(status)
    out: JSON = {}
    if "ready" in status:
        ready = status.pop("ready")
        if ready:
            out["initialization"] = {"dataSecretCreated": True}
    deprecated = {k: status.pop(k) for k in ("conditions", "failureReason", "failureMessage")
                  if k in status}
    if deprecated:
        out["deprecated"] = {"v1beta1": deprecated}
    v1beta2 = status.pop("v1beta2", None) or {}
    if "conditions" in v1beta2:
        out["conditions"] = v1beta2["conditions"]
    out.update(status)
    return out


def status_down(status: JSON) -> JSON:
    status = copy.deepcopy(status)
    out: JSON = {}
    initialization = status.pop("initialization", None) or {}
    if "dataSecretCreated" in initialization:
        out["ready"] = bool(initialization["dataSecretCreated"])
    conditions = status.pop("conditions", None)
    if conditions is not None:
        out["v1beta2"] = {"conditions": conditions}
    deprecated = ((status.pop("deprecated", None) or {}).get("v1beta1")) or {}
    out.update(deprecated)
    out.update(status)
    return out


def _body_convert(obj: JSON, up: bool) -> JSON:
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = V1BETA2 if up else V1BETA1
    spec_fn, status_fn = (spec_up, status_up) if up else (spec_down, status_down)
    if "spec" in obj:
        if obj.get("kind") == "KubeadmConfigTemplate":
            spec = copy.deepcopy(obj["spec"])
            template = spec.get("template")
            if isinstance(template, dict) and isinstance(template.get("spec"), dict):
                template["spec"] = spec_fn(template["spec"])
            out["spec"] = spec
        else:
            out["spec"] = spec_fn(obj["spec"])
    if "status" in obj:
        out["status"] = status_fn(obj["status"])
    return out


def convert(obj: JSON, to_version: str) -> JSON:
    """`obj` (v1beta1 or v1beta2) as `to_version` (`group/version`); a new dict."""
    kind = obj.get("kind")
    if kind not in KINDS:
        raise ConversionError(f"kind {kind!r} is not a kubeadm bootstrap kind")
    source_version = obj.get("apiVersion")
    if source_version not in (V1BETA1, V1BETA2) or to_version not in (V1BETA1, V1BETA2):
        raise ConversionError(f"cannot convert {kind} from {source_version!r} to {to_version!r}")
    if source_version == to_version:
        return copy.deepcopy(obj)
    return convert_keeping_data(obj, to_version, to_version == V1BETA2, _body_convert)


class KubeadmConverter:
    """The `shipyard.api.converting.Converter` for `bootstrap.cluster.x-k8s.io`."""

    def convert(self, obj: dict[str, Any], to_version: str) -> dict[str, Any]:
        return convert(obj, to_version)
