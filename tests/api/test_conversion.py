"""v1beta1 <-> v1beta2 conversion: upstream's renames, and lossless round trips both ways."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.api.core import v1beta1, v1beta2
from shipyard.api.core.constants import CONVERSION_DATA_ANNOTATION as DATA
from shipyard.api.core.conversion import ConversionError, convert, to_v1beta1, to_v1beta2
from shipyard.api.core.durations import format_seconds, parse_seconds
from shipyard.api.meta import to_dict
from tests.api import examples as ex

PAIRS = [(ex.cluster_v1beta1, ex.cluster_v1beta2),
         (ex.machine_deployment_v1beta1, ex.machine_deployment_v1beta2),
         (ex.mhc_v1beta1, ex.mhc_v1beta2)]
IDS = ["Cluster", "MachineDeployment", "MachineHealthCheck"]


def resolve_v1beta1(group: str, kind: str) -> str:
    return f"{group}/v1beta1"


def without_data(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    annotations = obj.get("metadata", {}).get("annotations", {})
    annotations.pop(DATA, None)
    if "annotations" in obj.get("metadata", {}) and not annotations:
        del obj["metadata"]["annotations"]
    return obj


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=IDS)
def test_v1beta1_converts_to_its_v1beta2_equivalent(old: Any, new: Any) -> None:
    assert without_data(to_v1beta2(old())) == new()


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=IDS)
def test_round_trip_from_v1beta1_is_exact(old: Any, new: Any) -> None:
    assert to_v1beta1(to_v1beta2(old())) == old()


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=IDS)
def test_round_trip_from_v1beta2_is_exact(old: Any, new: Any) -> None:
    down = to_v1beta1(new(), resolve_api_version=resolve_v1beta1)
    assert to_v1beta2(down, resolve_api_version=resolve_v1beta1) == new()


def test_down_conversion_writes_upstream_v1beta1_shape() -> None:
    down = to_v1beta1(ex.mhc_v1beta2(), resolve_api_version=resolve_v1beta1)
    assert down["spec"]["maxUnhealthy"] == "40%"
    assert down["spec"]["nodeStartupTimeout"] == "10m0s"
    assert down["spec"]["unhealthyConditions"][0] == {
        "type": "Ready", "status": "Unknown", "timeout": "5m0s"}
    assert down["spec"]["remediationTemplate"]["namespace"] == "default"
    md = to_v1beta1(ex.machine_deployment_v1beta2(), resolve_api_version=resolve_v1beta1)
    assert md["spec"]["strategy"]["rollingUpdate"] == {
        "maxSurge": 1, "maxUnavailable": "25%", "deletePolicy": "Oldest"}
    assert md["spec"]["minReadySeconds"] == 10
    infra = md["spec"]["template"]["spec"]["infrastructureRef"]
    assert infra["apiVersion"] == "infrastructure.cluster.x-k8s.io/v1beta1"
    v1beta1.MachineDeployment.model_validate(md)


def test_v1beta1_only_fields_are_kept_in_the_annotation() -> None:
    old = ex.machine_deployment_v1beta1()
    old["spec"]["revisionHistoryLimit"] = 1
    old["spec"]["progressDeadlineSeconds"] = 600
    up = to_v1beta2(old)
    assert "revisionHistoryLimit" not in up["spec"]
    assert json.loads(up["metadata"]["annotations"][DATA])["spec"]["revisionHistoryLimit"] == 1
    assert to_v1beta1(up) == old


def test_edited_object_keeps_target_only_fields_from_the_annotation() -> None:
    new = ex.machine_deployment_v1beta2()
    new["spec"]["template"]["spec"]["taints"] = [
        {"key": "gpu", "effect": "NoSchedule", "propagation": "Always"}]
    down = to_v1beta1(new, resolve_api_version=resolve_v1beta1)
    assert "taints" not in down["spec"]["template"]["spec"]
    down["spec"]["replicas"] = 7  # a v1beta1 client edits it
    up = to_v1beta2(down)
    assert up["spec"]["replicas"] == 7
    assert up["spec"]["template"]["spec"]["taints"] == new["spec"]["template"]["spec"]["taints"]


def test_status_moves_between_v1beta1_and_v1beta2_shapes() -> None:
    v1_condition = {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}
    v2_condition = {"type": "Available", "status": "True", "reason": "Available", "message": "",
                    "lastTransitionTime": "2025-01-01T00:00:00Z"}
    old = ex.machine_deployment_v1beta1() | {"status": {
        "replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "phase": "Running",
        "conditions": [v1_condition],
        "v1beta2": {"conditions": [v2_condition], "readyReplicas": 3, "upToDateReplicas": 3}}}
    up = to_v1beta2(old)
    assert up["status"] == {
        "replicas": 3, "readyReplicas": 3, "upToDateReplicas": 3, "phase": "Running",
        "conditions": [v2_condition],
        "deprecated": {"v1beta1": {"conditions": [v1_condition], "readyReplicas": 2,
                                   "updatedReplicas": 3}}}
    v1beta2.MachineDeployment.model_validate(up)
    assert to_v1beta1(up) == old


def test_machine_status_and_cluster_failure_domains() -> None:
    machine = {"apiVersion": ex.V1, "kind": "Machine", "metadata": {"name": "m", "namespace": "n"},
               "spec": {"clusterName": "c", "bootstrap": {"dataSecretName": "s"},
                        "infrastructureRef": {"apiVersion": f"{ex.INFRA}/v1beta1",
                                              "kind": "DockerMachine", "name": "m",
                                              "namespace": "n"}},
               "status": {"bootstrapReady": True, "infrastructureReady": False,
                          "nodeRef": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}}
    up = to_v1beta2(machine)
    assert up["status"]["initialization"] == {"bootstrapDataSecretCreated": True,
                                              "infrastructureProvisioned": False}
    assert up["status"]["nodeRef"] == {"name": "node-1"}
    assert to_v1beta1(up) == machine

    cluster = ex.cluster_v1beta1() | {"status": {"failureDomains": {
        "b": {"controlPlane": True}, "a": {"attributes": {"zone": "a"}}}}}
    up = to_v1beta2(cluster)
    assert up["status"]["failureDomains"] == [
        {"name": "a", "attributes": {"zone": "a"}}, {"name": "b", "controlPlane": True}]
    assert to_v1beta1(up) == cluster


def test_unresolvable_reference_version_is_an_error() -> None:
    with pytest.raises(ConversionError, match="cannot resolve"):
        to_v1beta1(ex.cluster_v1beta2())


def test_wrong_kind_or_version_is_an_error() -> None:
    with pytest.raises(ConversionError):
        convert({"apiVersion": ex.V2, "kind": "Widget"}, "v1beta1")
    with pytest.raises(ConversionError):
        convert(ex.cluster_v1beta2() | {"apiVersion": "cluster.x-k8s.io/v1alpha4"}, "v1beta1")


@pytest.mark.parametrize(("text", "seconds"), [
    ("0s", 0), ("0", 0), ("45s", 45), ("10m", 600), ("10m0s", 600), ("1h30m", 5400),
    ("1.5h", 5400), ("1500ms", 1), ("-2m", -120)])
def test_durations_parse_as_go_does(text: str, seconds: int) -> None:
    assert parse_seconds(text) == seconds


@given(st.integers(min_value=-10**7, max_value=10**7))
def test_durations_format_and_parse_back(seconds: int) -> None:
    assert parse_seconds(format_seconds(seconds)) == seconds


# ------------------------------------------------------------------------------ property tests

names = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
durations = st.one_of(st.integers(0, 100000).map(format_seconds),
                      st.sampled_from(["10m", "1h", "30s", "90s", "0s"]))
int_or_string = st.one_of(st.integers(0, 10), st.sampled_from(["25%", "1", "100%"]))
groups = st.sampled_from(["infrastructure.cluster.x-k8s.io", "bootstrap.cluster.x-k8s.io",
                          "controlplane.cluster.x-k8s.io"])
deletion_orders = st.sampled_from(["Random", "Newest", "Oldest"])
versions = st.sampled_from(["v1beta1", "v1beta2", "v1alpha4"])


def optional(d: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=d)


@st.composite
def object_refs(draw: st.DrawFn) -> dict[str, Any]:
    ref = {"apiVersion": f"{draw(groups)}/{draw(versions)}", "kind": "Thing", "name": draw(names)}
    if draw(st.booleans()):
        ref["namespace"] = "ns"
    return ref


v1_conditions = st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["Ready", "InfrastructureReady"]),
     "status": st.sampled_from(["True", "False"]),
     "lastTransitionTime": st.just("2025-01-01T00:00:00Z")},
    optional={"severity": st.sampled_from(["Info", "Error"]), "reason": names}), max_size=2)
v2_conditions = st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["Ready", "Available"]), "status": st.sampled_from(["True", "False"]),
     "reason": st.just("Ready"), "message": st.just(""),
     "lastTransitionTime": st.just("2025-01-01T00:00:00Z")}), max_size=2)

machine_spec_v1 = st.fixed_dictionaries(
    {"clusterName": names, "bootstrap": optional({"configRef": object_refs(),
                                                  "dataSecretName": names}),
     "infrastructureRef": object_refs()},
    optional={"version": st.just("v1.33.0"), "providerID": names,
              "nodeDrainTimeout": durations, "nodeVolumeDetachTimeout": durations,
              "nodeDeletionTimeout": durations, "futureField": st.integers()})

template_v1 = st.fixed_dictionaries(
    {"spec": machine_spec_v1}, optional={"metadata": st.just({"labels": {"a": "b"}})})

md_spec_v1 = st.fixed_dictionaries(
    {"clusterName": names, "selector": st.just({"matchLabels": {"a": "b"}}),
     "template": template_v1},
    optional={"replicas": st.integers(0, 5), "rolloutAfter": st.just("2025-01-01T00:00:00Z"),
              "minReadySeconds": st.integers(0, 100), "revisionHistoryLimit": st.integers(0, 3),
              "progressDeadlineSeconds": st.integers(0, 600), "paused": st.booleans(),
              "machineNamingStrategy": st.just({"template": "{{ .random }}"}),
              # v1beta1 defaulting always sets strategy.type, which v1beta2 requires.
              "strategy": st.fixed_dictionaries({
                  "type": st.sampled_from(["RollingUpdate", "OnDelete"])}, optional={
                  "rollingUpdate": optional({"maxSurge": int_or_string,
                                             "maxUnavailable": int_or_string,
                                             "deletePolicy": deletion_orders}),
                  "remediation": optional({"maxInFlight": int_or_string})})})

md_status_v1 = optional({
    "replicas": st.integers(0, 5), "readyReplicas": st.integers(0, 5),
    "updatedReplicas": st.integers(0, 5), "availableReplicas": st.integers(0, 5),
    "unavailableReplicas": st.integers(0, 5), "phase": st.sampled_from(["Running", "ScalingUp"]),
    "selector": st.just("a=b"), "observedGeneration": st.integers(1, 5),
    "conditions": v1_conditions,
    "v1beta2": optional({"conditions": v2_conditions, "readyReplicas": st.integers(0, 5),
                         "availableReplicas": st.integers(0, 5),
                         "upToDateReplicas": st.integers(0, 5)})})

mhc_spec_v1 = st.fixed_dictionaries(
    {"clusterName": names, "selector": st.just({"matchLabels": {"a": "b"}})},
    optional={"maxUnhealthy": int_or_string, "unhealthyRange": st.just("[1-3]"),
              "nodeStartupTimeout": durations,
              "unhealthyConditions": st.lists(st.fixed_dictionaries(
                  {"type": st.just("Ready"), "status": st.sampled_from(["False", "Unknown"]),
                   "timeout": durations}), max_size=2),
              "remediationTemplate": object_refs()})


@st.composite
def v1beta1_objects(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["MachineDeployment", "MachineSet", "Machine",
                                 "MachineHealthCheck"]))
    metadata: dict[str, Any] = {"name": draw(names), "namespace": "ns"}
    if draw(st.booleans()):
        metadata["annotations"] = {"x": "y"}
    obj: dict[str, Any] = {"apiVersion": ex.V1, "kind": kind, "metadata": metadata}
    if kind == "MachineDeployment":
        obj["spec"] = draw(md_spec_v1)
        obj["status"] = draw(md_status_v1)
    elif kind == "MachineSet":
        spec = draw(md_spec_v1)
        obj["spec"] = {k: v for k, v in spec.items()
                       if k in ("clusterName", "selector", "template", "replicas",
                                "minReadySeconds", "machineNamingStrategy")}
        if draw(st.booleans()):
            obj["spec"]["deletePolicy"] = "Newest"
    elif kind == "Machine":
        obj["spec"] = draw(machine_spec_v1)
    else:
        obj["spec"] = draw(mhc_spec_v1)
    if not obj.get("status"):
        obj.pop("status", None)
    return obj


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(v1beta1_objects())
def test_property_v1beta1_round_trip_is_lossless(obj: dict[str, Any]) -> None:
    up = to_v1beta2(obj)
    assert up["apiVersion"] == ex.V2
    assert to_v1beta1(up) == obj


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(v1beta1_objects())
def test_property_v1beta2_round_trip_is_lossless(obj: dict[str, Any]) -> None:
    # A v1beta2 object as a v1beta2 client would write it (no annotation), then down and up.
    new = without_data(to_v1beta2(obj))
    down = to_v1beta1(new, resolve_api_version=resolve_v1beta1)
    assert to_v1beta2(down, resolve_api_version=resolve_v1beta1) == new


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(v1beta1_objects())
def test_property_converted_objects_fit_the_models(obj: dict[str, Any]) -> None:
    up = without_data(to_v1beta2(obj))
    model = v1beta2.KINDS[up["kind"]].model_validate(up)
    assert to_dict(model) == up
