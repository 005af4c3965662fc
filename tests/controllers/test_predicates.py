"""cluster_update_relevant: which Cluster updates wake a cluster's Machines."""

from __future__ import annotations

import copy
from typing import Any

from shipyard.controllers.predicates import (
    cluster_update_relevant,
    machine_update_relevant_to_cluster,
)

CLUSTER: dict[str, Any] = {
    "apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
    "metadata": {"name": "c", "namespace": "ns", "generation": 1, "resourceVersion": "5"},
    "spec": {"paused": False},
    "status": {"phase": "Provisioned", "initialization": {"infrastructureProvisioned": True},
               "workers": {"replicas": 3, "readyReplicas": 1},
               "conditions": [{"type": "Available", "status": "False"},
                              {"type": "ControlPlaneInitialized", "status": "False"}]},
}


def changed(path: list[str | int], value: Any) -> dict[str, Any]:
    new = copy.deepcopy(CLUSTER)
    target: Any = new
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return new


def test_status_counters_and_summary_conditions_are_not_relevant() -> None:
    new = changed(["status", "workers", "readyReplicas"], 2)
    new["metadata"]["resourceVersion"] = "6"
    new["status"]["conditions"][0]["status"] = "True"
    assert not cluster_update_relevant(CLUSTER, new)


def test_spec_deletion_initialization_and_control_plane_are_relevant() -> None:
    assert cluster_update_relevant(CLUSTER, changed(["spec", "paused"], True))
    assert cluster_update_relevant(
        CLUSTER, changed(["metadata", "deletionTimestamp"], "2026-01-01T00:00:00Z"))
    assert cluster_update_relevant(
        CLUSTER, changed(["status", "initialization", "controlPlaneInitialized"], True))
    assert cluster_update_relevant(CLUSTER, changed(["status", "phase"], "Deleting"))
    new = copy.deepcopy(CLUSTER)
    new["status"]["conditions"][1]["status"] = "True"
    assert cluster_update_relevant(CLUSTER, new)


def test_machine_updates_reach_the_cluster_only_when_its_summary_inputs_change() -> None:
    machine: dict[str, Any] = {
        "metadata": {"name": "m", "labels": {"cluster.x-k8s.io/cluster-name": "c"},
                     "resourceVersion": "1"},
        "status": {"phase": "Provisioning",
                   "conditions": [{"type": "Ready", "status": "False", "message": "a"}]}}
    touched = copy.deepcopy(machine)
    touched["metadata"]["resourceVersion"] = "2"
    touched["status"]["conditions"][0]["message"] = "b"
    assert not machine_update_relevant_to_cluster(machine, touched)
    ready = copy.deepcopy(touched)
    ready["status"]["conditions"][0]["status"] = "True"
    assert machine_update_relevant_to_cluster(touched, ready)
    running = copy.deepcopy(machine)
    running["status"]["phase"] = "Running"
    assert machine_update_relevant_to_cluster(machine, running)
    relabelled = copy.deepcopy(machine)
    relabelled["metadata"]["labels"]["cluster.x-k8s.io/control-plane"] = ""
    assert machine_update_relevant_to_cluster(machine, relabelled)
