"""KubeadmControlPlane and KubeadmControlPlaneTemplate in `controlplane.cluster.x-k8s.io/v1beta2`.

Why hand-written schemas: field names, defaults, printer columns and the scale subresource must
be upstream's (`api/controlplane/kubeadm/v1beta2/kubeadm_control_plane_types.go`) so that a
manifest written for upstream's KCP applies unchanged. `kubeadmConfigSpec` reuses the bootstrap
provider's KubeadmConfig spec schema; only `clusterConfiguration.etcd` gets its two known
members (`local`, `external`) typed, so an admission rule can ask whether etcd is external.

Admission: upstream's validating webhook (`internal/webhooks/kubeadmcontrolplane.go`) checks
become CEL rules with upstream's field paths, messages and error types, so Shipyard's server and
kube-apiserver refuse the same manifests without a webhook:
- `spec.replicas`: Forbidden "cannot be less than or equal to 0" (also through `/scale`);
  Forbidden "cannot be an even number when etcd is stacked" unless
  `kubeadmConfigSpec.clusterConfiguration.etcd.external` is set; defaults to 1 (upstream's
  defaulting webhook).
- `spec.version`: "must be a valid semantic version".
- `spec.rollout.strategy.rollingUpdate.maxSurge`: Required "value must be 1 or 0"; with maxSurge
  0, `spec.rollout.strategy.rollingUpdate`: Required "when KubeadmControlPlane is configured to
  scale-in, replica count needs to be at least 3".
Not expressed (needs the old object's semantics or other objects): the one-minor-version upgrade
limit, the immutable-field allow list, CoreDNS migration checks.

Versions: v1beta2 is stored. `crd_manifests()` also serves v1beta1 (deprecated, upstream's
older shape and printer columns, the CRDs then labelled `cluster.x-k8s.io/v1beta1: v1beta1`)
through Webhook conversion, `conversion.KubeadmControlPlaneConverter`, which Shipyard's server
runs in process. The v1beta1 schema carries the same admission rules at v1beta1's paths (so a
refused maxSurge names `spec.rolloutStrategy.rollingUpdate.maxSurge`, where upstream's webhook,
judging the converted object, names the v1beta2 path) and upstream's v1beta1 default
`rolloutStrategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1}}`.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from shipyard.api.core import rules
from shipyard.bootstrap.kubeadm import types as bootstrap
from shipyard.client.interfaces import GVK

GROUP: Final = "controlplane.cluster.x-k8s.io"
VERSION: Final = "v1beta2"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CONTROL_PLANE: Final = GVK(API_VERSION, "KubeadmControlPlane")
CONTROL_PLANE_TEMPLATE: Final = GVK(API_VERSION, "KubeadmControlPlaneTemplate")
PROVIDER: Final = "control-plane-kubeadm"

FINALIZER: Final = "kubeadm.controlplane.cluster.x-k8s.io"
REMEDIATION_IN_PROGRESS_ANNOTATION: Final = "controlplane.cluster.x-k8s.io/remediation-in-progress"
REMEDIATION_FOR_ANNOTATION: Final = "controlplane.cluster.x-k8s.io/remediation-for"
PRE_TERMINATE_HOOK_CLEANUP_ANNOTATION: Final = (
    "pre-terminate.delete.hook.machine.cluster.x-k8s.io/kcp-cleanup")
DEFAULT_MIN_HEALTHY_PERIOD_SECONDS: Final = 3600

# Conditions and reasons (upstream's v1beta2 names).
INITIALIZED_CONDITION: Final = "Initialized"
INITIALIZED_REASON: Final = "Initialized"
NOT_INITIALIZED_REASON: Final = "NotInitialized"
CERTIFICATES_AVAILABLE_CONDITION: Final = "CertificatesAvailable"
ETCD_CLUSTER_HEALTHY_CONDITION: Final = "EtcdClusterHealthy"
HEALTHY_REASON: Final = "Healthy"
NOT_HEALTHY_REASON: Final = "NotHealthy"
HEALTH_UNKNOWN_REASON: Final = "HealthUnknown"
CONNECTION_DOWN_REASON: Final = "ConnectionDown"
ETCD_MEMBER_HEALTHY_CONDITION: Final = "EtcdMemberHealthy"
CANNOT_BE_REMEDIATED_REASON: Final = "CannotBeRemediated"
REMEDIATION_DEFERRED_REASON: Final = "RemediationDeferred"
MACHINE_DELETING_REASON: Final = "MachineDeleting"
WAITING_FOR_REPLICAS_SET_REASON: Final = "WaitingForReplicasSet"
NO_REPLICAS_REASON: Final = "NoReplicas"
DELETING_CONDITION: Final = "Deleting"
WAITING_FOR_MACHINE_DELETION_REASON: Final = "WaitingForMachineDeletion"
WAITING_FOR_WORKERS_DELETION_REASON: Final = "WaitingForWorkersDeletion"

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer", "format": "int32"}
_STR_MAP: dict[str, Any] = {"type": "object", "additionalProperties": _STR}
_OPEN: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _obj(properties: dict[str, Any], required: list[str] | None = None,
         **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def _kubeadm_config_spec() -> dict[str, Any]:
    spec = copy.deepcopy(bootstrap.SPEC)
    cc = spec["properties"]["clusterConfiguration"]
    etcd = _obj({"local": _OPEN, "external": _OPEN})
    etcd["x-kubernetes-preserve-unknown-fields"] = True
    cc["properties"]["etcd"] = etcd
    return spec


_METADATA = _obj({"labels": _STR_MAP, "annotations": _STR_MAP})
_REF = _obj({"apiGroup": _STR, "kind": _STR, "name": _STR}, ["apiGroup", "kind", "name"])
_DELETION = _obj({f: {**_INT, "minimum": 0} for f in (
    "nodeDrainTimeoutSeconds", "nodeVolumeDetachTimeoutSeconds", "nodeDeletionTimeoutSeconds")})
_READINESS_GATES = {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["conditionType"],
                    "items": _obj({"conditionType": _STR, "polarity": _STR}, ["conditionType"])}
_TAINTS = {"type": "array", "items": _obj({"key": _STR, "value": _STR, "effect": _STR,
                                           "propagation": _STR}, ["key", "effect"])}
_MAX_SURGE = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"},
                                                            {"type": "string"}]}
ROLLOUT = _obj({
    "before": _obj({"certificatesExpiryDays": {**_INT, "minimum": 7}}),
    "after": {"type": "string", "format": "date-time"},
    "strategy": _obj({
        "type": {"type": "string", "enum": ["RollingUpdate"]},
        "rollingUpdate": _obj({"maxSurge": _MAX_SURGE}),
    }),
})
REMEDIATION = _obj({"maxRetry": _INT, "retryPeriodSeconds": {**_INT, "minimum": 0},
                    "minHealthyPeriodSeconds": {**_INT, "minimum": 0}})
MACHINE_NAMING = _obj({"template": {"type": "string", "minLength": 1, "maxLength": 256}})

_EXTERNAL_ETCD = ("has(self.kubeadmConfigSpec) && has(self.kubeadmConfigSpec.clusterConfiguration)"
                  " && has(self.kubeadmConfigSpec.clusterConfiguration.etcd)"
                  " && has(self.kubeadmConfigSpec.clusterConfiguration.etcd.external)")
_MAX_SURGE_SET = ("has(self.rollout) && has(self.rollout.strategy)"
                  " && has(self.rollout.strategy.rollingUpdate)"
                  " && has(self.rollout.strategy.rollingUpdate.maxSurge)")
_SURGE = "self.rollout.strategy.rollingUpdate.maxSurge"
SPEC_RULES: Final = [
    rules.rule("!has(self.replicas) || self.replicas > 0", "cannot be less than or equal to 0",
               field_path=".replicas", reason="FieldValueForbidden"),
    rules.rule(f"!has(self.replicas) || self.replicas % 2 != 0 || ({_EXTERNAL_ETCD})",
               "cannot be an even number when etcd is stacked", field_path=".replicas",
               reason="FieldValueForbidden"),
    rules.rule(f"!({_MAX_SURGE_SET}) || string({_SURGE}) == '0' || string({_SURGE}) == '1'",
               "value must be 1 or 0", field_path=".rollout.strategy.rollingUpdate.maxSurge",
               reason="FieldValueRequired"),
    rules.rule(f"!({_MAX_SURGE_SET}) || string({_SURGE}) != '0' || !has(self.replicas)"
               " || self.replicas >= 3",
               "when KubeadmControlPlane is configured to scale-in, replica count needs to be "
               "at least 3", field_path=".rollout.strategy.rollingUpdate",
               reason="FieldValueRequired"),
]

SPEC = _obj({
    "replicas": {**_INT, "default": 1},
    "version": {"type": "string", "minLength": 1, "maxLength": 256,
                **rules.validations(rules.SEMVER)},
    "machineTemplate": _obj({
        "metadata": _METADATA,
        "spec": _obj({"infrastructureRef": _REF, "readinessGates": _READINESS_GATES,
                      "deletion": _DELETION, "taints": _TAINTS}, ["infrastructureRef"]),
    }, ["spec"]),
    "kubeadmConfigSpec": _kubeadm_config_spec(),
    "rollout": ROLLOUT,
    "remediation": REMEDIATION,
    "machineNaming": MACHINE_NAMING,
}, ["version", "machineTemplate"], **rules.validations(*SPEC_RULES))

_CONDITIONS = bootstrap.STATUS["properties"]["conditions"]
_COUNT = {"type": "integer", "format": "int32"}
STATUS = _obj({
    "conditions": _CONDITIONS,
    "initialization": _obj({"controlPlaneInitialized": {"type": "boolean"}}),
    "selector": _STR,
    "replicas": _COUNT, "readyReplicas": _COUNT, "availableReplicas": _COUNT,
    "upToDateReplicas": _COUNT,
    "versions": {"type": "array", "x-kubernetes-list-type": "map",
                 "x-kubernetes-list-map-keys": ["version"],
                 "items": _obj({"version": _STR, "replicas": _COUNT}, ["version"])},
    "version": _STR,
    "observedGeneration": {"type": "integer", "format": "int64"},
    "lastRemediation": _obj({"machine": _STR, "time": {"type": "string", "format": "date-time"},
                             "retryCount": _COUNT}),
    "deprecated": _OPEN,
})

TEMPLATE_SPEC = _obj({"template": _obj({
    "metadata": _METADATA,
    "spec": _obj({
        "machineTemplate": _obj({
            "metadata": _METADATA,
            "spec": _obj({"readinessGates": _READINESS_GATES, "deletion": _DELETION,
                          "taints": _TAINTS}),
        }),
        "kubeadmConfigSpec": _kubeadm_config_spec(),
        "rollout": ROLLOUT,
        "remediation": REMEDIATION,
        "machineNaming": MACHINE_NAMING,
    }),
}, ["spec"])}, ["template"])

_CLUSTER_COLUMN = {"name": "Cluster", "type": "string", "description": "Cluster",
                   "jsonPath": ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']"}
COLUMNS: Final[list[dict[str, Any]]] = [
    _CLUSTER_COLUMN,
    {"name": "Available", "type": "string", "description": "Cluster pass all availability checks",
     "jsonPath": '.status.conditions[?(@.type=="Available")].status'},
    {"name": "Desired", "type": "integer", "description": "The desired number of machines",
     "jsonPath": ".spec.replicas"},
    {"name": "Current", "type": "integer", "description": "The number of machines",
     "jsonPath": ".status.replicas"},
    {"name": "Ready", "type": "integer",
     "description": "The number of machines with Ready condition true",
     "jsonPath": ".status.readyReplicas"},
    {"name": "Available", "type": "integer",
     "description": "The number of machines with Available condition true",
     "jsonPath": ".status.availableReplicas"},
    {"name": "Up-to-date", "type": "integer",
     "description": "The number of machines with UpToDate condition true",
     "jsonPath": ".status.upToDateReplicas"},
    {"name": "Paused", "type": "string", "description": "Reconciliation paused", "priority": 10,
     "jsonPath": '.status.conditions[?(@.type=="Paused")].status'},
    {"name": "Initialized", "type": "boolean",
     "description": "This denotes whether or not the control plane can accept requests",
     "jsonPath": ".status.initialization.controlPlaneInitialized"},
    {"name": "Age", "type": "date",
     "description": "Time duration since creation of KubeadmControlPlane",
     "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Version", "type": "string",
     "description": "Kubernetes version associated with this control plane",
     "jsonPath": ".spec.version"},
]
TEMPLATE_COLUMNS: Final[list[dict[str, Any]]] = [
    {"name": "Age", "type": "date", "description": "Time duration since creation of "
     "KubeadmControlPlaneTemplate", "jsonPath": ".metadata.creationTimestamp"}]


# ----------------------------------------------------------------------------------- v1beta1
# Upstream's older shape (`api/controlplane/kubeadm/v1beta1/*_types.go`), served deprecated and
# converted by `conversion`: Durations, `rolloutStrategy`/`rolloutAfter`/`rolloutBefore`,
# `remediationStrategy`, `machineNamingStrategy`, a flat machine template with an
# `infrastructureRef` ObjectReference, and the kubeadm configurations with map `extraArgs`.

_V1_STRS: dict[str, Any] = {"type": "array", "items": _STR}
_V1_OPEN_LIST: dict[str, Any] = {"type": "array", "items": _OPEN}
_V1_BOOL: dict[str, Any] = {"type": "boolean"}
_PRESERVE: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
_ATOMIC: dict[str, Any] = {"x-kubernetes-map-type": "atomic"}
_V1_COMPONENT = _obj({"extraArgs": _STR_MAP, "extraVolumes": _V1_OPEN_LIST,
                      "extraEnvs": _V1_OPEN_LIST}, **_PRESERVE)
_V1_NODE_REGISTRATION = _obj({
    "name": _STR, "criSocket": _STR, "taints": _V1_OPEN_LIST, "kubeletExtraArgs": _STR_MAP,
    "ignorePreflightErrors": _V1_STRS, "imagePullPolicy": _STR, "imagePullSerial": _V1_BOOL,
}, **_PRESERVE)
_V1_API_ENDPOINT = _obj({"advertiseAddress": _STR, "bindPort": _INT})
V1BETA1_KUBEADM_CONFIG_SPEC = _obj({
    "clusterConfiguration": _obj({
        "etcd": _obj({"local": _obj({"extraArgs": _STR_MAP}, **_PRESERVE),
                      "external": _OPEN}, **_PRESERVE),
        "networking": _OPEN, "kubernetesVersion": _STR, "clusterName": _STR,
        "controlPlaneEndpoint": _STR,
        "apiServer": _obj({**_V1_COMPONENT["properties"], "certSANs": _V1_STRS,
                           "timeoutForControlPlane": _STR}, **_PRESERVE),
        "controllerManager": _V1_COMPONENT, "scheduler": _V1_COMPONENT, "dns": _OPEN,
        "certificatesDir": _STR, "imageRepository": _STR,
        "featureGates": {"type": "object", "additionalProperties": _V1_BOOL},
    }, **_PRESERVE),
    "initConfiguration": _obj({
        "bootstrapTokens": _V1_OPEN_LIST, "nodeRegistration": _V1_NODE_REGISTRATION,
        "localAPIEndpoint": _V1_API_ENDPOINT, "skipPhases": _V1_STRS, "patches": _OPEN,
    }, **_PRESERVE),
    "joinConfiguration": _obj({
        "nodeRegistration": _V1_NODE_REGISTRATION, "caCertPath": _STR, "discovery": _OPEN,
        "controlPlane": _obj({"localAPIEndpoint": _V1_API_ENDPOINT}),
        "skipPhases": _V1_STRS, "patches": _OPEN,
    }, **_PRESERVE),
    "files": _V1_OPEN_LIST, "diskSetup": _OPEN, "mounts": {"type": "array", "items": _V1_STRS},
    "bootCommands": _V1_STRS, "preKubeadmCommands": _V1_STRS, "postKubeadmCommands": _V1_STRS,
    "users": _V1_OPEN_LIST, "ntp": _obj({"servers": _V1_STRS, "enabled": _V1_BOOL}),
    "format": {"type": "string", "enum": ["cloud-config", "ignition"]}, "verbosity": _INT,
    "useExperimentalRetryJoin": _V1_BOOL, "ignition": _OPEN,
})
"""v1beta1 KubeadmConfigSpec: typed where the quick-start manifests write (`extraArgs` and
`kubeletExtraArgs` as maps), open below; `conversion` turns it into the v1beta2 shape."""

_OBJECT_REFERENCE = _obj({f: _STR for f in (
    "apiVersion", "kind", "namespace", "name", "uid", "resourceVersion", "fieldPath")},
    **_ATOMIC)
_V1_TAINTS = {**_TAINTS, "x-kubernetes-list-type": "map",
              "x-kubernetes-list-map-keys": ["key", "effect"]}
_V1_TIMEOUTS = {f: _STR for f in ("nodeDrainTimeout", "nodeVolumeDetachTimeout",
                                  "nodeDeletionTimeout")}
_V1_ROLLOUT_STRATEGY = {**_obj({
    "type": {"type": "string", "enum": ["RollingUpdate"]},
    "rollingUpdate": _obj({"maxSurge": _MAX_SURGE}),
}), "default": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}
_V1_FIELDS: dict[str, Any] = {
    "kubeadmConfigSpec": V1BETA1_KUBEADM_CONFIG_SPEC,
    "rolloutBefore": _obj({"certificatesExpiryDays": _INT}),
    "rolloutAfter": {"type": "string", "format": "date-time"},
    "rolloutStrategy": _V1_ROLLOUT_STRATEGY,
    "remediationStrategy": _obj({"maxRetry": _INT, "retryPeriod": _STR,
                                 "minHealthyPeriod": _STR}),
    "machineNamingStrategy": MACHINE_NAMING,
}
_V1_MAX_SURGE_SET = _MAX_SURGE_SET.replace("rollout.strategy", "rolloutStrategy").replace(
    "has(self.rollout) && has(self.rolloutStrategy)", "has(self.rolloutStrategy)")
_V1_SURGE = _SURGE.replace("rollout.strategy", "rolloutStrategy")
V1BETA1_SPEC_RULES: Final = [
    *SPEC_RULES[:2],
    rules.rule(f"!({_V1_MAX_SURGE_SET}) || string({_V1_SURGE}) == '0' "
               f"|| string({_V1_SURGE}) == '1'",
               "value must be 1 or 0", field_path=".rolloutStrategy.rollingUpdate.maxSurge",
               reason="FieldValueRequired"),
    rules.rule(f"!({_V1_MAX_SURGE_SET}) || string({_V1_SURGE}) != '0' || !has(self.replicas)"
               " || self.replicas >= 3",
               "when KubeadmControlPlane is configured to scale-in, replica count needs to be "
               "at least 3", field_path=".rolloutStrategy.rollingUpdate",
               reason="FieldValueRequired"),
]
"""`SPEC_RULES` at v1beta1's paths (upstream's webhook judges the converted v1beta2 object, so
its causes name v1beta2 paths; a CRD rule may only name paths of its own version)."""

V1BETA1_SPEC = _obj({
    "replicas": _INT,
    "version": {"type": "string", "minLength": 1, "maxLength": 256,
                **rules.validations(rules.SEMVER)},
    "machineTemplate": _obj({
        "metadata": _METADATA, "infrastructureRef": _OBJECT_REFERENCE,
        "readinessGates": _READINESS_GATES, **_V1_TIMEOUTS, "taints": _V1_TAINTS,
    }, ["infrastructureRef"]),
    **_V1_FIELDS,
}, ["kubeadmConfigSpec", "machineTemplate", "version"], **rules.validations(*V1BETA1_SPEC_RULES))

_V1_CONDITIONS: dict[str, Any] = {"type": "array", "items": _obj({
    "type": _STR, "status": _STR, "severity": _STR,
    "lastTransitionTime": {"type": "string", "format": "date-time"},
    "reason": _STR, "message": _STR}, ["lastTransitionTime", "status", "type"])}
V1BETA1_STATUS = _obj({
    "selector": _STR, "replicas": _COUNT, "version": _STR, "updatedReplicas": _COUNT,
    "readyReplicas": _COUNT, "unavailableReplicas": _COUNT, "initialized": _V1_BOOL,
    "ready": _V1_BOOL, "failureReason": _STR, "failureMessage": _STR,
    "observedGeneration": {"type": "integer", "format": "int64"},
    "conditions": _V1_CONDITIONS,
    "lastRemediation": _obj({"machine": _STR, "timestamp": {"type": "string",
                                                            "format": "date-time"},
                             "retryCount": _COUNT}, ["machine", "retryCount", "timestamp"]),
    "versions": STATUS["properties"]["versions"],
    "v1beta2": _obj({"conditions": _CONDITIONS, "readyReplicas": _COUNT,
                     "availableReplicas": _COUNT, "upToDateReplicas": _COUNT}),
})

V1BETA1_TEMPLATE_SPEC = _obj({"template": _obj({
    "metadata": _METADATA,
    "spec": _obj({
        "machineTemplate": _obj({"metadata": _METADATA, **_V1_TIMEOUTS, "taints": _V1_TAINTS}),
        **_V1_FIELDS,
    }, ["kubeadmConfigSpec"]),
}, ["spec"])}, ["template"])


def _column(name: str, type_: str, path: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "description": description, **extra, "jsonPath": path}


V1BETA1_COLUMNS: Final[list[dict[str, Any]]] = [
    _CLUSTER_COLUMN,
    _column("Initialized", "boolean", ".status.initialized", "This denotes whether or not the "
            "control plane has the uploaded kubeadm-config configmap"),
    _column("API Server Available", "boolean", ".status.ready",
            "KubeadmControlPlane API Server is ready to receive requests"),
    _column("Desired", "integer", ".spec.replicas",
            "Total number of machines desired by this control plane", priority=10),
    _column("Replicas", "integer", ".status.replicas",
            "Total number of non-terminated machines targeted by this control plane"),
    _column("Ready", "integer", ".status.readyReplicas",
            "Total number of fully running and ready control plane machines"),
    _column("Updated", "integer", ".status.updatedReplicas", "Total number of non-terminated "
            "machines targeted by this control plane that have the desired template spec"),
    _column("Unavailable", "integer", ".status.unavailableReplicas",
            "Total number of unavailable machines targeted by this control plane"),
    COLUMNS[-2],  # Age
    COLUMNS[-1],  # Version
]

WEBHOOK_SERVICE: Final = {"namespace": "capi-kubeadm-control-plane-system",
                          "name": "capi-kubeadm-control-plane-webhook-service",
                          "path": "/convert"}
"""Where upstream's KCP serves conversion; Shipyard's own server converts in process. No
`caBundle` is written, as in upstream's manifests before cert-manager injects one: a placeholder
bundle keeps kube-apiserver from establishing the CRD (`InvalidCABundle`), none leaves v1beta2
served there and v1beta1 failing until a webhook is wired (`shipyard init` does)."""


def _version(name: str, spec: dict[str, Any], status: dict[str, Any] | None,
             columns: list[dict[str, Any]]) -> dict[str, Any]:
    properties: dict[str, Any] = {"apiVersion": _STR, "kind": _STR,
                                  "metadata": {"type": "object"}, "spec": spec}
    version: dict[str, Any] = {"name": name, "served": True, "storage": name == VERSION}
    if name != VERSION:
        version["deprecated"] = True
    if status is not None:
        properties["status"] = status
        version["subresources"] = {"status": {}, "scale": {
            "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector"}}
    version["schema"] = {"openAPIV3Schema": {"type": "object", "properties": properties}}
    version["additionalPrinterColumns"] = columns
    return version


def _crd(kind: str, plural: str, versions: list[dict[str, Any]],
         short_names: list[str]) -> dict[str, Any]:
    names: dict[str, Any] = {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                             "singular": kind.lower(), "categories": ["cluster-api"]}
    if short_names:
        names["shortNames"] = short_names
    labels = {"cluster.x-k8s.io/v1beta2": VERSION, "cluster.x-k8s.io/provider": PROVIDER}
    spec: dict[str, Any] = {"group": GROUP, "scope": "Namespaced", "names": names,
                            "versions": versions}
    if len(versions) > 1:
        labels["cluster.x-k8s.io/v1beta1"] = "v1beta1"
        spec["conversion"] = {"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": {"service": dict(WEBHOOK_SERVICE)}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": labels},
        "spec": spec,
    }


def crd_manifests(serve_v1beta1: bool = True) -> list[dict[str, Any]]:
    """The two CRDs, v1beta2 stored. With `serve_v1beta1` (the default, as upstream serves it),
    v1beta1 is served too, deprecated, through Webhook conversion: the API server must then have
    `conversion.KubeadmControlPlaneConverter` registered for the group (Shipyard's server does,
    in process) or KCP's webhook service must exist (a real cluster; `shipyard init` points the
    CRDs at Shipyard's own webhook). v1beta2 is listed first."""
    kcp = [_version(VERSION, SPEC, STATUS, COLUMNS)]
    template = [_version(VERSION, TEMPLATE_SPEC, None, TEMPLATE_COLUMNS)]
    if serve_v1beta1:
        kcp.append(_version("v1beta1", V1BETA1_SPEC, V1BETA1_STATUS, V1BETA1_COLUMNS))
        template.append(_version("v1beta1", V1BETA1_TEMPLATE_SPEC, None, TEMPLATE_COLUMNS))
    return [
        _crd("KubeadmControlPlane", "kubeadmcontrolplanes", kcp, ["kcp"]),
        _crd("KubeadmControlPlaneTemplate", "kubeadmcontrolplanetemplates", template, []),
    ]
