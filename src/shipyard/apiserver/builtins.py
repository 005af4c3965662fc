"""The kinds compiled into the server: what kube-apiserver would serve for them, as `ResourceInfo`.

Only the kinds Cluster API and its clients touch are built in: Namespace, Secret, ConfigMap, Event,
Node, ServiceAccount and Pod (core/v1), Lease, events.k8s.io Event, policy/v1 PodDisruptionBudget
and apps/v1 ReplicaSet and DaemonSet (Machine deletion drains Nodes through the Eviction API, and
``kubectl drain`` reads a Pod's controller), and CustomResourceDefinition. Schemas are written in
`builtinschema`'s vocabulary; those drain-related kinds' schemas and printers are in
`workloadkinds`. Each record carries

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

from shipyard.apiserver.builtinschema import (
    BOOL,
    BYTES,
    INT32,
    INT64,
    LOCAL_OBJECT_REFERENCE,
    MICRO_TIME,
    OBJECT_REFERENCE,
    OPAQUE,
    QUANTITY,
    STR,
    STR_LIST,
    TIME,
    Obj,
    Schema,
)
from shipyard.apiserver.builtinschema import column as _col
from shipyard.apiserver.builtinschema import conditions_schema as _conditions
from shipyard.apiserver.builtinschema import field_of as _field
from shipyard.apiserver.builtinschema import kind_schema as _kind
from shipyard.apiserver.builtinschema import list_schema as _list
from shipyard.apiserver.builtinschema import map_schema as _map
from shipyard.apiserver.builtinschema import meta_of as _meta
from shipyard.apiserver.builtinschema import obj_schema as _obj
from shipyard.apiserver.pods import admit_pdb, admit_pod
from shipyard.apiserver.resources import PrinterColumn, ResourceInfo
from shipyard.apiserver.reviews import REVIEW_SCHEMA
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
from shipyard.apiserver.workloadkinds import (
    DAEMON_SET_PRINTER,
    DAEMON_SET_SCHEMA,
    EVICTION_SUBRESOURCE,
    PDB_PRINTER,
    PDB_SCHEMA,
    POD_FIELD_LABELS,
    POD_PRINTER,
    POD_SCHEMA,
    REPLICA_SET_PRINTER,
    REPLICA_SET_SCHEMA,
)

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


def _name_age_cells(obj: Obj, now: datetime) -> list[Any]:
    return [_meta(obj).get("name", ""), since(_meta(obj).get("creationTimestamp"), now)]


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
REVIEW_PRINTER = TablePrinter((NAME_COLUMN, AGE_COLUMN), _name_age_cells)
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
CRD_PRINTER = TablePrinter(
    (
        NAME_COLUMN,
        PrinterColumn("Created At", "date", "", description=CREATION_TIMESTAMP_DESCRIPTION),
    ),
    _crd_cells,
)

# ---------------------------------------------------------------------------------------------
# the records

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
    *(_builtin(group, "v1", resource, kind, namespaced=False, schema=REVIEW_SCHEMA,
               printer=REVIEW_PRINTER, verbs=("create",), extra={"review": True})
      for group, resource, kind in (
          ("authorization.k8s.io", "selfsubjectaccessreviews", "SelfSubjectAccessReview"),
          ("authorization.k8s.io", "selfsubjectrulesreviews", "SelfSubjectRulesReview"),
          ("authentication.k8s.io", "selfsubjectreviews", "SelfSubjectReview"))),
    _builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions",
             "CustomResourceDefinition", namespaced=False, schema=CRD_SCHEMA,
             printer=CRD_PRINTER, short=("crd", "crds"), categories=("api-extensions",),
             status=True),
)

# (group, resource) -> printer, for callers that hold no ResourceInfo.
BUILTIN_PRINTERS: dict[tuple[str, str], TablePrinter] = {
    (info.group, info.resource): info.extra["printer"] for info in BUILTINS
}
