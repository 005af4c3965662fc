"""Conversion of core Cluster API objects between cluster.x-k8s.io v1beta1 and v1beta2.

Why: v1beta2 is stored; v1beta1 is still served. Every object read at v1beta1 is converted down,
every v1beta1 write is converted up, so a client that reads, edits and writes back at either
version must lose nothing.

How (on plain dicts, the way the API server holds objects):

* each kind has a list of *moves* ``(v1beta1 path, v1beta2 path, up, down)``, applied in order
  going up and in reverse going down; fields no move mentions (including unknown ones) stay put.
  The moves are upstream's renames: Durations -> ``*Seconds``, ``strategy``/``rolloutAfter`` ->
  ``rollout``, refs' ``apiVersion`` -> ``apiGroup``, MachineHealthCheck's ``maxUnhealthy`` /
  ``unhealthyRange`` / ``remediationTemplate`` -> ``remediation.triggerIf`` / ``templateRef``,
  ``nodeStartupTimeout`` -> ``checks.nodeStartupTimeoutSeconds``, v1beta1 conditions ->
  ``status.deprecated.v1beta1`` and ``status.v1beta2.*`` -> ``status.*``;
* whatever the target cannot hold is kept, as upstream does, in the annotation
  ``cluster.x-k8s.io/conversion-data``: the source object without its metadata, as JSON. It is
  written only when converting back would not give the source again. On the next conversion
  the annotation is consumed: if the object was not edited meanwhile, the saved source is
  restored exactly; if it was, only the fields that exist solely in the target version are
  taken from it.

Deviation from upstream: upstream annotates only v1beta1 objects (v1beta1-only fields such as
``revisionHistoryLimit`` are dropped on the way up); here a v1beta2 object keeps them in the same
annotation, so round trips are lossless in both directions. A reference loses its version going
up; going down, the version comes from ``resolve_api_version(group, kind)`` (upstream reads the
CRD's contract label the same way) or from the annotation.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.api.core import v1beta1, v1beta2
from shipyard.api.core.constants import CONVERSION_DATA_ANNOTATION
from shipyard.api.core.durations import format_seconds, parse_seconds

__all__ = [
    "ConversionError",
    "VersionResolver",
    "convert",
    "convert_keeping_data",
    "to_v1beta1",
    "to_v1beta2",
]

JSON = dict[str, Any]
VersionResolver = Callable[[str, str], "str | None"]
"""``(group, kind) -> "group/version"`` for a referenced kind, or None when unknown."""

_CAPI_GROUPS = ("bootstrap.cluster.x-k8s.io", "controlplane.cluster.x-k8s.io",
                "cluster.x-k8s.io", "addons.cluster.x-k8s.io")


class ConversionError(ValueError):
    """An object cannot be converted (unknown kind or version, or an unresolvable reference)."""


def convert_keeping_data(obj: JSON, to_version: str, up: bool,
                         body_convert: Callable[[JSON, bool], JSON]) -> JSON:
    """Upstream's lossless conversion for a provider's kinds: `body_convert(obj, up)` maps
    everything but metadata between the versions; what the target cannot hold travels in the
    `cluster.x-k8s.io/conversion-data` annotation (the source body, when the round trip would
    lose something), and an annotation saved by an earlier conversion is restored when it still
    round-trips to the source. A new dict; `ConversionError` when the body does not convert."""
    source = copy.deepcopy(obj)
    metadata = source.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    raw = None
    if isinstance(annotations, dict):
        raw = annotations.pop(CONVERSION_DATA_ANNOTATION, None)
        if not annotations:
            del source["metadata"]["annotations"]
    try:
        saved = json.loads(raw) if isinstance(raw, str) and raw else None
    except ValueError:
        saved = None
    try:
        target: JSON | None = None
        if isinstance(saved, dict) and saved.get("apiVersion") == to_version and \
                _body(body_convert(saved, not up)) == _body(source):
            target = {**copy.deepcopy(saved),
                      "metadata": copy.deepcopy(source.get("metadata") or {})}
        if target is None:
            target = body_convert(source, up)
        lossless = _body(body_convert(target, not up)) == _body(source)
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise ConversionError(f"cannot convert {obj.get('kind')}: {e}") from e
    if not lossless:
        meta = target.setdefault("metadata", {})
        meta.setdefault("annotations", {})[CONVERSION_DATA_ANNOTATION] = json.dumps(
            _body(source), separators=(",", ":"), sort_keys=True)
    return target


@dataclass
class _Context:
    namespace: str | None
    resolve: VersionResolver
    direction: str  # "up" | "down"


Fn = Callable[[Any, _Context], Any]
Move = tuple[str, str, Fn | None, Fn | None]


def _default_resolver(group: str, kind: str) -> str | None:
    return f"{group}/v1beta2" if group in _CAPI_GROUPS else None


# ------------------------------------------------------------------------------ value converters


def _ref_up(ref: Any, _: _Context) -> Any:
    if not isinstance(ref, dict):
        return ref
    out = {k: v for k, v in ref.items()
           if k not in ("apiVersion", "namespace", "uid", "resourceVersion", "fieldPath")}
    api_version = ref.get("apiVersion")
    if isinstance(api_version, str):
        out["apiGroup"] = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return out


def _ref_down(ref: Any, ctx: _Context) -> Any:
    if not isinstance(ref, dict):
        return ref
    out = {k: v for k, v in ref.items() if k != "apiGroup"}
    group = ref.get("apiGroup")
    if isinstance(group, str):
        api_version = ctx.resolve(group, str(ref.get("kind", "")))
        if api_version is None:
            raise ConversionError(
                f"cannot resolve the version of {ref.get('kind')}.{group}: "
                "no contract version known for this group and kind")
        out = {"apiVersion": api_version, **out}
    if ctx.namespace:
        out["namespace"] = ctx.namespace
    return out


def _template_ref_down(ref: Any, ctx: _Context) -> Any:
    if isinstance(ref, dict) and ctx.namespace:
        return {**ref, "namespace": ctx.namespace}
    return ref


def _template_ref_up(ref: Any, _: _Context) -> Any:
    if isinstance(ref, dict):
        return {k: v for k, v in ref.items()
                if k not in ("namespace", "uid", "resourceVersion", "fieldPath")}
    return ref


def _seconds(value: Any, _: _Context) -> Any:
    return parse_seconds(value) if isinstance(value, str) else value


def _duration(value: Any, _: _Context) -> Any:
    return format_seconds(value) if isinstance(value, int) else value


def _node_ref_up(ref: Any, _: _Context) -> Any:
    if isinstance(ref, dict):
        return {k: v for k, v in ref.items()
                if k not in ("apiVersion", "kind", "namespace", "uid", "resourceVersion",
                             "fieldPath")}
    return ref


def _node_ref_down(ref: Any, _: _Context) -> Any:
    if isinstance(ref, dict):
        return {"apiVersion": "v1", "kind": "Node", **ref}
    return ref


def _failure_domains_up(domains: Any, _: _Context) -> Any:
    if not isinstance(domains, dict):
        return domains
    return [{"name": name, **(spec if isinstance(spec, dict) else {})}
            for name, spec in sorted(domains.items())]


def _failure_domains_down(domains: Any, _: _Context) -> Any:
    if not isinstance(domains, list):
        return domains
    return {d["name"]: {k: v for k, v in d.items() if k != "name"}
            for d in domains if isinstance(d, dict) and "name" in d}


def _unhealthy_up(conditions: Any, ctx: _Context) -> Any:
    if not isinstance(conditions, list):
        return conditions
    out = []
    for c in conditions:
        if isinstance(c, dict) and "timeout" in c:
            c = {**{k: v for k, v in c.items() if k != "timeout"},
                 "timeoutSeconds": _seconds(c["timeout"], ctx)}
        out.append(c)
    return out


def _unhealthy_down(conditions: Any, ctx: _Context) -> Any:
    if not isinstance(conditions, list):
        return conditions
    out = []
    for c in conditions:
        if isinstance(c, dict) and "timeoutSeconds" in c:
            c = {**{k: v for k, v in c.items() if k != "timeoutSeconds"},
                 "timeout": _duration(c["timeoutSeconds"], ctx)}
        out.append(c)
    return out


# ------------------------------------------------------------------------------ path plumbing


def _split(path: str) -> list[str]:
    return path.split(".") if path else []


def _pop(obj: JSON, path: str) -> tuple[bool, Any]:
    """Remove the value at ``path``; parents left empty by the removal are removed too."""
    keys = _split(path)
    chain: list[JSON] = [obj]
    for key in keys[:-1]:
        nxt = chain[-1].get(key)
        if not isinstance(nxt, dict):
            return False, None
        chain.append(nxt)
    if keys[-1] not in chain[-1]:
        return False, None
    value = chain[-1].pop(keys[-1])
    for depth in range(len(chain) - 1, 0, -1):
        if chain[depth]:
            break
        del chain[depth - 1][keys[depth - 1]]
    return True, value


def _put(obj: JSON, path: str, value: Any) -> None:
    keys = _split(path)
    node = obj
    for key in keys[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            node[key] = nxt
        node = nxt
    node[keys[-1]] = value


def _get(obj: JSON, path: str) -> tuple[bool, Any]:
    node: Any = obj
    for key in _split(path):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _apply(obj: JSON, moves: Sequence[Move], ctx: _Context) -> None:
    ordered = moves if ctx.direction == "up" else list(reversed(moves))
    for v1_path, v2_path, up, down in ordered:
        src, dst, fn = ((v1_path, v2_path, up) if ctx.direction == "up"
                        else (v2_path, v1_path, down))
        found, value = _pop(obj, src)
        if found:
            value = fn(value, ctx) if fn is not None else value
            if value != []:  # Go's omitempty: an empty list is not written
                _put(obj, dst, value)


# ------------------------------------------------------------------------------ per-kind moves


def _machine_spec_moves(prefix: str) -> list[Move]:
    p = prefix
    return [
        (f"{p}.bootstrap.configRef", f"{p}.bootstrap.configRef", _ref_up, _ref_down),
        (f"{p}.infrastructureRef", f"{p}.infrastructureRef", _ref_up, _ref_down),
        (f"{p}.nodeDrainTimeout", f"{p}.deletion.nodeDrainTimeoutSeconds", _seconds, _duration),
        (f"{p}.nodeVolumeDetachTimeout", f"{p}.deletion.nodeVolumeDetachTimeoutSeconds",
         _seconds, _duration),
        (f"{p}.nodeDeletionTimeout", f"{p}.deletion.nodeDeletionTimeoutSeconds",
         _seconds, _duration),
    ]


def _deprecated(fields: Sequence[str]) -> list[Move]:
    return [(f"status.{f}", f"status.deprecated.v1beta1.{f}", None, None) for f in fields]


def _promoted(fields: Sequence[str]) -> list[Move]:
    return [(f"status.v1beta2.{f}", f"status.{f}", None, None) for f in fields]


_MOVES: dict[str, list[Move]] = {
    "Cluster": [
        ("spec.controlPlaneRef", "spec.controlPlaneRef", _ref_up, _ref_down),
        ("spec.infrastructureRef", "spec.infrastructureRef", _ref_up, _ref_down),
        ("spec.topology.class", "spec.topology.classRef.name", None, None),
        ("spec.topology.classNamespace", "spec.topology.classRef.namespace", None, None),
        ("status.failureDomains", "status.failureDomains", _failure_domains_up,
         _failure_domains_down),
        *_deprecated(["conditions", "failureReason", "failureMessage"]),
        ("status.infrastructureReady", "status.initialization.infrastructureProvisioned",
         None, None),
        ("status.controlPlaneReady", "status.initialization.controlPlaneInitialized",
         None, None),
        *_promoted(["conditions", "controlPlane", "workers"]),
    ],
    "Machine": [
        *_machine_spec_moves("spec"),
        ("status.nodeRef", "status.nodeRef", _node_ref_up, _node_ref_down),
        *_deprecated(["conditions", "failureReason", "failureMessage"]),
        ("status.bootstrapReady", "status.initialization.bootstrapDataSecretCreated",
         None, None),
        ("status.infrastructureReady", "status.initialization.infrastructureProvisioned",
         None, None),
        *_promoted(["conditions"]),
    ],
    "MachineSet": [
        *_machine_spec_moves("spec.template.spec"),
        ("spec.minReadySeconds", "spec.template.spec.minReadySeconds", None, None),
        ("spec.deletePolicy", "spec.deletion.order", None, None),
        ("spec.machineNamingStrategy", "spec.machineNaming", None, None),
        *_deprecated(["conditions", "failureReason", "failureMessage", "fullyLabeledReplicas",
                      "readyReplicas", "availableReplicas"]),
        *_promoted(["conditions", "readyReplicas", "availableReplicas", "upToDateReplicas"]),
    ],
    "MachineDeployment": [
        *_machine_spec_moves("spec.template.spec"),
        ("spec.minReadySeconds", "spec.template.spec.minReadySeconds", None, None),
        ("spec.rolloutAfter", "spec.rollout.after", None, None),
        ("spec.strategy.type", "spec.rollout.strategy.type", None, None),
        ("spec.strategy.rollingUpdate.maxUnavailable",
         "spec.rollout.strategy.rollingUpdate.maxUnavailable", None, None),
        ("spec.strategy.rollingUpdate.maxSurge",
         "spec.rollout.strategy.rollingUpdate.maxSurge", None, None),
        ("spec.strategy.rollingUpdate.deletePolicy", "spec.deletion.order", None, None),
        ("spec.strategy.remediation", "spec.remediation", None, None),
        ("spec.machineNamingStrategy", "spec.machineNaming", None, None),
        *_deprecated(["conditions", "updatedReplicas", "readyReplicas", "availableReplicas",
                      "unavailableReplicas"]),
        *_promoted(["conditions", "readyReplicas", "availableReplicas", "upToDateReplicas"]),
    ],
    "MachineHealthCheck": [
        ("spec.unhealthyConditions", "spec.checks.unhealthyNodeConditions",
         _unhealthy_up, _unhealthy_down),
        ("spec.nodeStartupTimeout", "spec.checks.nodeStartupTimeoutSeconds",
         _seconds, _duration),
        ("spec.maxUnhealthy", "spec.remediation.triggerIf.unhealthyLessThanOrEqualTo",
         None, None),
        ("spec.unhealthyRange", "spec.remediation.triggerIf.unhealthyInRange", None, None),
        ("spec.remediationTemplate", "spec.remediation.templateRef",
         _template_ref_up, _template_ref_down),
        *_deprecated(["conditions"]),
        *_promoted(["conditions"]),
    ],
}

# Fields only one version has: taken from the annotation when the object was edited meanwhile.
_ONLY_IN: dict[str, dict[str, tuple[str, ...]]] = {
    v1beta2.VERSION: {
        "Machine": ("spec.minReadySeconds", "spec.taints"),
        "MachineSet": ("spec.template.spec.taints",),
        "MachineDeployment": ("spec.template.spec.taints",),
        "MachineHealthCheck": ("spec.checks.unhealthyMachineConditions",),
        "Cluster": (),
    },
    v1beta1.VERSION: {
        "MachineDeployment": ("spec.revisionHistoryLimit", "spec.progressDeadlineSeconds"),
        "Cluster": ("spec.topology.rolloutAfter",),
        "Machine": (), "MachineSet": (), "MachineHealthCheck": (),
    },
}

KINDS = tuple(_MOVES)


# ------------------------------------------------------------------------------ entry points


def _raw(obj: JSON, to_version: str, ctx: _Context) -> JSON:
    out = copy.deepcopy(obj)
    out["apiVersion"] = f"{v1beta2.GROUP}/{to_version}"
    _apply(out, _MOVES[obj["kind"]], ctx)
    source_version = v1beta1.VERSION if ctx.direction == "up" else v1beta2.VERSION
    for path in _ONLY_IN[source_version][obj["kind"]]:
        _pop(out, path)
    return out


def _body(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k != "metadata"}


def _pop_annotation(obj: JSON) -> tuple[JSON, JSON | None]:
    obj = copy.deepcopy(obj)
    annotations = (obj.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict) or CONVERSION_DATA_ANNOTATION not in annotations:
        return obj, None
    raw = annotations.pop(CONVERSION_DATA_ANNOTATION)
    if not annotations:
        del obj["metadata"]["annotations"]
    try:
        saved = json.loads(raw)
    except ValueError:
        return obj, None
    return obj, saved if isinstance(saved, dict) else None


def convert(obj: JSON, to_version: str, *,
            resolve_api_version: VersionResolver | None = None) -> JSON:
    """Convert a core Cluster API object (v1beta1 or v1beta2) to ``to_version``; a new dict."""
    kind = obj.get("kind")
    if kind not in _MOVES:
        raise ConversionError(f"kind {kind!r} is not a core Cluster API kind")
    api_version = obj.get("apiVersion", "")
    group, _, from_version = str(api_version).rpartition("/")
    versions = (v1beta1.VERSION, v1beta2.VERSION)
    if group != v1beta2.GROUP or from_version not in versions or to_version not in versions:
        raise ConversionError(
            f"cannot convert {kind} from {api_version!r} to {v1beta2.GROUP}/{to_version}")
    source, saved = _pop_annotation(obj)
    if from_version == to_version:
        return copy.deepcopy(obj)
    namespace = (source.get("metadata") or {}).get("namespace")
    resolve = resolve_api_version or _default_resolver
    up = to_version == v1beta2.VERSION
    # Going down, versions of references come from what a v1beta1 body once said, if anything.
    down_resolve = _resolver_from(saved if (saved is not None and not up) else _body(source),
                                  resolve)
    ctx = _Context(namespace, down_resolve, "up" if up else "down")
    back = _Context(namespace, down_resolve, "down" if up else "up")

    target: JSON | None = None
    if saved is not None:
        try:
            restorable = _raw(saved, from_version, back) == _body(source)
        except (ConversionError, KeyError, TypeError, ValueError):
            restorable = False
        if restorable:
            target = {**copy.deepcopy(saved), "apiVersion": f"{v1beta2.GROUP}/{to_version}"}
            if "metadata" in source:
                target["metadata"] = source["metadata"]
    if target is None:
        try:
            target = _raw(source, to_version, ctx)
        except (TypeError, ValueError) as err:
            if isinstance(err, ConversionError):
                raise
            raise ConversionError(f"cannot convert {kind}: {err}") from err
        if saved is not None:
            for path in _ONLY_IN[to_version][kind]:
                found, value = _get(saved, path)
                if found:
                    _put(target, path, copy.deepcopy(value))
    try:
        check = _Context(namespace, resolve, back.direction)
        lossless = _raw(target, from_version, check) == source
    except ConversionError:
        lossless = False
    if not lossless:
        annotations = target.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[CONVERSION_DATA_ANNOTATION] = json.dumps(
            _body(source), separators=(",", ":"), sort_keys=True)
    return target


def _resolver_from(v1_body: JSON, fallback: VersionResolver) -> VersionResolver:
    """A resolver that prefers the group/version pairs a saved v1beta1 body referenced."""
    known: dict[tuple[str, str], str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            api_version, kind = node.get("apiVersion"), node.get("kind")
            if isinstance(api_version, str) and isinstance(kind, str) and "/" in api_version:
                known[(api_version.rsplit("/", 1)[0], kind)] = api_version
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(v1_body)

    def resolve(group: str, kind: str) -> str | None:
        return known.get((group, kind)) or fallback(group, kind)

    return resolve


def to_v1beta2(obj: JSON, **kw: Any) -> JSON:
    return convert(obj, v1beta2.VERSION, **kw)


def to_v1beta1(obj: JSON, **kw: Any) -> JSON:
    return convert(obj, v1beta1.VERSION, **kw)
