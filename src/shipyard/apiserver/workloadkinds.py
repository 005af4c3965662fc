"""Pods, PodDisruptionBudgets, ReplicaSets and DaemonSets as built-in kinds: schemas and printers.

Shipyard serves these so that Nodes can be drained as upstream drains them: ``kubectl drain`` and
the Machine controller list a Node's Pods (field selector ``spec.nodeName``), look a Pod's
DaemonSet up, and evict through ``pods/eviction`` (`eviction`), which honours
PodDisruptionBudgets (`pods`, `disruption`). No kubelet, scheduler or workload controller runs:
these objects are stored and served as written. Pod schemas type the fields Shipyard and kubectl
read (selectors, printers, list merge keys) and preserve everything else as sent. The records
themselves are in `builtins.BUILTINS`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shipyard.apiserver.builtinschema import (
    BOOL,
    INT32,
    INT64,
    OPAQUE,
    QUANTITY,
    STR,
    STR_LIST,
    TIME,
    Obj,
    Schema,
    column,
    conditions_schema,
    field_of,
    kind_schema,
    list_schema,
    map_schema,
    meta_of,
    obj_schema,
)
from shipyard.apiserver.tables import AGE_COLUMN, NAME_COLUMN, TablePrinter, since

# Pods carry far more fields than Shipyard acts on: the parts it reads are typed (so field
# selectors, printers and list merge keys work) and the rest is preserved as sent.
_OPEN: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
_CONTAINER = {
    **obj_schema({
        "name": STR, "image": STR, "command": STR_LIST, "args": STR_LIST, "workingDir": STR,
        "imagePullPolicy": STR,
        "terminationMessagePath": {**STR, "default": "/dev/termination-log"},
        "terminationMessagePolicy": {**STR, "default": "File"},
        "ports": {**list_schema(obj_schema({"name": STR, "containerPort": INT32,
                                            "protocol": STR, "hostPort": INT32, "hostIP": STR},
                                           required=("containerPort",))),
                  "x-kubernetes-patch-strategy": "merge",
                  "x-kubernetes-patch-merge-key": "containerPort"},
        "resources": obj_schema({"limits": map_schema(QUANTITY), "requests": map_schema(QUANTITY)}),
    }),
    **_OPEN,
}
_CONTAINERS = {**list_schema(_CONTAINER), "x-kubernetes-patch-strategy": "merge",
               "x-kubernetes-patch-merge-key": "name"}
_CONTAINER_STATUS = {
    **obj_schema({"name": STR, "ready": BOOL, "restartCount": INT32, "image": STR, "imageID": STR,
            "containerID": STR, "started": BOOL, "state": OPAQUE, "lastState": OPAQUE}),
    **_OPEN,
}
POD_SCHEMA = kind_schema(
    {
        "spec": {
            **obj_schema({
                "containers": _CONTAINERS,
                "initContainers": _CONTAINERS,
                "nodeName": STR,
                "nodeSelector": {**map_schema(STR), "x-kubernetes-map-type": "atomic"},
                "restartPolicy": {**STR, "default": "Always"},
                "dnsPolicy": {**STR, "default": "ClusterFirst"},
                "schedulerName": {**STR, "default": "default-scheduler"},
                "terminationGracePeriodSeconds": {**INT64, "default": 30},
                "serviceAccountName": STR,
                "hostNetwork": BOOL,
                "priority": INT32,
                "priorityClassName": STR,
                "tolerations": list_schema(obj_schema({
                    "key": STR, "operator": STR, "value": STR, "effect": STR,
                    "tolerationSeconds": INT64})),
                "volumes": {
                    **list_schema({**obj_schema({"name": STR}, required=("name",)), **_OPEN}),
                    "x-kubernetes-patch-strategy": "merge,retainKeys",
                    "x-kubernetes-patch-merge-key": "name",
                },
            }),
            **_OPEN,
        },
        "status": {
            **obj_schema({
                "phase": STR,
                "conditions": conditions_schema("lastProbeTime", "lastTransitionTime"),
                "message": STR,
                "reason": STR,
                "nominatedNodeName": STR,
                "hostIP": STR,
                "podIP": STR,
                "podIPs": {**list_schema(obj_schema({"ip": STR}, required=("ip",))),
                           "x-kubernetes-patch-strategy": "merge",
                           "x-kubernetes-patch-merge-key": "ip"},
                "startTime": TIME,
                "qosClass": STR,
                "containerStatuses": list_schema(_CONTAINER_STATUS),
                "initContainerStatuses": list_schema(_CONTAINER_STATUS),
            }),
            **_OPEN,
        },
    },
    "Pod is a collection of containers that can run on a host. This resource is created by"
    " clients and scheduled onto hosts.",
)

_LABEL_SELECTOR = obj_schema(
    {
        "matchLabels": map_schema(STR),
        "matchExpressions": list_schema(obj_schema(
            {"key": STR, "operator": STR, "values": STR_LIST}, required=("key", "operator"))),
    },
    atomic=True,
)
PDB_SCHEMA = kind_schema(
    {
        "spec": obj_schema({
            "minAvailable": {"x-kubernetes-int-or-string": True},
            "maxUnavailable": {"x-kubernetes-int-or-string": True},
            "selector": {**_LABEL_SELECTOR, "x-kubernetes-patch-strategy": "replace"},
            "unhealthyPodEvictionPolicy": STR,
        }),
        "status": obj_schema({
            "observedGeneration": INT64,
            "disruptedPods": map_schema(TIME),
            "disruptionsAllowed": INT32,
            "currentHealthy": INT32,
            "desiredHealthy": INT32,
            "expectedPods": INT32,
            "conditions": conditions_schema("lastTransitionTime"),
        }),
    },
    "PodDisruptionBudget is an object to define the max disruption that can be caused to a"
    " collection of pods",
)

# apps/v1 ReplicaSet and DaemonSet are served so that Pods can name their controllers and
# ``kubectl drain`` can look a Pod's DaemonSet up; Shipyard runs no controller for them, so only
# the fields clients read are typed.
_WORKLOAD_STATUS = {
    **obj_schema({k: INT32 for k in ("replicas", "readyReplicas", "availableReplicas",
                               "fullyLabeledReplicas", "currentNumberScheduled",
                               "desiredNumberScheduled", "numberReady", "numberAvailable",
                               "numberMisscheduled", "updatedNumberScheduled",
                               "numberUnavailable")}
           | {"observedGeneration": INT64, "conditions": conditions_schema("lastTransitionTime")}),
    **_OPEN,
}


def _workload_schema(desc: str, replicas: bool) -> Schema:
    spec: dict[str, Schema] = {"selector": _LABEL_SELECTOR, "template": OPAQUE,
                               "minReadySeconds": INT32}
    if replicas:
        spec["replicas"] = INT32
    return kind_schema({"spec": {**obj_schema(spec), **_OPEN}, "status": _WORKLOAD_STATUS}, desc)


REPLICA_SET_SCHEMA = _workload_schema(
    "ReplicaSet ensures that a specified number of pod replicas are running at any given time.",
    replicas=True)
DAEMON_SET_SCHEMA = _workload_schema(
    "DaemonSet represents the configuration of a daemon set.", replicas=False)


# ---------------------------------------------------------------------------------------------
# printers (pkg/printers/internalversion/printers.go)


def _pod_cells(obj: Obj, now: datetime) -> list[Any]:
    """printPod, without the restart's "(5m ago)" suffix and sidecar subtleties."""
    meta, status = meta_of(obj), obj.get("status") or {}
    statuses = [s for s in status.get("containerStatuses") or [] if isinstance(s, dict)]
    total = len(field_of(obj, "spec", "containers") or [])
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
    gates = field_of(obj, "spec", "readinessGates") or []
    gate_text = "<none>"
    if gates:
        true = {c.get("type") for c in status.get("conditions") or []
                if isinstance(c, dict) and c.get("status") == "True"}
        gate_text = f"{sum(1 for g in gates if g.get('conditionType') in true)}/{len(gates)}"
    return [meta.get("name", ""), f"{ready}/{total}", reason, str(restarts),
            since(meta.get("creationTimestamp"), now), status.get("podIP") or "<none>",
            field_of(obj, "spec", "nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>", gate_text]


def _pdb_cells(obj: Obj, now: datetime) -> list[Any]:
    spec = obj.get("spec") or {}

    def text(key: str) -> str:
        value = spec.get(key)
        return "N/A" if value is None else str(value)

    return [meta_of(obj).get("name", ""), text("minAvailable"), text("maxUnavailable"),
            int(field_of(obj, "status", "disruptionsAllowed") or 0),
            since(meta_of(obj).get("creationTimestamp"), now)]


def _replica_set_cells(obj: Obj, now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    return [meta_of(obj).get("name", ""), int(field_of(obj, "spec", "replicas") or 0),
            int(status.get("replicas") or 0), int(status.get("readyReplicas") or 0),
            since(meta_of(obj).get("creationTimestamp"), now)]


def _daemon_set_cells(obj: Obj, now: datetime) -> list[Any]:
    status = obj.get("status") or {}
    selector = field_of(obj, "spec", "template", "spec", "nodeSelector") or {}
    return [meta_of(obj).get("name", ""),
            *(int(status.get(k) or 0) for k in ("desiredNumberScheduled",
                                                "currentNumberScheduled", "numberReady",
                                                "updatedNumberScheduled", "numberAvailable")),
            ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>",
            since(meta_of(obj).get("creationTimestamp"), now)]


POD_PRINTER = TablePrinter(
    (
        NAME_COLUMN,
        column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        column("Status", "The aggregate status of the containers in this pod."),
        column("Restarts", "The number of times the containers in this pod have been restarted"
             " and when the last container in this pod has restarted."),
        AGE_COLUMN,
        column("IP", "IP address allocated to the pod. Routable at least within the cluster.", 1),
        column("Node", "Name of the Node this pod is scheduled onto.", 1),
        column("Nominated Node", "Name of the node this pod is nominated onto.", 1),
        column("Readiness Gates", "If specified, all readiness gates will be evaluated for pod"
             " readiness.", 1),
    ),
    _pod_cells,
)
PDB_PRINTER = TablePrinter(
    (
        NAME_COLUMN,
        column("Min Available", "The minimum number of pods that must be available"),
        column("Max Unavailable", "The maximum number of pods that may be unavailable"),
        column("Allowed Disruptions", "Calculated number of pods that may be disrupted at this"
             " time"),
        AGE_COLUMN,
    ),
    _pdb_cells,
)
REPLICA_SET_PRINTER = TablePrinter(
    (NAME_COLUMN, column("Desired", "Number of desired pods."),
     column("Current", "Number of actual replicas."), column("Ready", "Number of ready replicas."),
     AGE_COLUMN),
    _replica_set_cells,
)
DAEMON_SET_PRINTER = TablePrinter(
    (NAME_COLUMN,
     column("Desired", "The desired number of daemon pods."),
     column("Current", "The current number of daemon pods."),
     column("Ready", "The number of daemon pods that are ready."),
     column("Up-to-date", "The number of daemon pods that are Up-to-date."),
     column("Available", "The number of daemon pods that are available."),
     column("Node Selector", "Which nodes should run the daemon pods."),
     AGE_COLUMN),
    _daemon_set_cells,
)

# ---------------------------------------------------------------------------------------------
# what the records carry besides schema and printer

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
