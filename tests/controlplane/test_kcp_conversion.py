"""KubeadmControlPlaneConverter: upstream's v1beta1 ⇄ v1beta2 moves for KubeadmControlPlane and
its template, the kubeadm spec converted as the bootstrap provider does, references resolved
going down, and lossless round trips from either version (through the conversion-data
annotation where one version cannot say what the other did)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.api.converting import ConversionError, Converter
from shipyard.api.core.constants import CONVERSION_DATA_ANNOTATION
from shipyard.cli.apiserver import group_converters, new_api_server
from shipyard.controlplane.kubeadm import types
from shipyard.controlplane.kubeadm.conversion import (
    V1BETA1,
    V1BETA2,
    KubeadmControlPlaneConverter,
    convert,
)
from shipyard.storage import SQLiteStore

Obj = dict[str, Any]
INFRA = "infrastructure.cluster.x-k8s.io"


def resolve(group: str, kind: str) -> str | None:
    """As Shipyard's server answers with the Docker CRDs installed: their storage version."""
    return f"{group}/v1beta2" if group in (INFRA, types.GROUP) else None


def up(obj: Obj) -> Obj:
    return convert(obj, V1BETA2, resolve_api_version=resolve)


def down(obj: Obj) -> Obj:
    return convert(obj, V1BETA1, resolve_api_version=resolve)


def _annotation(obj: Obj) -> Any:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(CONVERSION_DATA_ANNOTATION)
    return json.loads(raw) if raw else None


# Upstream's CAPD cluster template (test/infrastructure/docker/templates/cluster-template.yaml,
# Cluster API v1.10), with the variables filled in.
QUICK_START = """
apiVersion: controlplane.cluster.x-k8s.io/v1beta1
kind: KubeadmControlPlane
metadata: {name: capi-quickstart-control-plane, namespace: default}
spec:
  replicas: 3
  version: v1.32.0
  machineTemplate:
    infrastructureRef:
      apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
      kind: DockerMachineTemplate
      name: capi-quickstart-control-plane
    nodeDrainTimeout: 5m
  kubeadmConfigSpec:
    clusterConfiguration:
      apiServer:
        certSANs: [localhost, 127.0.0.1, 0.0.0.0, host.docker.internal]
      controllerManager:
        extraArgs: {enable-hostpath-provisioner: "true"}
    initConfiguration:
      nodeRegistration:
        criSocket: unix:///var/run/containerd/containerd.sock
        kubeletExtraArgs:
          eviction-hard: nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%
    joinConfiguration:
      nodeRegistration:
        criSocket: unix:///var/run/containerd/containerd.sock
        kubeletExtraArgs:
          eviction-hard: nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%
  rolloutStrategy: {rollingUpdate: {maxSurge: 1}}
  remediationStrategy: {maxRetry: 5, retryPeriod: 2m0s, minHealthyPeriod: 2h0m0s}
  rolloutBefore: {certificatesExpiryDays: 21}
  machineNamingStrategy: {template: "{{ .kubeadmControlPlane.name }}-{{ .random }}"}
"""
EVICTION = [{"name": "eviction-hard",
             "value": "nodefs.available<0%,nodefs.inodesFree<0%,imagefs.available<0%"}]


