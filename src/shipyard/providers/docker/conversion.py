"""DockerCluster, DockerMachine and their templates between `infrastructure.cluster.x-k8s.io`
v1beta1 and v1beta2 (upstream's `test/infrastructure/docker/api/v1beta1/conversion.go`, as data
moves).

Why: CAPD manifests written before Cluster API v1.11 use v1beta1; v1beta2 is stored. A
`DockerConverter` is what Shipyard's API server calls in process for the group (and what a
conversion webhook would run on a real cluster). The group also holds single-version kinds
(ProcessCluster, InMemoryCluster, ...): those pass through unchanged at their own version, and
asking to change their version is a `ConversionError` naming the kind.

Moves going up (the reverse going down); everything else (controlPlaneEndpoint, loadBalancer with
its inline imageRepository/imageTag, the whole DockerMachine spec, loadBalancerConfigured,
addresses, the templates' metadata and DockerMachineTemplate's status.capacity, unknown fields)
is the same at both versions and is copied:
- `spec.failureDomains` and `status.failureDomains`: a map `name → {controlPlane, attributes}`
  → a list of `{name, controlPlane, attributes}` sorted by name;
- `spec.controlPlaneEndpoint` `{host: "", port: 0}` (Go's unset v1beta1 endpoint) → absent;
- `status.ready` → `status.initialization.provisioned`;
- `status.conditions` (v1beta1 shape, with severity) → `status.deprecated.v1beta1.conditions`;
  `status.v1beta2.conditions` → `status.conditions`.
Whatever a conversion cannot carry (e.g. an unsorted failure-domain list, an empty
`deprecated: {}`) is kept, as upstream does, in the annotation `cluster.x-k8s.io/conversion-data`
(the source body as JSON) and restored when the object comes back unchanged.

Deviations from upstream's Go conversion, all on the lossless side: `controlPlane` is copied only
when present (Go writes `controlPlane: false` going up and drops it going down), and
`ready: false` becomes `provisioned: false` (Go drops it).
"""

from __future__ import annotations

import copy
from typing import Any

from shipyard.api.core.conversion import ConversionError, convert_keeping_data

from .types import API_VERSION, API_VERSION_V1BETA1, GROUP, KINDS

JSON = dict[str, Any]
V1BETA1 = API_VERSION_V1BETA1
V1BETA2 = API_VERSION
_TEMPLATES = {"DockerClusterTemplate": "DockerCluster", "DockerMachineTemplate": "DockerMachine"}


def _domains_up(domains: Any) -> Any:
    if not isinstance(domains, dict):
        return domains
    return [{"name": name, **(spec if isinstance(spec, dict) else {})}
            for name, spec in sorted(domains.items())]


def _domains_down(domains: Any) -> Any:
    if not isinstance(domains, list):
        return domains
    out: JSON = {}
    for domain in domains:
        rest = dict(domain)
        out[str(rest.pop("name"))] = rest
    return out


def _zero_endpoint(endpoint: Any) -> bool:
    """`{host: "", port: 0}`, what Go clients write for an unset v1beta1 endpoint (its fields
    have no omitempty); v1beta2 omits the zero value."""
    return isinstance(endpoint, dict) and set(endpoint) <= {"host", "port"} and \
        endpoint.get("host", "") == "" and endpoint.get("port", 0) == 0


def spec_up(kind: str, spec: JSON) -> JSON:
    spec = copy.deepcopy(spec)
    if kind == "DockerCluster":
        if "failureDomains" in spec:
            spec["failureDomains"] = _domains_up(spec["failureDomains"])
        if _zero_endpoint(spec.get("controlPlaneEndpoint")):
            del spec["controlPlaneEndpoint"]
    return spec


def spec_down(kind: str, spec: JSON) -> JSON:
    spec = copy.deepcopy(spec)
    if kind == "DockerCluster" and "failureDomains" in spec:
        spec["failureDomains"] = _domains_down(spec["failureDomains"])
    return spec


def status_up(kind: str, status: JSON) -> JSON:
    status = copy.deepcopy(status)
    out: JSON = {}
    if "ready" in status:
        out["initialization"] = {"provisioned": status.pop("ready")}
    if "failureDomains" in status:
        out["failureDomains"] = _domains_up(status.pop("failureDomains"))
    if "conditions" in status:
        out["deprecated"] = {"v1beta1": {"conditions": status.pop("conditions")}}
    v1beta2 = status.pop("v1beta2", None)
    if isinstance(v1beta2, dict) and "conditions" in v1beta2:
        out["conditions"] = v1beta2["conditions"]
    out.update(status)
    return out


def status_down(kind: str, status: JSON) -> JSON:
    status = copy.deepcopy(status)
    out: JSON = {}
    initialization = status.pop("initialization", None)
    if isinstance(initialization, dict) and "provisioned" in initialization:
        out["ready"] = initialization["provisioned"]
    if "failureDomains" in status:
        out["failureDomains"] = _domains_down(status.pop("failureDomains"))
    deprecated = status.pop("deprecated", None)
    v1beta1 = deprecated.get("v1beta1") if isinstance(deprecated, dict) else None
    if isinstance(v1beta1, dict) and "conditions" in v1beta1:
        out["conditions"] = v1beta1["conditions"]
    if "conditions" in status:
        out["v1beta2"] = {"conditions": status.pop("conditions")}
    out.update(status)
    return out


def _body_convert(obj: JSON, up: bool) -> JSON:
    kind = str(obj.get("kind"))
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = V1BETA2 if up else V1BETA1
    spec_fn, status_fn = (spec_up, status_up) if up else (spec_down, status_down)
    if isinstance(obj.get("spec"), dict):
        if kind in _TEMPLATES:
            spec = copy.deepcopy(obj["spec"])
            template = spec.get("template")
            if isinstance(template, dict) and isinstance(template.get("spec"), dict):
                template["spec"] = spec_fn(_TEMPLATES[kind], template["spec"])
            out["spec"] = spec
        else:
            out["spec"] = spec_fn(kind, obj["spec"])
    elif "spec" in obj:
        out["spec"] = copy.deepcopy(obj["spec"])
    if isinstance(obj.get("status"), dict) and kind not in _TEMPLATES:
        out["status"] = status_fn(kind, obj["status"])
    elif "status" in obj:
        out["status"] = copy.deepcopy(obj["status"])
    return out


def convert(obj: JSON, to_version: str) -> JSON:
    """`obj` (v1beta1 or v1beta2) as `to_version` (`group/version`); a new dict."""
    kind = obj.get("kind")
    source_version = obj.get("apiVersion")
    if kind not in KINDS:
        if source_version == to_version:
            return copy.deepcopy(obj)
        raise ConversionError(f"kind {kind!r} of {GROUP} has a single version: cannot convert "
                              f"it from {source_version!r} to {to_version!r}")
    if source_version not in (V1BETA1, V1BETA2) or to_version not in (V1BETA1, V1BETA2):
        raise ConversionError(f"cannot convert {kind} from {source_version!r} to {to_version!r}")
    if source_version == to_version:
        return copy.deepcopy(obj)
    return convert_keeping_data(obj, to_version, to_version == V1BETA2, _body_convert)


class DockerConverter:
    """The `shipyard.api.converting.Converter` for `infrastructure.cluster.x-k8s.io`."""

    def convert(self, obj: dict[str, Any], to_version: str) -> dict[str, Any]:
        return convert(obj, to_version)
