"""KubeadmControlPlane and KubeadmControlPlaneTemplate between `controlplane.cluster.x-k8s.io`
v1beta1 and v1beta2 (upstream's `api/controlplane/kubeadm/v1beta1/conversion.go`, as data moves).

Why: manifests written for Cluster API before v1.11 (CAPD's quick-start among them) use v1beta1;
v1beta2 is stored. A `KubeadmControlPlaneConverter` is what Shipyard's API server calls in
process for the group, and what the conversion webhook runs on a real cluster.

Moves going up (the reverse going down); fields no move names are copied:
- `machineTemplate{metadata, infrastructureRef, readinessGates, taints, nodeDrainTimeout,
  nodeVolumeDetachTimeout, nodeDeletionTimeout}` → `machineTemplate{metadata, spec{
  infrastructureRef, readinessGates, taints, deletion{node*TimeoutSeconds}}}` (the template kind
  has neither reference nor readiness gates at v1beta1); the reference keeps `apiGroup`, `kind`,
  `name`; going down its `apiVersion` is what `resolve_api_version(group, kind)` says (upstream
  reads the referenced CRD; Shipyard's server answers with that CRD's storage version), or what
  the object's saved v1beta1 body said, and `namespace` is the object's;
- `rolloutBefore` / `rolloutAfter` / `rolloutStrategy` → `rollout.{before, after, strategy}`
  (an empty strategy type becomes `RollingUpdate`); `remediationStrategy{maxRetry, retryPeriod,
  minHealthyPeriod}` → `remediation{maxRetry, retryPeriodSeconds, minHealthyPeriodSeconds}`;
  `machineNamingStrategy` → `machineNaming`;
- `kubeadmConfigSpec`: the bootstrap provider's KubeadmConfigSpec conversion
  (`shipyard.bootstrap.kubeadm.conversion.spec_up` / `spec_down`);
- status: `initialized: true` → `initialization.controlPlaneInitialized`; `ready` is dropped and,
  going down, rebuilt as upstream does (`deprecated.v1beta1.readyReplicas > 0`; `initialized`
  and `ready` are always written, as Go's non-omitempty booleans are); v1beta1 `conditions`,
  `failureReason`, `failureMessage`, `updatedReplicas`, `readyReplicas`, `unavailableReplicas`
  → `deprecated.v1beta1.*`; `v1beta2.{conditions, readyReplicas, availableReplicas,
  upToDateReplicas}` → top level; `lastRemediation.timestamp` → `lastRemediation.time`.

Whatever a conversion cannot carry is kept, as upstream does, in the annotation
`cluster.x-k8s.io/conversion-data` (the source body as JSON). The next conversion consumes it:
`spec` and `status` are each restored from it when they still convert to what the object holds,
so a status written meanwhile does not lose a v1beta1 client its spec as written.

Deviations from upstream, all on the lossless side: only fields present are converted (Go
writes zero values, e.g. `replicas: 0`, for unset v1beta1 counters), and upstream annotates only
objects going down while here whichever side loses something is annotated.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from shipyard.api.core.constants import CONVERSION_DATA_ANNOTATION
from shipyard.api.core.conversion import ConversionError, VersionResolver
from shipyard.api.core.durations import format_seconds, parse_seconds
from shipyard.bootstrap.kubeadm import conversion as bootstrap

from .types import API_VERSION, GROUP

JSON = dict[str, Any]
V1BETA1 = f"{GROUP}/v1beta1"
V1BETA2 = API_VERSION
KINDS = ("KubeadmControlPlane", "KubeadmControlPlaneTemplate")
_TIMEOUTS = (("nodeDrainTimeout", "nodeDrainTimeoutSeconds"),
             ("nodeVolumeDetachTimeout", "nodeVolumeDetachTimeoutSeconds"),
             ("nodeDeletionTimeout", "nodeDeletionTimeoutSeconds"))
_REMEDIATION = (("maxRetry", "maxRetry", None, None),
                ("retryPeriod", "retryPeriodSeconds", parse_seconds, format_seconds),
                ("minHealthyPeriod", "minHealthyPeriodSeconds", parse_seconds, format_seconds))
_DEPRECATED = ("conditions", "failureReason", "failureMessage", "updatedReplicas",
               "readyReplicas", "unavailableReplicas")
_V1BETA2_STATUS = ("conditions", "readyReplicas", "availableReplicas", "upToDateReplicas")
_CAPI_GROUPS = ("cluster.x-k8s.io", "bootstrap.cluster.x-k8s.io", GROUP)


def _default_resolver(group: str, kind: str) -> str | None:
    return f"{group}/v1beta2" if group in _CAPI_GROUPS else None


class _Context:
    """What a conversion needs beyond the object: its namespace and, going down, how to name a
    referenced kind's version."""

    def __init__(self, namespace: str | None, resolve: VersionResolver) -> None:
        self.namespace = namespace
        self.resolve = resolve