def test_quick_start_moves_as_upstream() -> None:
    v1 = yaml.safe_load(QUICK_START)
    v2 = up(v1)
    assert v2["apiVersion"] == types.API_VERSION
    spec = v2["spec"]
    assert spec["machineTemplate"] == {"spec": {
        "infrastructureRef": {"apiGroup": INFRA, "kind": "DockerMachineTemplate",
                              "name": "capi-quickstart-control-plane"},
        "deletion": {"nodeDrainTimeoutSeconds": 300}}}
    kubeadm = spec["kubeadmConfigSpec"]
    assert kubeadm["clusterConfiguration"] == {
        "apiServer": {"certSANs": ["localhost", "127.0.0.1", "0.0.0.0", "host.docker.internal"]},
        "controllerManager": {"extraArgs": [{"name": "enable-hostpath-provisioner",
                                             "value": "true"}]}}
    for conf in ("initConfiguration", "joinConfiguration"):
        assert kubeadm[conf]["nodeRegistration"]["kubeletExtraArgs"] == EVICTION
    assert spec["rollout"] == {"before": {"certificatesExpiryDays": 21},
                               "strategy": {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxSurge": 1}}}
    assert spec["remediation"] == {"maxRetry": 5, "retryPeriodSeconds": 120,
                                   "minHealthyPeriodSeconds": 7200}
    assert spec["machineNaming"] == v1["spec"]["machineNamingStrategy"]
    assert (spec["replicas"], spec["version"]) == (3, "v1.32.0")
    for gone in ("rolloutStrategy", "remediationStrategy", "rolloutBefore",
                 "machineNamingStrategy"):
        assert gone not in spec
    # The reference's version, its namespace and "5m" (not Go's "5m0s") are only in the
    # annotation, which gives the manifest back exactly.
    assert _annotation(v2)["spec"] == v1["spec"]
    assert down(v2) == v1


def test_v1beta2_object_goes_down_as_upstream() -> None:
    v2: Obj = {
        "apiVersion": V1BETA2, "kind": "KubeadmControlPlane",
        "metadata": {"name": "cp", "namespace": "ns"},
        "spec": {
            "replicas": 1, "version": "v1.33.0",
            "machineTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {
                "infrastructureRef": {"apiGroup": INFRA, "kind": "DockerMachineTemplate",
                                      "name": "cp"},
                "readinessGates": [{"conditionType": "X"}],
                "deletion": {"nodeDrainTimeoutSeconds": 90, "nodeDeletionTimeoutSeconds": 0},
                "taints": [{"key": "k", "effect": "NoSchedule", "propagation": "Always"}]}},
            "kubeadmConfigSpec": {
                "clusterConfiguration": {"certificatesDir": "/etc/pki"},
                "initConfiguration": {"timeouts": {
                    "controlPlaneComponentHealthCheckSeconds": 240}}},
            "rollout": {"after": "2026-03-09T09:00:00Z", "strategy": {
                "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}}},
            "remediation": {"minHealthyPeriodSeconds": 3600}},
        "status": {
            "initialization": {"controlPlaneInitialized": True}, "replicas": 3,
            "readyReplicas": 3, "availableReplicas": 2, "upToDateReplicas": 3,
            "version": "v1.33.0", "selector": "cluster.x-k8s.io/control-plane",
            "lastRemediation": {"machine": "m1", "time": "2026-01-01T00:00:00Z",
                                "retryCount": 1},
            "conditions": [{"type": "Available", "status": "True", "reason": "Available",
                            "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "deprecated": {"v1beta1": {"readyReplicas": 2, "updatedReplicas": 3,
                                       "unavailableReplicas": 1}}}}
    v1 = down(v2)
    assert v1["apiVersion"] == V1BETA1
    assert "annotations" not in v1["metadata"]
    assert v1["spec"]["machineTemplate"] == {
        "metadata": {"labels": {"a": "b"}},
        "infrastructureRef": {"apiVersion": f"{INFRA}/v1beta2", "kind": "DockerMachineTemplate",
                              "namespace": "ns", "name": "cp"},
        "readinessGates": [{"conditionType": "X"}],
        "nodeDrainTimeout": "1m30s", "nodeDeletionTimeout": "0s",
        "taints": [{"key": "k", "effect": "NoSchedule", "propagation": "Always"}]}
    assert v1["spec"]["kubeadmConfigSpec"] == {
        "clusterConfiguration": {"certificatesDir": "/etc/pki",
                                 "apiServer": {"timeoutForControlPlane": "4m0s"}},
        "initConfiguration": {}}
    assert v1["spec"]["rolloutAfter"] == "2026-03-09T09:00:00Z"
    assert v1["spec"]["rolloutStrategy"] == {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxSurge": 0}}
    assert v1["spec"]["remediationStrategy"] == {"minHealthyPeriod": "1h0m0s"}
    assert "rollout" not in v1["spec"] and "remediation" not in v1["spec"]
    assert v1["status"] == {
        "initialized": True, "ready": True, "replicas": 3, "version": "v1.33.0",
        "selector": "cluster.x-k8s.io/control-plane",
        "readyReplicas": 2, "updatedReplicas": 3, "unavailableReplicas": 1,
        "lastRemediation": {"machine": "m1", "timestamp": "2026-01-01T00:00:00Z",
                            "retryCount": 1},
        "v1beta2": {"readyReplicas": 3, "availableReplicas": 2, "upToDateReplicas": 3,
                    "conditions": v2["status"]["conditions"]}}
    assert up(v1) == v2


def test_ready_is_rebuilt_from_the_deprecated_ready_replicas() -> None:
    v2: Obj = {"apiVersion": V1BETA2, "kind": "KubeadmControlPlane", "metadata": {"name": "c"},
               "status": {"replicas": 1, "readyReplicas": 1}}
    assert down(v2)["status"] == {"replicas": 1, "initialized": False, "ready": False,
                                  "v1beta2": {"readyReplicas": 1}}


def test_template_moves_without_reference() -> None:
    v1: Obj = {"apiVersion": V1BETA1, "kind": "KubeadmControlPlaneTemplate",
               "metadata": {"name": "t", "namespace": "ns"},
               "spec": {"template": {"metadata": {"labels": {"x": "y"}}, "spec": {
                   "machineTemplate": {"metadata": {"labels": {"a": "b"}},
                                       "nodeVolumeDetachTimeout": "30s"},
                   "kubeadmConfigSpec": {"joinConfiguration": {"discovery": {"timeout": "1m0s"}}},
                   "rolloutAfter": "2026-03-09T09:00:00Z"}}}}
    v2 = up(v1)
    spec = v2["spec"]["template"]["spec"]
    assert spec["machineTemplate"] == {"metadata": {"labels": {"a": "b"}},
                                       "spec": {"deletion": {"nodeVolumeDetachTimeoutSeconds": 30}}}
    assert spec["kubeadmConfigSpec"] == {"joinConfiguration": {
        "discovery": {}, "timeouts": {"tlsBootstrapSeconds": 60}}}
    assert spec["rollout"] == {"after": "2026-03-09T09:00:00Z"}
    assert v2["spec"]["template"]["metadata"] == {"labels": {"x": "y"}}
    assert down(v2) == v1
    # v1beta2 template fields v1beta1 has no place for survive in the annotation.
    spec["machineTemplate"]["spec"]["readinessGates"] = [{"conditionType": "Y"}]
    v1_again = down({**v2, "metadata": {"name": "t"}})
    assert "readinessGates" not in json.dumps(v1_again["spec"])
    assert up(v1_again)["spec"] == v2["spec"]


def test_edited_spec_keeps_the_reference_version_a_v1beta1_client_wrote() -> None:
    v2 = up(yaml.safe_load(QUICK_START))
    v2["spec"]["replicas"] = 5  # scaled by a v1beta2 client
    v2["status"] = {"replicas": 5}
    v1 = down(v2)
    assert v1["spec"]["replicas"] == 5
    assert v1["spec"]["machineTemplate"]["infrastructureRef"]["apiVersion"] == \
        f"{INFRA}/v1beta1"
    assert v1["spec"]["rolloutStrategy"]["type"] == "RollingUpdate"


def test_status_written_at_v1beta2_keeps_the_v1beta1_spec_as_written() -> None:
    v1 = yaml.safe_load(QUICK_START)
    v2 = up(v1)
    v2["status"] = {"initialization": {"controlPlaneInitialized": True}, "replicas": 3}
    back = down(v2)
    assert back["spec"] == v1["spec"]
    assert back["status"] == {"initialized": True, "ready": False, "replicas": 3}


def test_unresolvable_reference_is_a_conversion_error() -> None:
    v2 = up(yaml.safe_load(QUICK_START))
    del v2["metadata"]["annotations"]
    with pytest.raises(ConversionError, match="DockerMachineTemplate"):
        convert(v2, V1BETA1)  # no resolver: only Cluster API's own groups are known
    v2["spec"]["machineTemplate"]["spec"]["infrastructureRef"]["apiGroup"] = types.GROUP
    assert convert(v2, V1BETA1)["spec"]["machineTemplate"]["infrastructureRef"][
        "apiVersion"] == f"{types.GROUP}/v1beta2"


@pytest.mark.parametrize(("obj", "to"), [
    ({"apiVersion": V1BETA1, "kind": "KubeadmConfig"}, V1BETA2),
    ({"apiVersion": "controlplane.cluster.x-k8s.io/v1alpha4", "kind": "KubeadmControlPlane"},
     V1BETA2),
    ({"apiVersion": V1BETA2, "kind": "KubeadmControlPlane"}, "controlplane.cluster.x-k8s.io/v2"),
])
def test_other_kinds_and_versions_are_refused(obj: Obj, to: str) -> None:
    with pytest.raises(ConversionError):
        convert(obj, to)


def test_converter_is_registered_and_wired_to_the_server(tmp_path: Any) -> None:
    converter = group_converters()[types.GROUP]
    assert isinstance(converter, KubeadmControlPlaneConverter)
    assert isinstance(converter, Converter)
    server = new_api_server(SQLiteStore(tmp_path / "state.db"))
    wired = server.crds.converters[types.GROUP]
    assert isinstance(wired, KubeadmControlPlaneConverter)
    assert wired.resolve_api_version == server.resolve_api_version
    v1 = yaml.safe_load(QUICK_START)
    assert KubeadmControlPlaneConverter(resolve).convert(v1, V1BETA2) == up(v1)


# ------------------------------------------------------------------------------------ hypothesis

names = st.from_regex(r"[a-z]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
text = st.text(st.characters(codec="ascii", categories=("L", "N")), max_size=6)
string_maps = st.dictionaries(names, names, max_size=2)
metadata = st.fixed_dictionaries({}, optional={"labels": string_maps,
                                               "annotations": string_maps})
durations = st.sampled_from(["0s", "90s", "5m0s", "1h0m0s", "10m"])
seconds = st.integers(0, 7200)
times = st.just("2026-03-09T09:00:00Z")
taints = st.lists(st.fixed_dictionaries(
    {"key": names, "effect": st.sampled_from(["NoSchedule", "NoExecute"])},
    optional={"value": names, "propagation": st.sampled_from(["Always", "OnInitialization"])}),
    max_size=2, unique_by=lambda t: (t["key"], t["effect"]))
gates = st.lists(st.fixed_dictionaries({"conditionType": names}), max_size=2,
                 unique_by=lambda g: g["conditionType"])
max_surge = st.sampled_from([0, 1, "0", "1"])
v1_kubeadm = st.fixed_dictionaries({}, optional={
    "clusterConfiguration": st.fixed_dictionaries({}, optional={
        "apiServer": st.fixed_dictionaries({}, optional={
            "certSANs": st.lists(names, max_size=2), "extraArgs": string_maps}),
        "controllerManager": st.fixed_dictionaries({"extraArgs": string_maps})}),
    "initConfiguration": st.fixed_dictionaries({"nodeRegistration": st.fixed_dictionaries(
        {}, optional={"criSocket": names, "kubeletExtraArgs": string_maps})}),
    "preKubeadmCommands": st.lists(text, max_size=2)})
v1_machine_template = st.fixed_dictionaries({"infrastructureRef": st.fixed_dictionaries(
    {"kind": st.just("DockerMachineTemplate"), "name": names},
    optional={"apiVersion": st.sampled_from([f"{INFRA}/v1beta1", f"{INFRA}/v1beta2"]),
              "namespace": names})}, optional={
    "metadata": metadata, "readinessGates": gates, "taints": taints,
    "nodeDrainTimeout": durations, "nodeVolumeDetachTimeout": durations,
    "nodeDeletionTimeout": durations})
v1_shared = {
    "kubeadmConfigSpec": v1_kubeadm,
    "rolloutBefore": st.fixed_dictionaries({}, optional={
        "certificatesExpiryDays": st.integers(7, 90)}),
    "rolloutAfter": times,
    "rolloutStrategy": st.fixed_dictionaries({}, optional={
        "type": st.just("RollingUpdate"),
        "rollingUpdate": st.fixed_dictionaries({}, optional={"maxSurge": max_surge})}),
    "remediationStrategy": st.fixed_dictionaries({}, optional={
        "maxRetry": st.integers(0, 5), "retryPeriod": durations,
        "minHealthyPeriod": durations}),
    "machineNamingStrategy": st.fixed_dictionaries({"template": st.just("{{ .random }}")}),
}
v1_conditions = st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["Ready", "Available", "MachinesReady"]),
     "status": st.sampled_from(["True", "False"]), "lastTransitionTime": times},
    optional={"severity": st.sampled_from(["Info", "Error"]), "reason": names}), max_size=2)
