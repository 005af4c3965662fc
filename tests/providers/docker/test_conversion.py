"""DockerConverter: upstream's v1beta1 ⇄ v1beta2 moves for the four CAPD kinds, a lossless round
trip for any object (directly for what both versions can say, through the conversion-data
annotation for the rest), and other kinds of the group left alone."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.api.converting import ConversionError, Converter
from shipyard.api.core.constants import CONVERSION_DATA_ANNOTATION
from shipyard.providers.docker import types
from shipyard.providers.docker.conversion import DockerConverter, convert

Obj = dict[str, Any]
V1 = types.API_VERSION_V1BETA1
V2 = types.API_VERSION
KINDS = list(types.KINDS)
CONVERTER = DockerConverter()

names = st.from_regex(r"[a-z]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
text = st.text(st.characters(codec="ascii", categories=("L", "N")), max_size=6)
attributes = st.dictionaries(names, text, max_size=2)
v1_conditions = st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["Ready", "ContainerProvisioned", "BootstrapExecSucceeded"]),
     "status": st.sampled_from(["True", "False", "Unknown"]),
     "lastTransitionTime": st.just("2026-01-01T00:00:00Z")},
    optional={"severity": st.sampled_from(["Info", "Warning", "Error"]),
              "reason": st.sampled_from(["Bootstrapping", "ContainerDeleted"]),
              "message": text}), max_size=2)
v2_conditions = st.lists(st.fixed_dictionaries(
    {"type": st.sampled_from(["Ready", "LoadBalancerAvailable", "Deleting"]),
     "status": st.sampled_from(["True", "False", "Unknown"]),
     "reason": st.sampled_from(["Available", "NotSucceeded", "Provisioned"]),
     "message": text, "lastTransitionTime": st.just("2026-01-01T00:00:00Z")},
    optional={"observedGeneration": st.integers(0, 9)}), max_size=2)
domain_specs = st.fixed_dictionaries({}, optional={"controlPlane": st.booleans(),
                                                   "attributes": attributes})
domain_maps = st.dictionaries(names, domain_specs, max_size=3)
endpoint = st.fixed_dictionaries({"host": names, "port": st.integers(1, 65535)})
load_balancer = st.fixed_dictionaries({}, optional={
    "imageRepository": names, "imageTag": names,
    "customHAProxyConfigTemplateRef": st.fixed_dictionaries({"name": names})})
machine_spec = st.fixed_dictionaries({}, optional={
    "providerID": names.map(types.provider_id), "customImage": names,
    "preLoadImages": st.lists(names, max_size=2),
    "extraMounts": st.lists(st.fixed_dictionaries(
        {"containerPath": names, "hostPath": names}, optional={"readOnly": st.booleans()}),
        max_size=2),
    "bootstrapped": st.booleans(), "bootstrapTimeout": st.sampled_from(["3m", "90s", "1h"])})
v1_cluster_spec = st.fixed_dictionaries({}, optional={
    "controlPlaneEndpoint": endpoint, "failureDomains": domain_maps,
    "loadBalancer": load_balancer})
addresses = st.lists(st.fixed_dictionaries({
    "type": st.sampled_from(["InternalIP", "Hostname"]), "address": names}), max_size=2)


def _v1_status(kind: str) -> st.SearchStrategy[Obj]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "ready": st.booleans(), "conditions": v1_conditions,
        "v1beta2": st.fixed_dictionaries({"conditions": v2_conditions})}
    if kind == "DockerCluster":
        optional["failureDomains"] = domain_maps
    else:
        optional.update(loadBalancerConfigured=st.booleans(), addresses=addresses)
    return st.fixed_dictionaries({}, optional=optional)


def _metadata() -> st.SearchStrategy[Obj]:
    return st.fixed_dictionaries({"name": names}, optional={
        "labels": st.dictionaries(names, names, max_size=2),
        "annotations": st.dictionaries(names, text, min_size=1, max_size=2)})


@st.composite
def v1beta1_objects(draw: st.DrawFn, kind: str | None = None) -> Obj:
    """Any v1beta1 object of the four kinds, as upstream's v1beta1 schema allows."""
    kind = kind or draw(st.sampled_from(KINDS))
    spec = draw(v1_cluster_spec if "Cluster" in kind else machine_spec)
    obj: Obj = {"apiVersion": V1, "kind": kind, "metadata": draw(_metadata())}
    if kind.endswith("Template"):
        template: Obj = {"spec": spec}
        if draw(st.booleans()):
            template["metadata"] = {"labels": draw(st.dictionaries(names, names, max_size=2))}
        obj["spec"] = {"template": template}
        if kind == "DockerMachineTemplate" and draw(st.booleans()):
            obj["status"] = {"capacity": {"cpu": draw(st.sampled_from(["2", "500m"])),
                                          "memory": "4Gi"}}
    else:
        obj["spec"] = spec
        if draw(st.booleans()):
            obj["status"] = draw(_v1_status(kind))
    return obj