# ------------------------------------------------------------------------------ machine template


def _ref_up(ref: Any) -> Any:
    if not isinstance(ref, dict):
        return ref
    out: JSON = {}
    api_version = ref.get("apiVersion")
    if isinstance(api_version, str):
        out["apiGroup"] = api_version.rpartition("/")[0]
    for key in ("kind", "name"):
        if key in ref:
            out[key] = ref[key]
    return out


def _ref_down(ref: Any, ctx: _Context) -> Any:
    if not isinstance(ref, dict):
        return ref
    out: JSON = {}
    group = ref.get("apiGroup")
    if isinstance(group, str):
        api_version = ctx.resolve(group, str(ref.get("kind", "")))
        if api_version is None:
            raise ConversionError(
                f"cannot resolve the version of {ref.get('kind')}.{group}: "
                "no contract version known for this group and kind")
        out["apiVersion"] = api_version
    if "kind" in ref:
        out["kind"] = ref["kind"]
    if ctx.namespace:
        out["namespace"] = ctx.namespace
    if "name" in ref:
        out["name"] = ref["name"]
    return out


def _machine_template_up(old: JSON, template: bool) -> JSON:
    out: JSON = {}
    spec: JSON = {}
    for key, value in old.items():
        if key in ("infrastructureRef", "readinessGates") and not template:
            spec[key] = _ref_up(value) if key == "infrastructureRef" else copy.deepcopy(value)
        elif key == "taints":
            spec[key] = copy.deepcopy(value)
        elif key not in {t[0] for t in _TIMEOUTS}:
            out[key] = copy.deepcopy(value)
    deletion = {new: parse_seconds(str(old[key])) for key, new in _TIMEOUTS if key in old}
    if deletion:
        spec["deletion"] = deletion
    if spec or not template:
        out["spec"] = spec
    return out


def _machine_template_down(new: JSON, template: bool, ctx: _Context) -> JSON:
    out = {k: copy.deepcopy(v) for k, v in new.items() if k != "spec"}
    spec = new.get("spec")
    if not isinstance(spec, dict):
        return out
    if not template and "infrastructureRef" in spec:
        out["infrastructureRef"] = _ref_down(spec["infrastructureRef"], ctx)
    if not template and "readinessGates" in spec:
        out["readinessGates"] = copy.deepcopy(spec["readinessGates"])
    deletion = spec.get("deletion")
    if isinstance(deletion, dict):
        for key, seconds in _TIMEOUTS:
            if seconds in deletion:
                out[key] = format_seconds(int(deletion[seconds]))
    if "taints" in spec:
        out["taints"] = copy.deepcopy(spec["taints"])
    return out


# ---------------------------------------------------------------------------------------- spec


def spec_up(spec: JSON, template: bool = False) -> JSON:
    """A v1beta1 KCP spec (or KCP template resource spec) in v1beta2's shape."""
    out: JSON = {}
    rollout: JSON = {}
    for key, value in spec.items():
        if key == "machineTemplate" and isinstance(value, dict):
            out[key] = _machine_template_up(value, template)
        elif key == "kubeadmConfigSpec" and isinstance(value, dict):
            out[key] = bootstrap.spec_up(value)
        elif key == "rolloutBefore" and isinstance(value, dict):
            if "certificatesExpiryDays" in value:
                rollout["before"] = {"certificatesExpiryDays": value["certificatesExpiryDays"]}
        elif key == "rolloutAfter":
            if value:
                rollout["after"] = value
        elif key == "rolloutStrategy" and isinstance(value, dict):
            strategy: JSON = {"type": value.get("type") or "RollingUpdate"}
            rolling = value.get("rollingUpdate")
            if isinstance(rolling, dict) and "maxSurge" in rolling:
                strategy["rollingUpdate"] = {"maxSurge": rolling["maxSurge"]}
            rollout["strategy"] = strategy
        elif key == "remediationStrategy" and isinstance(value, dict):
            out["remediation"] = {new: (up(str(value[old])) if up else value[old])
                                  for old, new, up, _ in _REMEDIATION if old in value}
        elif key == "machineNamingStrategy":
            out["machineNaming"] = copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    if rollout:
        out["rollout"] = rollout
    return out