v2_conditions = st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["Available", "Initialized", "Deleting"]),
     "status": st.sampled_from(["True", "False", "Unknown"]), "reason": names,
     "message": text, "lastTransitionTime": times}), max_size=2,
    unique_by=lambda c: c["type"])
counts = st.integers(0, 5)
versions = st.lists(st.fixed_dictionaries({"version": st.sampled_from(["v1.32.0", "v1.33.0"]),
                                           "replicas": counts}),
                    max_size=2, unique_by=lambda v: v["version"])
v1_status = st.fixed_dictionaries({}, optional={
    "selector": names, "replicas": counts, "version": names, "updatedReplicas": counts,
    "readyReplicas": counts, "unavailableReplicas": counts, "initialized": st.booleans(),
    "ready": st.booleans(), "failureReason": names, "failureMessage": text,
    "observedGeneration": counts, "conditions": v1_conditions, "versions": versions,
    "lastRemediation": st.fixed_dictionaries({"machine": names, "timestamp": times,
                                              "retryCount": counts}),
    "v1beta2": st.fixed_dictionaries({}, optional={
        "conditions": v2_conditions, "readyReplicas": counts, "availableReplicas": counts,
        "upToDateReplicas": counts})})


@st.composite
def v1beta1_objects(draw: st.DrawFn) -> Obj:
    """Any v1beta1 KubeadmControlPlane or template, as upstream's v1beta1 schema allows."""
    meta: Obj = {"name": draw(names), "namespace": draw(names)}
    if draw(st.booleans()):
        meta["annotations"] = draw(st.dictionaries(names, text, min_size=1, max_size=2))
    if draw(st.booleans()):
        template_spec: Obj = draw(st.fixed_dictionaries({}, optional={
            "machineTemplate": st.fixed_dictionaries({}, optional={
                "metadata": metadata, "taints": taints, "nodeDrainTimeout": durations}),
            **v1_shared}))
        return {"apiVersion": V1BETA1, "kind": "KubeadmControlPlaneTemplate", "metadata": meta,
                "spec": {"template": {"spec": template_spec}}}
    spec: Obj = draw(st.fixed_dictionaries(
        {"version": st.just("v1.33.0"), "machineTemplate": v1_machine_template},
        optional={"replicas": st.sampled_from([1, 3, 5]), **v1_shared}))
    obj: Obj = {"apiVersion": V1BETA1, "kind": "KubeadmControlPlane", "metadata": meta,
                "spec": spec}
    if draw(st.booleans()):
        obj["status"] = draw(v1_status)
    return obj


