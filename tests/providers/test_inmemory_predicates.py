"""machine_relevant: which Machine updates wake the InMemoryMachine it points to."""

from __future__ import annotations

import copy
from typing import Any

from shipyard.controllers.predicates import machine_relevant

MACHINE: dict[str, Any] = {
    "metadata": {"name": "m", "namespace": "ns", "resourceVersion": "1"},
    "spec": {"clusterName": "c", "bootstrap": {}},
    "status": {"phase": "Provisioning"},
}


def test_status_only_updates_are_ignored() -> None:
    new = copy.deepcopy(MACHINE)
    new["metadata"]["resourceVersion"] = "2"
    new["status"]["phase"] = "Provisioned"
    assert not machine_relevant(MACHINE, new)


def test_bootstrap_data_deletion_and_pause_are_relevant() -> None:
    booted = copy.deepcopy(MACHINE)
    booted["spec"]["bootstrap"]["dataSecretName"] = "m"
    assert machine_relevant(MACHINE, booted)
    deleting = copy.deepcopy(MACHINE)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert machine_relevant(MACHINE, deleting)
    paused = copy.deepcopy(MACHINE)
    paused["metadata"]["annotations"] = {"cluster.x-k8s.io/paused": ""}
    assert machine_relevant(MACHINE, paused)