def spec_down(spec: JSON, ctx: _Context, template: bool = False) -> JSON:
    """A v1beta2 KCP spec (or KCP template resource spec) in v1beta1's shape."""
    out: JSON = {}
    for key, value in spec.items():
        if key == "machineTemplate" and isinstance(value, dict):
            out[key] = _machine_template_down(value, template, ctx)
        elif key == "kubeadmConfigSpec" and isinstance(value, dict):
            out[key] = bootstrap.spec_down(value)
        elif key == "rollout" and isinstance(value, dict):
            before = value.get("before")
            if isinstance(before, dict) and before:
                out["rolloutBefore"] = copy.deepcopy(before)
            if value.get("after"):
                out["rolloutAfter"] = value["after"]
            strategy = value.get("strategy")
            if isinstance(strategy, dict) and strategy:
                old: JSON = {k: v for k, v in strategy.items() if k == "type"}
                rolling = strategy.get("rollingUpdate")
                if isinstance(rolling, dict) and "maxSurge" in rolling:
                    old["rollingUpdate"] = {"maxSurge": rolling["maxSurge"]}
                out["rolloutStrategy"] = old
        elif key == "remediation" and isinstance(value, dict):
            if value:
                out["remediationStrategy"] = {
                    old_key: (down(int(value[new])) if down else value[new])
                    for old_key, new, _, down in _REMEDIATION if new in value}
        elif key == "machineNaming" and isinstance(value, dict):
            if value.get("template"):
                out["machineNamingStrategy"] = copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# -------------------------------------------------------------------------------------- status


def status_up(status: JSON) -> JSON:
    out: JSON = {}
    deprecated: JSON = {}
    for key, value in status.items():
        if key == "initialized":
            if value:
                out["initialization"] = {"controlPlaneInitialized": True}
        elif key == "ready":
            continue
        elif key in _DEPRECATED:
            deprecated[key] = copy.deepcopy(value)
        elif key == "v1beta2" and isinstance(value, dict):
            out.update({k: copy.deepcopy(v) for k, v in value.items() if k in _V1BETA2_STATUS})
        elif key == "lastRemediation" and isinstance(value, dict):
            out[key] = {("time" if k == "timestamp" else k): v for k, v in value.items()}
        else:
            out[key] = copy.deepcopy(value)
    if deprecated:
        out["deprecated"] = {"v1beta1": deprecated}
    return out


def status_down(status: JSON) -> JSON:
    out: JSON = {}
    v1beta2: JSON = {}
    initialized = False
    for key, value in status.items():
        if key == "initialization" and isinstance(value, dict):
            initialized = bool(value.get("controlPlaneInitialized"))
        elif key in _V1BETA2_STATUS:
            v1beta2[key] = copy.deepcopy(value)
        elif key == "deprecated" and isinstance(value, dict):
            old = value.get("v1beta1")
            if isinstance(old, dict):
                out.update({k: copy.deepcopy(v) for k, v in old.items() if k in _DEPRECATED})
        elif key == "lastRemediation" and isinstance(value, dict):
            out[key] = {("timestamp" if k == "time" else k): v for k, v in value.items()}
        else:
            out[key] = copy.deepcopy(value)
    out["initialized"] = initialized
    ready = out.get("readyReplicas")
    out["ready"] = isinstance(ready, int) and ready > 0
    if v1beta2:
        out["v1beta2"] = v1beta2
    return out


# ------------------------------------------------------------------------------------- objects


def _section(kind: str, key: str, value: Any, up: bool, ctx: _Context) -> Any:
    if not isinstance(value, dict):
        return copy.deepcopy(value)
    if key == "status":
        return status_up(value) if up else status_down(value)
    if kind == "KubeadmControlPlane":
        return spec_up(value) if up else spec_down(value, ctx)
    spec = copy.deepcopy(value)
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        template["spec"] = (spec_up(template["spec"], template=True) if up
                            else spec_down(template["spec"], ctx, template=True))
    return spec