@given(v1beta1_objects())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_v1beta1_round_trips_without_conversion_data(obj: Obj) -> None:
    """Everything v1beta1 can say, v1beta2 can say: no annotation is needed going up."""
    before = copy.deepcopy(obj)
    up = CONVERTER.convert(obj, V2)
    assert obj == before  # the argument is never mutated
    assert up["apiVersion"] == V2
    assert CONVERSION_DATA_ANNOTATION not in (up["metadata"].get("annotations") or {})
    assert CONVERTER.convert(up, V1) == obj


@given(v1beta1_objects())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_v1beta2_round_trips_without_conversion_data(obj: Obj) -> None:
    """The v1beta2 images of v1beta1 objects are canonical v1beta2 (sorted failure domains,
    conditions where upstream keeps them): they go down and up again unchanged."""
    v2 = convert(obj, V2)
    down = convert(v2, V1)
    assert CONVERSION_DATA_ANNOTATION not in (down["metadata"].get("annotations") or {})
    assert convert(down, V2) == v2


junk = st.dictionaries(st.sampled_from(["extra", "initialization", "deprecated", "v1beta2"]),
                       st.one_of(st.just({}), st.just({"x": 1}), st.just([1])), max_size=2)


@given(v1beta1_objects(), junk, junk, st.booleans())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_object_round_trips_through_the_annotation(obj: Obj, spec_junk: Obj,
                                                       status_junk: Obj, shuffle: bool) -> None:
    """Shapes one version cannot say (empty wrappers, unknown fields, an unsorted list of
    failure domains) survive a round trip from either version."""
    v2 = convert(obj, V2)
    target = v2["spec"]["template"]["spec"] if "template" in v2["spec"] else v2["spec"]
    target.update(spec_junk)
    if shuffle and len(target.get("failureDomains") or []) > 1:
        target["failureDomains"].reverse()
    v2.setdefault("status", {}).update(status_junk)
    down = convert(v2, V1)
    assert convert(down, V2) == v2
    v1 = copy.deepcopy(obj)
    v1.setdefault("status", {}).update(status_junk)
    assert convert(convert(v1, V2), V1) == v1