v2_status = st.fixed_dictionaries({}, optional={
    "conditions": v2_conditions,
    "initialization": st.fixed_dictionaries({}, optional={
        "controlPlaneInitialized": st.booleans()}),
    "selector": names, "replicas": counts, "readyReplicas": counts,
    "availableReplicas": counts, "upToDateReplicas": counts, "version": names,
    "versions": versions, "observedGeneration": counts,
    "lastRemediation": st.fixed_dictionaries({"machine": names, "time": times,
                                              "retryCount": counts}),
    "deprecated": st.fixed_dictionaries({"v1beta1": st.fixed_dictionaries({}, optional={
        "conditions": v1_conditions, "failureReason": names, "failureMessage": text,
        "updatedReplicas": counts, "readyReplicas": counts, "unavailableReplicas": counts})})})
v2_kubeadm = st.fixed_dictionaries({}, optional={
    "clusterConfiguration": st.fixed_dictionaries({"apiServer": st.fixed_dictionaries(
        {"extraArgs": st.lists(st.fixed_dictionaries({"name": names, "value": names}),
                               max_size=2, unique_by=lambda a: a["name"]).map(
            lambda args: sorted(args, key=lambda a: a["name"]))})}),
    "postKubeadmCommands": st.lists(text, max_size=2)})