def _body_convert(obj: JSON, up: bool, ctx: _Context) -> JSON:
    """`obj` without its metadata, converted."""
    kind = str(obj.get("kind"))
    out: JSON = {}
    for key, value in obj.items():
        if key == "metadata":
            continue
        if key in ("spec", "status"):
            out[key] = _section(kind, key, value, up, ctx)
        else:
            out[key] = copy.deepcopy(value)
    out["apiVersion"] = V1BETA2 if up else V1BETA1
    return out


def _body(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k != "metadata"}


def _preferring(v1beta1_body: Any, fallback: VersionResolver) -> VersionResolver:
    """`fallback`, except for the kinds `v1beta1_body`'s references name with a version."""
    known: dict[tuple[str, str], str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            api_version, kind = node.get("apiVersion"), node.get("kind")
            if isinstance(api_version, str) and "/" in api_version and isinstance(kind, str):
                known[(api_version.rpartition("/")[0], kind)] = api_version
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk((v1beta1_body or {}).get("spec") if isinstance(v1beta1_body, dict) else None)

    def resolve(group: str, kind: str) -> str | None:
        return known.get((group, kind)) or fallback(group, kind)

    return resolve


def _pop_saved(source: JSON) -> JSON | None:
    metadata = source.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict) or CONVERSION_DATA_ANNOTATION not in annotations:
        return None
    raw = annotations.pop(CONVERSION_DATA_ANNOTATION)
    if not annotations:
        del source["metadata"]["annotations"]
    try:
        saved = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return saved if isinstance(saved, dict) else None


def convert(obj: JSON, to_version: str, *,
            resolve_api_version: VersionResolver | None = None) -> JSON:
    """`obj` (v1beta1 or v1beta2) as `to_version` (`group/version`); a new dict."""
    kind = obj.get("kind")
    if kind not in KINDS:
        raise ConversionError(f"kind {kind!r} is not a kubeadm control plane kind")
    source_version = obj.get("apiVersion")
    if source_version not in (V1BETA1, V1BETA2) or to_version not in (V1BETA1, V1BETA2):
        raise ConversionError(f"cannot convert {kind} from {source_version!r} to {to_version!r}")
    if source_version == to_version:
        return copy.deepcopy(obj)
    source = copy.deepcopy(obj)
    saved = _pop_saved(source)
    up = to_version == V1BETA2
    metadata = source.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    resolve = resolve_api_version or _default_resolver
    # Going down, references keep the version the saved v1beta1 body gave them; going up, the
    # saved v1beta2 body is checked against the source's own references.
    ctx = _Context(namespace, _preferring(saved if not up else source, resolve))
    try:
        target = _body_convert(source, up, ctx)
        if isinstance(saved, dict) and saved.get("apiVersion") == to_version:
            for key in ("spec", "status"):
                if key in saved and key in source and _section(
                        str(kind), key, saved[key], not up, ctx) == source[key]:
                    target[key] = copy.deepcopy(saved[key])
    except ConversionError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise ConversionError(f"cannot convert {kind}: {e}") from e
    try:
        check = _Context(namespace, resolve)
        lossless = _body_convert(target, not up, check) == _body(source)
    except (ConversionError, TypeError, ValueError, KeyError, AttributeError):
        lossless = False
    if "metadata" in source:
        target = {"apiVersion": target.pop("apiVersion"), "kind": target.pop("kind", kind),
                  "metadata": source["metadata"], **target}
    if not lossless:
        meta = target.setdefault("metadata", {})
        meta.setdefault("annotations", {})[CONVERSION_DATA_ANNOTATION] = json.dumps(
            _body(source), separators=(",", ":"), sort_keys=True)
    return target


class KubeadmControlPlaneConverter:
    """The `shipyard.api.converting.Converter` for `controlplane.cluster.x-k8s.io`.

    `resolve_api_version(group, kind)` names the version of a referenced kind when a v1beta2
    reference (which has only `apiGroup`) is served as v1beta1; Shipyard's API server sets it to
    its own resolver (`shipyard.cli.apiserver.new_api_server`). Unset, only Cluster API's own
    groups resolve (to v1beta2)."""

    def __init__(self, resolve_api_version: VersionResolver | None = None) -> None:
        self.resolve_api_version = resolve_api_version

    def convert(self, obj: dict[str, Any], to_version: str) -> dict[str, Any]:
        return convert(obj, to_version, resolve_api_version=self.resolve_api_version)