def test_cluster_moves_as_upstream() -> None:
    v1: Obj = {
        "apiVersion": V1, "kind": "DockerCluster", "metadata": {"name": "c"},
        "spec": {"controlPlaneEndpoint": {"host": "172.18.0.2", "port": 6443},
                 "failureDomains": {"fd2": {"controlPlane": True},
                                    "fd1": {"controlPlane": False, "attributes": {"a": "b"}}},
                 "loadBalancer": {"imageRepository": "kindest", "imageTag": "v1"}},
        "status": {"ready": True, "failureDomains": {"fd1": {"controlPlane": True}},
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                   "v1beta2": {"conditions": [{"type": "Ready", "status": "True",
                                               "reason": "Ready", "message": "",
                                               "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}}
    v2 = convert(v1, V2)
    assert v2["spec"] == {
        "controlPlaneEndpoint": {"host": "172.18.0.2", "port": 6443},
        "failureDomains": [{"name": "fd1", "controlPlane": False, "attributes": {"a": "b"}},
                           {"name": "fd2", "controlPlane": True}],
        "loadBalancer": {"imageRepository": "kindest", "imageTag": "v1"}}
    assert v2["status"] == {
        "initialization": {"provisioned": True},
        "failureDomains": [{"name": "fd1", "controlPlane": True}],
        "deprecated": {"v1beta1": {"conditions": v1["status"]["conditions"]}},
        "conditions": v1["status"]["v1beta2"]["conditions"]}
    assert convert(v2, V1) == v1


def test_go_zero_endpoint_is_unset_at_v1beta2() -> None:
    """Go clients write an unset v1beta1 endpoint as `{host: "", port: 0}`; v1beta2 (host at
    least 1 character, port at least 1) omits it, as upstream's omitzero does."""
    for kind, spec in (("DockerCluster", {"controlPlaneEndpoint": {"host": "", "port": 0}}),
                       ("DockerClusterTemplate", {"template": {"spec": {
                           "controlPlaneEndpoint": {"host": "", "port": 0}}}})):
        v1: Obj = {"apiVersion": V1, "kind": kind, "metadata": {"name": "c"}, "spec": spec}
        v2 = convert(v1, V2)
        assert "controlPlaneEndpoint" not in (v2["spec"].get("template") or v2)["spec"]
        assert convert(v2, V1) == v1  # through the conversion-data annotation


def test_machine_template_keeps_template_metadata_and_spec() -> None:
    v2: Obj = {"apiVersion": V2, "kind": "DockerMachineTemplate",
               "metadata": {"name": "t", "namespace": "n"},
               "spec": {"template": {"metadata": {"labels": {"a": "b"}},
                                     "spec": {"customImage": "img", "extraMounts": [
                                         {"containerPath": "/a", "hostPath": "/b"}]}}}}
    v1 = convert(v2, V1)
    assert v1 == {**v2, "apiVersion": V1}


def test_lossy_shapes_are_kept_in_the_annotation_and_restored() -> None:
    v2: Obj = {"apiVersion": V2, "kind": "DockerMachine", "metadata": {"name": "m"},
               "spec": {}, "status": {"initialization": {}, "deprecated": {"v1beta1": {}}}}
    v1 = convert(v2, V1)
    saved = json.loads(v1["metadata"]["annotations"][CONVERSION_DATA_ANNOTATION])
    assert saved["status"] == v2["status"]
    assert convert(v1, V2) == v2
    # Once the v1beta1 body is changed, the saved body no longer applies.
    v1["spec"]["customImage"] = "other"
    changed = convert(v1, V2)
    assert changed["spec"] == {"customImage": "other"}
    assert "annotations" not in changed["metadata"]


def test_other_kinds_of_the_group_pass_through() -> None:
    process = {"apiVersion": V2, "kind": "ProcessCluster", "metadata": {"name": "p"},
               "spec": {"failureDomains": ["a"]}}
    assert CONVERTER.convert(process, V2) == process
    with pytest.raises(ConversionError, match="ProcessCluster"):
        CONVERTER.convert(process, V1)


@pytest.mark.parametrize("to", ["infrastructure.cluster.x-k8s.io/v1alpha4",
                                "cluster.x-k8s.io/v1beta2"])
def test_unknown_versions_are_refused(to: str) -> None:
    obj = {"apiVersion": V1, "kind": "DockerMachine", "metadata": {"name": "m"}}
    with pytest.raises(ConversionError, match="cannot convert DockerMachine"):
        convert(obj, to)


def test_malformed_failure_domains_are_a_conversion_error() -> None:
    obj = {"apiVersion": V2, "kind": "DockerCluster", "metadata": {"name": "c"},
           "spec": {"failureDomains": [{"controlPlane": True}]}}
    with pytest.raises(ConversionError, match="cannot convert DockerCluster"):
        convert(obj, V1)


def test_is_a_converter() -> None:
    assert isinstance(CONVERTER, Converter)