v2_shared = {
    "kubeadmConfigSpec": v2_kubeadm,
    "rollout": st.fixed_dictionaries({}, optional={
        "before": st.fixed_dictionaries({"certificatesExpiryDays": st.integers(7, 90)}),
        "after": times,
        "strategy": st.fixed_dictionaries({}, optional={
            "type": st.just("RollingUpdate"),
            "rollingUpdate": st.fixed_dictionaries({}, optional={"maxSurge": max_surge})})}),
    "remediation": st.fixed_dictionaries({}, optional={
        "maxRetry": st.integers(0, 5), "retryPeriodSeconds": seconds,
        "minHealthyPeriodSeconds": seconds}),
    "machineNaming": st.fixed_dictionaries({}, optional={"template": st.just("{{ .random }}")}),
}
deletion = st.fixed_dictionaries({}, optional={
    "nodeDrainTimeoutSeconds": seconds, "nodeVolumeDetachTimeoutSeconds": seconds,
    "nodeDeletionTimeoutSeconds": seconds})


@st.composite
def v1beta2_objects(draw: st.DrawFn) -> Obj:
    """Any v1beta2 KubeadmControlPlane or template, including shapes v1beta1 cannot say."""
    meta: Obj = {"name": draw(names), "namespace": draw(names)}
    template = draw(st.booleans())
    machine_spec = draw(st.fixed_dictionaries({} if template else {
        "infrastructureRef": st.fixed_dictionaries({
            "apiGroup": st.sampled_from([INFRA, types.GROUP]),
            "kind": st.just("DockerMachineTemplate"), "name": names})},
        optional={"readinessGates": gates, "deletion": deletion, "taints": taints}))
    machine: Obj = {"spec": machine_spec}
    if draw(st.booleans()):
        machine["metadata"] = draw(metadata)
    rest = draw(st.fixed_dictionaries({}, optional=v2_shared))
    if template:
        return {"apiVersion": V1BETA2, "kind": "KubeadmControlPlaneTemplate", "metadata": meta,
                "spec": {"template": {"spec": {"machineTemplate": machine, **rest}}}}
    obj: Obj = {"apiVersion": V1BETA2, "kind": "KubeadmControlPlane", "metadata": meta,
                "spec": {"version": "v1.33.0", "replicas": draw(st.sampled_from([1, 3])),
                         "machineTemplate": machine, **rest}}
    if draw(st.booleans()):
        obj["status"] = draw(v2_status)
    return obj


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@given(v1beta1_objects())
@SETTINGS
def test_any_v1beta1_object_round_trips(obj: Obj) -> None:
    before = copy.deepcopy(obj)
    v2 = up(obj)
    assert obj == before  # the argument is never mutated
    assert v2["apiVersion"] == V1BETA2
    assert down(v2) == obj
    # The v1beta2 image goes down and comes back the same.
    assert up(down(v2)) == v2


