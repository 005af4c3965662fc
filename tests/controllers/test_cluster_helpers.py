"""Pure pieces the Cluster and Machine controllers stand on: conditions, owner references,
contract version resolution, failure domains, patches and pause."""

from __future__ import annotations

from typing import Any

from shipyard.controllers import conditions, ownership, pausing
from shipyard.controllers.cluster import _failure_domains, provisioned
from shipyard.controllers.external import contract_version
from shipyard.controllers.patching import add_finalizer, remove_finalizer


def obj(**meta: Any) -> dict[str, Any]:
    return {"apiVersion": "cluster.x-k8s.io/v1beta2", "kind": "Cluster",
            "metadata": {"name": "c", "namespace": "n", "uid": "u1", "generation": 3, **meta}}


def test_set_condition_moves_transition_time_only_on_status_change() -> None:
    o = obj()
    assert conditions.set_condition(o, "Ready", "False", "NotReady", "waiting")
    first = dict(conditions.get_condition(o, "Ready") or {})
    assert first["observedGeneration"] == 3
    first["lastTransitionTime"] = "2000-01-01T00:00:00Z"
    o["status"]["conditions"][0]["lastTransitionTime"] = "2000-01-01T00:00:00Z"
    assert conditions.set_condition(o, "Ready", "False", "NotReady", "still waiting")
    assert conditions.get_condition(o, "Ready")["lastTransitionTime"] == (  # type: ignore[index]
        "2000-01-01T00:00:00Z")
    assert not conditions.set_condition(o, "Ready", "False", "NotReady", "still waiting")
    assert conditions.set_condition(o, "Ready", "True", "Ready")
    assert conditions.get_condition(o, "Ready")["lastTransitionTime"] != (  # type: ignore[index]
        "2000-01-01T00:00:00Z")
    assert conditions.is_true(o, "Ready") and not conditions.is_false(o, "Ready")
    assert len(o["status"]["conditions"]) == 1


def test_v1beta1_conditions_live_under_deprecated_and_drop_reason_when_true() -> None:
    o = obj()
    conditions.set_v1beta1_condition(o, "Ready", "False", "Waiting", "msg", severity="Info")
    c = conditions.get_v1beta1_condition(o, "Ready")
    assert c is not None and c["severity"] == "Info" and c["reason"] == "Waiting"
    conditions.set_v1beta1_condition(o, "Ready", "True", "Waiting", severity="Info")
    c = conditions.get_v1beta1_condition(o, "Ready")
    assert c is not None and set(c) == {"type", "status", "lastTransitionTime"}
    assert "conditions" not in o["status"]


def test_ready_of_reads_both_condition_shapes() -> None:
    v1 = {"status": {"deprecated": {"v1beta1": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "Booting"}]}}}}
    v2 = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready"}]}}
    assert conditions.ready_of(v1) == ("False", "Booting", "")
    assert conditions.ready_of(v2) == ("True", "Ready", "")
    assert conditions.ready_of({}) is None


def test_owner_references_are_matched_by_group_kind_and_name() -> None:
    child: dict[str, Any] = {"metadata": {}}
    owner = obj()
    assert ownership.ensure_owner_reference(child, ownership.owner_reference(owner,
                                                                             controller=True))
    assert not ownership.ensure_owner_reference(child, ownership.owner_reference(
        owner, controller=True))
    moved = {**owner, "apiVersion": "cluster.x-k8s.io/v1beta1"}
    assert ownership.ensure_owner_reference(child, ownership.owner_reference(moved,
                                                                             controller=True))
    assert len(child["metadata"]["ownerReferences"]) == 1
    assert ownership.is_controlled_by(child, owner)
    assert ownership.has_owner(child, "cluster.x-k8s.io", ("Cluster",))
    assert not ownership.has_owner(child, "cluster.x-k8s.io", ("MachineSet",))
    assert ownership.remove_owner_reference(child, owner)
    assert ownership.controller_of(child) is None


def test_cluster_label() -> None:
    o: dict[str, Any] = {"metadata": {}}
    assert ownership.ensure_cluster_label(o, "c1")
    assert not ownership.ensure_cluster_label(o, "c1")
    assert ownership.cluster_name_of(o) == "c1"


def crd(labels: dict[str, str], versions: list[tuple[str, bool, bool]]) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": {"versions": [
        {"name": n, "served": s, "storage": st} for n, s, st in versions]}}


def test_contract_version_prefers_the_newest_contract_label() -> None:
    both = crd({"cluster.x-k8s.io/v1beta1": "v1alpha4_v1beta1",
                "cluster.x-k8s.io/v1beta2": "v1beta2"},
               [("v1beta1", True, True), ("v1beta2", True, False)])
    assert contract_version(both) == "v1beta2"
    old = crd({"cluster.x-k8s.io/v1beta1": "v1alpha4_v1beta1"},
              [("v1alpha4", True, False), ("v1beta1", True, True)])
    assert contract_version(old) == "v1beta1"
    unserved = crd({"cluster.x-k8s.io/v1beta1": "v1beta1"},
                   [("v1beta1", False, False), ("v1alpha1", True, True)])
    assert contract_version(unserved) == "v1alpha1"
    assert contract_version(crd({}, [("v2", True, True)])) == "v2"


def test_failure_domains_accept_the_v1beta1_map_and_the_v1beta2_list() -> None:
    assert _failure_domains({"b": {"controlPlane": True}, "a": {}}) == [
        {"name": "a"}, {"name": "b", "controlPlane": True}]
    assert _failure_domains([{"name": "z"}, {"name": "y"}]) == [{"name": "y"}, {"name": "z"}]
    assert _failure_domains({}) is None


def test_provisioned_reads_v1beta2_and_v1beta1_fields() -> None:
    assert provisioned({"status": {"initialization": {"provisioned": True}}})
    assert provisioned({"status": {"ready": True}})
    assert not provisioned({"status": {}})


def test_finalizers_and_pause() -> None:
    o = obj()
    assert add_finalizer(o, "f") and not add_finalizer(o, "f")
    assert remove_finalizer(o, "f") and not remove_finalizer(o, "f")
    assert not pausing.is_paused(None, o)
    assert pausing.is_paused({"spec": {"paused": True}}, o)
    o["metadata"]["annotations"] = {"cluster.x-k8s.io/paused": ""}
    assert pausing.is_paused(None, o)
    assert pausing.set_paused_condition(None, o)
    assert conditions.get_condition(o, "Paused")["reason"] == "Paused"  # type: ignore[index]
