"""MachineSet pure helpers: deletion order and priorities, machine names, the template hash."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shipyard.controllers.msutil import (
    delete_priority,
    machine_name,
    machines_to_delete,
    set_condition,
    template_hash,
    templates_equal,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def machine(name: str, age_days: float = 1.0, *, healthy: bool = True,
            annotated: bool = False, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "creationTimestamp": (NOW - timedelta(days=age_days)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if annotated:
        meta["annotations"] = {"cluster.x-k8s.io/delete-machine": ""}
    if deleting:
        meta["deletionTimestamp"] = "2026-06-01T00:00:00Z"
    status: dict[str, Any] = {"nodeRef": {"name": name}} if healthy else {}
    return {"metadata": meta, "status": status}


def test_priorities_by_reason() -> None:
    assert delete_priority(machine("a", deleting=True), at=NOW) == 100
    assert delete_priority(machine("a", annotated=True), at=NOW) == 75
    assert delete_priority(machine("a", healthy=False), at=NOW) == 50
    assert delete_priority(machine("a"), at=NOW) == 20
    failed = machine("a")
    set_condition(failed, "HealthCheckSucceeded", "False", "UnhealthyNode")
    assert delete_priority(failed, at=NOW) == 50


def test_oldest_and_newest() -> None:
    ms = [machine("young", 1), machine("old", 30), machine("mid", 10)]
    assert [m["metadata"]["name"] for m in machines_to_delete(ms, 2, "Oldest", NOW)] == [
        "old", "mid"]
    assert [m["metadata"]["name"] for m in machines_to_delete(ms, 2, "Newest", NOW)] == [
        "young", "mid"]
    future = machine("future", -1)
    assert delete_priority(future, "Oldest", NOW) == 0


@pytest.mark.parametrize("order", ["Random", "Oldest", "Newest"])
def test_annotation_and_unhealthy_go_first_whatever_the_order(order: str) -> None:
    ms = [machine(f"m{i}", i) for i in range(1, 7)]
    ms.append(machine("sick", 3, healthy=False))
    ms.append(machine("marked", 2, annotated=True))
    picked = machines_to_delete(ms, 2, order, NOW, random.Random(7))
    assert [m["metadata"]["name"] for m in picked] == ["marked", "sick"]
    assert machines_to_delete(ms, 0, order, NOW) == []


def test_random_is_spread() -> None:
    ms = [machine(f"m{i}") for i in range(5)]
    rng = random.Random(1)
    seen = {machines_to_delete(ms, 1, "Random", NOW, rng)[0]["metadata"]["name"]
            for _ in range(50)}
    assert len(seen) > 1


def test_machine_names() -> None:
    rng = random.Random(3)
    name = machine_name("ms-a", rng=rng)
    assert name.startswith("ms-a-") and len(name) == len("ms-a-") + 5
    assert all(c in "bcdfghjklmnpqrstvwxz2456789" for c in name[5:])
    templ = machine_name("ms-a", "{{ .machineSet.name }}-w-{{ .random }}", rng=rng)
    assert templ.startswith("ms-a-w-") and len(templ) == len("ms-a-w-") + 5
    assert machine_name("ms", "{{.cluster.name}}-x", cluster_name="c1") == "c1-x"


def test_template_hash_ignores_in_place_fields() -> None:
    base: dict[str, Any] = {"metadata": {"labels": {"a": "1"}},
                            "spec": {"clusterName": "c", "version": "v1.33.0",
                                     "bootstrap": {"dataSecretName": "s"}}}
    relabelled = {"metadata": {"labels": {"a": "2"}, "annotations": {"x": "y"}},
                  "spec": {**base["spec"], "deletion": {"nodeDrainTimeoutSeconds": 5},
                           "minReadySeconds": 3}}
    upgraded = {"metadata": {}, "spec": {**base["spec"], "version": "v1.34.0"}}
    assert template_hash(base) == template_hash(relabelled)
    assert templates_equal(base, relabelled)
    assert template_hash(base) != template_hash(upgraded)
    assert not templates_equal(base, upgraded)
    assert template_hash(base).isdigit()


def test_set_condition_keeps_transition_time() -> None:
    obj: dict[str, Any] = {"metadata": {"generation": 2}}
    assert set_condition(obj, "Ready", "False", "NotReady", at=NOW)
    assert not set_condition(obj, "Ready", "False", "NotReady", at=NOW + timedelta(hours=1))
    c = obj["status"]["conditions"][0]
    assert c["lastTransitionTime"] == "2026-06-01T00:00:00Z" and c["observedGeneration"] == 2
    assert set_condition(obj, "Ready", "True", "Ready", at=NOW + timedelta(hours=1))
    assert obj["status"]["conditions"][0]["lastTransitionTime"] == "2026-06-01T01:00:00Z"