@given(v1beta2_objects())
@SETTINGS
def test_any_v1beta2_object_round_trips(obj: Obj) -> None:
    before = copy.deepcopy(obj)
    v1 = down(obj)
    assert obj == before
    assert v1["apiVersion"] == V1BETA1
    assert up(v1) == obj


@given(v1beta1_objects(), v2_status, st.sampled_from([None, 1, 7]))
@SETTINGS
def test_edits_at_v1beta2_reach_a_v1beta1_client(obj: Obj, status: Obj,
                                                  replicas: int | None) -> None:
    """A v1beta2 controller writes status (and maybe scales) an object a v1beta1 client wrote:
    reading it at v1beta1 and writing that back loses neither side's data."""
    v2 = up(obj)
    if obj["kind"] == "KubeadmControlPlane":
        v2["status"] = status
        if replicas is not None:
            v2["spec"]["replicas"] = replicas
    v1 = down(v2)
    if replicas is not None and obj["kind"] == "KubeadmControlPlane":
        assert v1["spec"]["replicas"] == replicas
    again = up(v1)
    assert _without_annotation(again) == _without_annotation(v2)
    assert down(again) == v1


def _without_annotation(obj: Obj) -> Obj:
    """`obj` without the conversion data (which records the body last converted, so it names
    whichever side wrote last)."""
    out = copy.deepcopy(obj)
    annotations = out["metadata"].get("annotations") or {}
    annotations.pop(CONVERSION_DATA_ANNOTATION, None)
    if not annotations:
        out["metadata"].pop("annotations", None)
    return out
