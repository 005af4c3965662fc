"""The kinds compiled into the server: what kube-apiserver would serve for them, as `ResourceInfo`.

Only the kinds Cluster API and its clients touch are built in: Namespace, Secret, ConfigMap, Event,
Node, ServiceAccount and Pod (core/v1), Lease, events.k8s.io Event, policy/v1 PodDisruptionBudget
and apps/v1 ReplicaSet and DaemonSet (Machine deletion drains Nodes through the Eviction API, and
``kubectl drain`` reads a Pod's controller), and CustomResourceDefinition. Each
record carries

- the verbs, short names and scope kube-apiserver lists in discovery;
- a structural ``openAPIV3Schema`` with the fields of the upstream Go types (k8s.io/api), so the
  same pruning/validation machinery that serves CRDs serves these. ``metadata`` is
  ``type: object`` with unknown fields preserved: the handlers validate ObjectMeta themselves, and
  the OpenAPI documents swap in the full ObjectMeta schema. List merge keys
  (``x-kubernetes-patch-merge-key``/``-strategy``, ``x-kubernetes-list-type``) are kept, because
  strategic merge patch and server-side apply read them;
- a `TablePrinter` (``extra["printer"]``) reproducing ``pkg/printers/internalversion`` columns.

Only Pods, ReplicaSets and DaemonSets are in the ``all`` category, as upstream. ``extra`` may
also carry ``admit`` (the kind's strategy beyond its schema: ``(obj, old) -> causes``, see
`pods`), ``field_labels`` (field selectors beyond ``metadata.name``/``namespace``) and
``subresources`` (name -> the group, version, kind and verbs discovery lists for a subresource
served by a handler of its own, such as ``pods/eviction``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from shipyard.apiserver.pods import admit_pdb, admit_pod
from shipyard.apiserver.resources import PrinterColumn, ResourceInfo
from shipyard.apiserver.tables import (
    AGE_COLUMN,
    CREATION_TIMESTAMP_DESCRIPTION,
    NAME_COLUMN,
    NAME_DESCRIPTION,
    TablePrinter,
    format_time,
    parse_time,
    since,
)

Schema = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# schema vocabulary


def _obj(
    props: dict[str, Schema], *, required: tuple[str, ...] = (), atomic: bool = False
) -> Schema:
    schema: Schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    if atomic:
        schema["x-kubernetes-map-type"] = "atomic"
    return schema


def _list(items: Schema, list_type: str = "atomic", *keys: str, merge: bool = False) -> Schema:
    schema: Schema = {"type": "array", "items": items, "x-kubernetes-list-type": list_type}
    if keys:
        schema["x-kubernetes-list-map-keys"] = list(keys)
    if merge:
        schema["x-kubernetes-patch-strategy"] = "merge"
        schema["x-kubernetes-patch-merge-key"] = keys[0]
    return schema


def _map(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
INT32: Schema = {"type": "integer", "format": "int32"}
INT64: Schema = {"type": "integer", "format": "int64"}
BYTES: Schema = {"type": "string", "format": "byte"}
TIME: Schema = {"type": "string", "format": "date-time"}
MICRO_TIME: Schema = {"type": "string", "format": "date-time"}
QUANTITY: Schema = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, STR]}
METADATA: Schema = {"type": "object"}  # ObjectMeta is validated by the handlers, as for CRDs
OPAQUE: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
STR_LIST: Schema = _list(STR)

OBJECT_REFERENCE = _obj(
    {k: STR for k in ("apiVersion", "fieldPath", "kind", "name", "namespace", "resourceVersion",
                      "uid")},
    atomic=True,
)
LOCAL_OBJECT_REFERENCE = _obj({"name": STR}, atomic=True)


def _kind(props: dict[str, Schema], desc: str, required: tuple[str, ...] = ()) -> Schema:
    root = _obj(
        {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion defines the versioned schema of this representation of"
                " an object.",
            },
            "kind": {
                "type": "string",
                "description": "Kind is a string value representing the REST resource this object"
                " represents.",
            },
            "metadata": METADATA,
            **props,
        },
        required=required,
    )
    root["description"] = desc
    return root


def _conditions(*timestamps: str) -> Schema:
    fields: dict[str, Schema] = {"type": STR, "status": STR, "reason": STR, "message": STR}
    fields.update({t: TIME for t in timestamps})
    return _list(_obj(fields, required=("type", "status")), "map", "type", merge=True)


NAMESPACE_SCHEMA = _kind(
    {
        "spec": _obj({"finalizers": STR_LIST}),
        "status": _obj({"phase": STR, "conditions": _conditions("lastTransitionTime")}),
    },
    "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
)

SECRET_SCHEMA = _kind(
    {"data": _map(BYTES), "stringData": _map(STR), "type": STR, "immutable": BOOL},
    "Secret holds secret data of a certain type. The total bytes of the values in the Data field"
    " must be less than MaxSecretSize bytes.",
)

CONFIGMAP_SCHEMA = _kind(
    {"data": _map(STR), "binaryData": _map(BYTES), "immutable": BOOL},
    "ConfigMap holds configuration data for pods to consume.",
)

EVENT_SERIES = _obj({"count": INT32, "lastObservedTime": MICRO_TIME})

CORE_EVENT_SCHEMA = _kind(
    {
        "involvedObject": OBJECT_REFERENCE,
        "reason": STR,
        "message": STR,
        "source": _obj({"component": STR, "host": STR}),
        "firstTimestamp": TIME,
        "lastTimestamp": TIME,
        "count": INT32,
        "type": STR,
        "eventTime": MICRO_TIME,
        "series": EVENT_SERIES,
        "action": STR,
        "related": OBJECT_REFERENCE,
        "reportingComponent": STR,
        "reportingInstance": STR,
    },
    "Event is a report of an event somewhere in the cluster.",
    required=("metadata", "involvedObject"),
)

EVENTS_V1_EVENT_SCHEMA = _kind(
    {
        "eventTime": MICRO_TIME,
        "series": _obj(
            {"count": INT32, "lastObservedTime": MICRO_TIME},
            required=("count", "lastObservedTime"),
        ),
        "reportingController": STR,
        "reportingInstance": STR,
        "action": STR,
        "reason": STR,
        "regarding": OBJECT_REFERENCE,
        "related": OBJECT_REFERENCE,
        "note": STR,
        "type": STR,
        "deprecatedSource": _obj({"component": STR, "host": STR}),
        "deprecatedFirstTimestamp": TIME,
        "deprecatedLastTimestamp": TIME,
        "deprecatedCount": INT32,
    },
    "Event is a report of an event somewhere in the cluster.",
    required=("eventTime",),
)

NODE_SCHEMA = _kind(
    {
        "spec": _obj(
            {
                "podCIDR": STR,
                "podCIDRs": {**_list(STR, "set"), "x-kubernetes-patch-strategy": "merge"},
                "providerID": STR,
                "unschedulable": BOOL,
                "taints": _list(
                    _obj({"key": STR, "value": STR, "effect": STR, "timeAdded": TIME},
                         required=("key", "effect"))
                ),
                "configSource": _obj(
                    {
                        "configMap": _obj(
                            {k: STR for k in ("namespace", "name", "uid", "resourceVersion",
                                              "kubeletConfigKey")},
                            required=("namespace", "name", "kubeletConfigKey"),
                        )
                    }
                ),
                "externalID": STR,
            }
        ),
        "status": _obj(
            {
                "capacity": _map(QUANTITY),
                "allocatable": _map(QUANTITY),
                "phase": STR,
                "conditions": _conditions("lastHeartbeatTime", "lastTransitionTime"),
                "addresses": _list(
                    _obj({"type": STR, "address": STR}, required=("type", "address")),
                    "map", "type", merge=True,
                ),
                "daemonEndpoints": _obj(
                    {"kubeletEndpoint": _obj({"Port": INT32}, required=("Port",))}
                ),
                "nodeInfo": _obj(
                    {
                        **{
                            k: STR
                            for k in ("machineID", "systemUUID", "bootID", "kernelVersion",
                                      "osImage", "containerRuntimeVersion", "kubeletVersion",
                                      "kubeProxyVersion", "operatingSystem", "architecture")
                        },
                        "swap": _obj({"capacity": INT64}),
                    }
                ),
                "images": _list(_obj({"names": STR_LIST, "sizeBytes": INT64})),
                "volumesInUse": STR_LIST,
                "volumesAttached": _list(
                    _obj({"name": STR, "devicePath": STR}, required=("name", "devicePath"))
                ),
                "config": _obj(
                    {"assigned": OPAQUE, "active": OPAQUE, "lastKnownGood": OPAQUE,
                     "error": STR}
                ),
                "runtimeHandlers": _list(
                    _obj(
                        {
                            "name": STR,
                            "features": _obj(
                                {"recursiveReadOnlyMounts": BOOL, "userNamespaces": BOOL}
                            ),
                        }
                    )
                ),
                "features": _obj({"supplementalGroupsPolicy": BOOL}),
            }
        ),
    },
    "Node is a worker node in Kubernetes. Each node will have a unique identifier in the cache"
    " (i.e. in etcd).",
)

SERVICE_ACCOUNT_SCHEMA = _kind(
    {
        "secrets": {
            "type": "array",
            "items": OBJECT_REFERENCE,
            "x-kubernetes-patch-strategy": "merge",
            "x-kubernetes-patch-merge-key": "name",
        },
        "imagePullSecrets": _list(LOCAL_OBJECT_REFERENCE),
        "automountServiceAccountToken": BOOL,
    },
    "ServiceAccount binds together: * a name, understood by users, and perhaps by peripheral"
    " systems, for an identity * a principal that can be authenticated and authorized * a set of"
    " secrets",
)

LEASE_SCHEMA = _kind(
    {
        "spec": _obj(
            {
                "holderIdentity": STR,
                "leaseDurationSeconds": INT32,
                "acquireTime": MICRO_TIME,
                "renewTime": MICRO_TIME,
                "leaseTransitions": INT32,
                "strategy": STR,
                "preferredHolder": STR,
            }
        )
    },
    "Lease defines a lease concept.",
)

# Pods carry far more fields than Shipyard acts on: the parts it reads are typed (so field
# selectors, printers and list merge keys work) and the rest is preserved as sent.
_OPEN: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
_CONTAINER = {
    **_obj({
        "name": STR, "image": STR, "command": STR_LIST, "args": STR_LIST, "workingDir": STR,
        "imagePullPolicy": STR,
        "terminationMessagePath": {**STR, "default": "/dev/termination-log"},
        "terminationMessagePolicy": {**STR, "default": "File"},
        "ports": _list(_obj({"name": STR, "containerPort": INT32, "protocol": STR,
                             "hostPort": INT32, "hostIP": STR}, required=("containerPort",))),
        "resources": _obj({"limits": _map(QUANTITY), "requests": _map(QUANTITY)}),
    }),
    **_OPEN,
}
_CONTAINERS = {**_list(_CONTAINER), "x-kubernetes-patch-strategy": "merge",
               "x-kubernetes-patch-merge-key": "name"}
_CONTAINER_STATUS = {
    **_obj({"name": STR, "ready": BOOL, "restartCount": INT32, "image": STR, "imageID": STR,
            "containerID": STR, "started": BOOL, "state": OPAQUE, "lastState": OPAQUE}),
    **_OPEN,
}
POD_SCHEMA = _kind(
    {
        "spec": {
            **_obj({
                "containers": _CONTAINERS,
                "initContainers": _CONTAINERS,
                "nodeName": STR,
                "nodeSelector": {**_map(STR), "x-kubernetes-map-type": "atomic"},
                "restartPolicy": {**STR, "default": "Always"},
                "dnsPolicy": {**STR, "default": "ClusterFirst"},
                "schedulerName": {**STR, "default": "default-scheduler"},
                "terminationGracePeriodSeconds": {**INT64, "default": 30},
                "serviceAccountName": STR,
                "hostNetwork": BOOL,
                "priority": INT32,
                "priorityClassName": STR,
                "tolerations": _list(_obj({"key": STR, "operator": STR, "value": STR,
                                           "effect": STR, "tolerationSeconds": INT64})),
                "volumes": {**_list({**_obj({"name": STR}, required=("name",)), **_OPEN}),
                            "x-kubernetes-patch-strategy": "merge,retainKeys",
                            "x-kubernetes-patch-merge-key": "name"},
            }),
            **_OPEN,
        },
        "status": {
            **_obj({
                "phase": STR,
                "conditions": _conditions("lastProbeTime", "lastTransitionTime"),
                "message": STR,
                "reason": STR,
                "nominatedNodeName": STR,
                "hostIP": STR,
                "podIP": STR,
                "podIPs": {**_list(_obj({"ip": STR}, required=("ip",))),
                           "x-kubernetes-patch-strategy": "merge",
                           "x-kubernetes-patch-merge-key": "ip"},
                "startTime": TIME,
                "qosClass": STR,
                "containerStatuses": _list(_CONTAINER_STATUS),
                "initContainerStatuses": _list(_CONTAINER_STATUS),
            }),
            **_OPEN,
        },
    },
    "Pod is a collection of containers that can run on a host. This resource is created by"
    " clients and scheduled onto hosts.",
)

_LABEL_SELECTOR = _obj(
    {
        "matchLabels": _map(STR),
        "matchExpressions": _list(_obj({"key": STR, "operator": STR, "values": STR_LIST},
                                       required=("key", "operator"))),
    },
    atomic=True,
)
PDB_SCHEMA = _kind(
    {
        "spec": _obj({
            "minAvailable": {"x-kubernetes-int-or-string": True},
            "maxUnavailable": {"x-kubernetes-int-or-string": True},
            "selector": {**_LABEL_SELECTOR, "x-kubernetes-patch-strategy": "replace"},
            "unhealthyPodEvictionPolicy": STR,
        }),
        "status": _obj({
            "observedGeneration": INT64,
            "disruptedPods": _map(TIME),
            "disruptionsAllowed": INT32,
            "currentHealthy": INT32,
            "desiredHealthy": INT32,
            "expectedPods": INT32,
            "conditions": _conditions("lastTransitionTime"),
        }),
    },
    "PodDisruptionBudget is an object to define the max disruption that can be caused to a"
    " collection of pods",
)

# apps/v1 ReplicaSet and DaemonSet are served so that Pods can name their controllers and
# ``kubectl drain`` can look a Pod's DaemonSet up; Shipyard runs no controller for them, so only
# the fields clients read are typed.
_WORKLOAD_STATUS = {
    **_obj({k: INT32 for k in ("replicas", "readyReplicas", "availableReplicas",
                               "fullyLabeledReplicas", "currentNumberScheduled",
                               "desiredNumberScheduled", "numberReady", "numberAvailable",
                               "numberMisscheduled", "updatedNumberScheduled",
                               "numberUnavailable")}
           | {"observedGeneration": INT64, "conditions": _conditions("lastTransitionTime")}),
    **_OPEN,
}


def _workload_schema(desc: str, replicas: bool) -> Schema:
    spec: dict[str, Schema] = {"selector": _LABEL_SELECTOR, "template": OPAQUE,
                               "minReadySeconds": INT32}
    if replicas:
        spec["replicas"] = INT32
    return _kind({"spec": {**_obj(spec), **_OPEN}, "status": _WORKLOAD_STATUS}, desc)


REPLICA_SET_SCHEMA = _workload_schema(
    "ReplicaSet ensures that a specified number of pod replicas are running at any given time.",
    replicas=True)
DAEMON_SET_SCHEMA = _workload_schema(
    "DaemonSet represents the configuration of a daemon set.", replicas=False)

_CRD_NAMES = _obj(
    {
        "plural": STR,
        "singular": STR,
        "shortNames": STR_LIST,
        "kind": STR,
        "listKind": STR,
        "categories": STR_LIST,
    },
    required=("plural", "kind"),
)
_CRD_COLUMN = _obj(
    {"name": STR, "type": STR, "format": STR, "description": STR, "priority": INT32,
     "jsonPath": STR},
    required=("name", "type", "jsonPath"),
)
_CRD_VERSION = _obj(
    {
        "name": STR,
        "served": BOOL,
        "storage": BOOL,
        "deprecated": BOOL,
        "deprecationWarning": STR,
        "schema": _obj(
            {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
        ),
        "subresources": _obj(
            {
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "scale": _obj(
                    {"specReplicasPath": STR, "statusReplicasPath": STR,
                     "labelSelectorPath": STR},
                    required=("specReplicasPath", "statusReplicasPath"),
                ),
            }
        ),
        "additionalPrinterColumns": _list(_CRD_COLUMN),
        "selectableFields": _list(_obj({"jsonPath": STR}, required=("jsonPath",))),
    },
    required=("name", "served", "storage"),
)
CRD_SCHEMA = _kind(
    {
        "spec": _obj(
            {
                "group": STR,
                "names": _CRD_NAMES,
                "scope": STR,
                "versions": _list(_CRD_VERSION),
                "conversion": _obj(
                    {
                        "strategy": STR,
                        "webhook": _obj(
                            {
                                "clientConfig": _obj(
                                    {
                                        "url": STR,
                                        "service": _obj(
                                            {"namespace": STR, "name": STR, "path": STR,
                                             "port": INT32},
                                            required=("namespace", "name"),
                                        ),
                                        "caBundle": BYTES,
                                    }
                                ),
                                "conversionReviewVersions": STR_LIST,
                            },
                            required=("conversionReviewVersions",),
                        ),
                    },
                    required=("strategy",),
                ),
                "preserveUnknownFields": BOOL,
            },
            required=("group", "names", "scope", "versions"),
        ),
        "status": _obj(
            {
                "conditions": _list(
                    _obj(
                        {"type": STR, "status": STR, "lastTransitionTime": TIME, "reason": STR,
                         "message": STR},
                        required=("type", "status"),
                    ),
                    "map", "type",
                ),
                "acceptedNames": _CRD_NAMES,
                "storedVersions": STR_LIST,
            }
        ),
    },
    "CustomResourceDefinition represents a resource that should be exposed on the API server."
    "  Its name MUST be in the format <.spec.name>.<.spec.group>.",
    required=("spec",),
)

# ---------------------------------------------------------------------------------------------
# printers (pkg/printers/internalversion/printers.go; the CRD one is the generic table convertor)

Obj = dict[str, Any]


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _field(obj: Obj, *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _col(name: str, description: str, priority: int = 0, fmt: str = "") -> PrinterColumn:
    return PrinterColumn(name, "string", "", format=fmt, description=description,
                         priority=priority)


def _namespace_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_meta(obj).get("name", ""), _field(obj, "status", "phase") or "",
            since(_meta(obj).get("creationTimestamp"), now)]


def _secret_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_meta(obj).get("name", ""), obj.get("type") or "", len(obj.get("data") or {}),
            since(_meta(obj).get("creationTimestamp"), now)]


def _configmap_cells(obj: Obj, now: datetime) -> list[Any]:
    count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
    return [_meta(obj).get("name", ""), count, since(_meta(obj).get("creationTimestamp"), now)]


def _service_account_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_meta(obj).get("name", ""), len(obj.get("secrets") or []),
            since(_meta(obj).get("creationTimestamp"), now)]


def _lease_cells(obj: Obj, now: datetime) -> list[Any]:
    holder = _field(obj, "spec", "holderIdentity")
    return [_meta(obj).get("name", ""), "<unknown>" if holder is None else holder,
            since(_meta(obj).get("creationTimestamp"), now)]


def _node_cells(obj: Obj, now: datetime) -> list[Any]:
    meta = _meta(obj)
    status: list[str] = []
    for condition in _field(obj, "status", "conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            status = ["Ready" if condition.get("status") == "True" else "NotReady"]
    if not status:
        status = ["Unknown"]
    if _field(obj, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    roles: set[str] = set()
    for key, value in (meta.get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    info = _field(obj, "status", "nodeInfo") or {}

    def address(kind: str) -> str:
        for entry in _field(obj, "status", "addresses") or []:
            if isinstance(entry, dict) and entry.get("type") == kind:
                return str(entry.get("address", ""))
        return "<none>"

    return [
        meta.get("name", ""),
        ",".join(status),
        ",".join(sorted(roles)) or "<none>",
        since(meta.get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _event_cells(obj: Obj, now: datetime) -> list[Any]:
    """Core and events.k8s.io Events print alike (both convert to the same internal type)."""
    if obj.get("apiVersion") == "events.k8s.io/v1":
        involved = obj.get("regarding") or {}
        message, source = obj.get("note") or "", obj.get("deprecatedSource") or {}
        first_ts, last_ts = obj.get("deprecatedFirstTimestamp"), obj.get("deprecatedLastTimestamp")
        count, controller = obj.get("deprecatedCount") or 0, obj.get("reportingController") or ""
    else:
        involved = obj.get("involvedObject") or {}
        message, source = obj.get("message") or "", obj.get("source") or {}
        first_ts, last_ts = obj.get("firstTimestamp"), obj.get("lastTimestamp")
        count, controller = obj.get("count") or 0, obj.get("reportingComponent") or ""
    first = since(first_ts, now) if parse_time(first_ts) else since(obj.get("eventTime"), now)
    last = since(last_ts, now) if parse_time(last_ts) else first
    series = obj.get("series")
    if isinstance(series, dict):
        last = since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    component = source.get("component") or controller
    instance = source.get("host") or obj.get("reportingInstance") or ""
    source_text = ", ".join(p for p in (component, instance) if p) if component else ""
    return [last, obj.get("type", ""), obj.get("reason", ""), target,
            involved.get("fieldPath", ""), source_text, message.strip(), first, count,
            _meta(obj).get("name", "")]


def _pod_cells(obj: Obj, now: datetime) -> list[Any]:
    """printPod, without the restart's "(5m ago)" suffix and sidecar subtleties."""
    meta, status = _meta(obj), obj.get("status") or {}
    statuses = [s for s in status.get("containerStatuses") or [] if isinstance(s, dict)]
    total = len(_field(obj, "spec", "containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    reason = status.get("reason") or status.get("phase") or ""
    for container in reversed(statuses):
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated.get("reason"):
            reason = terminated["reason"]
    if meta.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    gates = _field(obj, "spec", "readinessGates") or []
    gate_text = "<none>"
    if gates:
        true = {c.get("type") for c in status.get("conditions") or []
                if isinstance(c, dict) and c.get("status") == "True"}
        gate_text = f"{sum(1 for g in gates if g.get('conditionType') in true)}/{len(gates)}"
    return [meta.get("name", ""), f"{ready}/{total}", reason, str(restarts),
            since(meta.get("creationTimestamp"), now), status.get("podIP") or "<none>",
            _field(obj, "spec", "nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gate_text]


def _pdb_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}

    def text(key: str) -> str:
        value = spec.get(key)
        return "N/A" if value is None else str(value)

    return [_meta(obj).get("name", ""), text("minAvailable"), text("maxUnavailable"),
            int(_field(obj, "status", "disruptionsAllowed") or 0),
            since(_meta(obj).get("creationTimestamp"), now)]


def _replica_set_cells(obj: Obj, now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    return [_meta(obj).get("name", ""), int(_field(obj, "spec", "replicas") or 0),
            int(status.get("replicas") or 0), int(status.get("readyReplicas") or 0),
            since(_meta(obj).get("creationTimestamp"), now)]


def _daemon_set_cells(obj: Obj, now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    selector = _field(obj, "spec", "template", "spec", "nodeSelector") or {}
    return [_meta(obj).get("name", ""),
            *(int(status.get(k) or 0) for k in ("desiredNumberScheduled",
                                                "currentNumberScheduled", "numberReady",
                                                "updatedNumberScheduled", "numberAvailable")),
            ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
            since(_meta(obj).get("creationTimestamp"), now)]


def _crd_cells(obj: Obj, now: datetime) -> list[Any]:
    created = parse_time(_meta(obj).get("creationTimestamp"))
    return [_meta(obj).get("name", ""), format_time(created) if created else None]


NAMESPACE_PRINTER = TablePrinter(
    (NAME_COLUMN, _col("Status", "The status of the namespace"), AGE_COLUMN), _namespace_cells
)
SECRET_PRINTER = TablePrinter(
    (NAME_COLUMN, _col("Type", "Used to facilitate programmatic handling of secret data."),
     _col("Data", "Data contains the secret data."), AGE_COLUMN),
    _secret_cells,
)
CONFIGMAP_PRINTER = TablePrinter(
    (NAME_COLUMN, _col("Data", "Data contains the configuration data."), AGE_COLUMN),
    _configmap_cells,
)
SERVICE_ACCOUNT_PRINTER = TablePrinter(
    (NAME_COLUMN, _col("Secrets", "Secrets is a list of the secrets in the same namespace that"
                       " pods running using this ServiceAccount are allowed to use."), AGE_COLUMN),
    _service_account_cells,
)
LEASE_PRINTER = TablePrinter(
    (NAME_COLUMN, _col("Holder", "holderIdentity contains the identity of the holder of a"
                       " current lease."), AGE_COLUMN),
    _lease_cells,
)
NODE_PRINTER = TablePrinter(
    (
        NAME_COLUMN,
        _col("Status", "The status of the node"),
        _col("Roles", "The roles of the node"),
        AGE_COLUMN,
        _col("Version", "Kubelet Version reported by the node."),
        _col("Internal-IP", "List of addresses reachable to the node.", 1),
        _col("External-IP", "List of addresses reachable to the node.", 1),
        _col("OS-Image", "OS Image reported by the node from /etc/os-release.", 1),
        _col("Kernel-Version", "Kernel Version reported by the node.", 1),
        _col("Container-Runtime", "ContainerRuntime Version reported by the node.", 1),
    ),
    _node_cells,
)
EVENT_PRINTER = TablePrinter(
    (
        _col("Last Seen", "The time at which the most recent occurrence of this event was"
             " recorded."),
        _col("Type", "Type of this event (Normal, Warning), new types could be added in the"
             " future"),
        _col("Reason", "This should be a short, machine understandable string that gives the"
             " reason for the transition into the object's current status."),
        _col("Object", "The object that this event is about."),
        _col("Subobject", "If referring to a piece of an object instead of an entire object,"
             " this string should contain a valid JSON/Go field access statement.", 1),
        _col("Source", "The component reporting this event.", 1),
        _col("Message", "A human-readable description of the status of this operation."),
        _col("First Seen", "The time at which the event was first recorded.", 1),
        _col("Count", "The number of times this event has occurred.", 1),
        _col("Name", NAME_DESCRIPTION, 1, "name"),
    ),
    _event_cells,
)
POD_PRINTER = TablePrinter(
    (
        NAME_COLUMN,
        _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", "The aggregate status of the containers in this pod."),
        _col("Restarts", "The number of times the containers in this pod have been restarted"
             " and when the last container in this pod has restarted."),
        AGE_COLUMN,
        _col("IP", "IP address allocated to the pod. Routable at least within the cluster.", 1),
        _col("Node", "Name of the Node this pod is scheduled onto.", 1),
        _col("Nominated Node", "Name of the node this pod is nominated onto.", 1),
        _col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod"
             " readiness.", 1),
    ),
    _pod_cells,
)
PDB_PRINTER = TablePrinter(
    (
        NAME_COLUMN,
        _col("Min Available", "The minimum number of pods that must be available"),
        _col("Max Unavailable", "The maximum number of pods that may be unavailable"),
        _col("Allowed Disruptions", "Calculated number of pods that may be disrupted at this"
             " time"),
        AGE_COLUMN,
    ),
    _pdb_cells,
)
REPLICA_SET_PRINTER = TablePrinter(
    (NAME_COLUMN, _col("Desired", "Number of desired pods."),
     _col("Current", "Number of actual replicas."), _col("Ready", "Number of ready replicas."),
     AGE_COLUMN),
    _replica_set_cells,
)
DAEMON_SET_PRINTER = TablePrinter(
    (NAME_COLUMN,
     _col("Desired", "The desired number of daemon pods."),
     _col("Current", "The current number of daemon pods."),
     _col("Ready", "The number of daemon pods that are ready."),
     _col("Up-to-date", "The number of daemon pods that are Up-to-date."),
     _col("Available", "The number of daemon pods that are available."),
     _col("Node Selector", "Which nodes should run the daemon pods."),
     AGE_COLUMN),
    _daemon_set_cells,
)
CRD_PRINTER = TablePrinter(
    (
        NAME_COLUMN,
        PrinterColumn("Created At", "date", "", description=CREATION_TIMESTAMP_DESCRIPTION),
    ),
    _crd_cells,
)

# ---------------------------------------------------------------------------------------------
# the records

# Field labels beyond metadata.name/namespace (pkg/registry/core/pod/strategy.go
# PodToSelectableFields).
POD_FIELD_LABELS = frozenset({
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
    "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
})
# pods/eviction: POST a policy/v1 Eviction (policy/v1beta1 is accepted too); `eviction` serves it.
EVICTION_SUBRESOURCE: dict[str, Any] = {
    "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ("create",),
}

_NO_COLLECTION = ("create", "delete", "get", "list", "patch", "update", "watch")


def _builtin(
    group: str, version: str, resource: str, kind: str, *, namespaced: bool, schema: Schema,
    printer: TablePrinter, short: tuple[str, ...] = (), categories: tuple[str, ...] = (),
    status: bool = False, verbs: tuple[str, ...] | None = None,
    extra: dict[str, Any] | None = None,
) -> ResourceInfo:
    extra = {"printer": printer, **(extra or {})}
    info = ResourceInfo(
        group=group, version=version, resource=resource, kind=kind, list_kind=kind + "List",
        singular=kind.lower(), namespaced=namespaced, short_names=short, categories=categories,
        status=status, schema=schema, builtin=True, extra=extra,
    )
    if verbs is not None:
        info = replace(info, verbs=verbs)
    return info


BUILTINS: tuple[ResourceInfo, ...] = (
    _builtin("", "v1", "namespaces", "Namespace", namespaced=False, schema=NAMESPACE_SCHEMA,
             printer=NAMESPACE_PRINTER, short=("ns",), status=True, verbs=_NO_COLLECTION),
    _builtin("", "v1", "secrets", "Secret", namespaced=True, schema=SECRET_SCHEMA,
             printer=SECRET_PRINTER),
    _builtin("", "v1", "configmaps", "ConfigMap", namespaced=True, schema=CONFIGMAP_SCHEMA,
             printer=CONFIGMAP_PRINTER, short=("cm",)),
    _builtin("", "v1", "events", "Event", namespaced=True, schema=CORE_EVENT_SCHEMA,
             printer=EVENT_PRINTER, short=("ev",)),
    _builtin("", "v1", "nodes", "Node", namespaced=False, schema=NODE_SCHEMA,
             printer=NODE_PRINTER, short=("no",), status=True),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", namespaced=True,
             schema=SERVICE_ACCOUNT_SCHEMA, printer=SERVICE_ACCOUNT_PRINTER, short=("sa",)),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True,
             schema=LEASE_SCHEMA, printer=LEASE_PRINTER),
    _builtin("events.k8s.io", "v1", "events", "Event", namespaced=True,
             schema=EVENTS_V1_EVENT_SCHEMA, printer=EVENT_PRINTER, short=("ev",)),
    _builtin("", "v1", "pods", "Pod", namespaced=True, schema=POD_SCHEMA,
             printer=POD_PRINTER, short=("po",), categories=("all",), status=True,
             extra={"admit": admit_pod, "field_labels": POD_FIELD_LABELS,
                    "subresources": {"eviction": EVICTION_SUBRESOURCE}}),
    _builtin("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", namespaced=True,
             schema=PDB_SCHEMA, printer=PDB_PRINTER, short=("pdb",), status=True,
             extra={"admit": admit_pdb}),
    _builtin("apps", "v1", "replicasets", "ReplicaSet", namespaced=True,
             schema=REPLICA_SET_SCHEMA, printer=REPLICA_SET_PRINTER, short=("rs",),
             categories=("all",), status=True),
    _builtin("apps", "v1", "daemonsets", "DaemonSet", namespaced=True,
             schema=DAEMON_SET_SCHEMA, printer=DAEMON_SET_PRINTER, short=("ds",),
             categories=("all",), status=True),
    _builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions",
             "CustomResourceDefinition", namespaced=False, schema=CRD_SCHEMA,
             printer=CRD_PRINTER, short=("crd", "crds"), categories=("api-extensions",),
             status=True),
)

# (group, resource) -> printer, for callers that hold no ResourceInfo.
BUILTIN_PRINTERS: dict[tuple[str, str], TablePrinter] = {
    (info.group, info.resource): info.extra["printer"] for info in BUILTINS
}
