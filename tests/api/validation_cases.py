"""Manifests Cluster API accepts or rejects at admission, with the verdict upstream gives.

One table drives two suites: tests/api/test_validation.py (Shipyard's server) and
tests/realkube_test/test_capi_validation.py (kube-apiserver 1.33, and both servers compared), so
the same manifest must get the same verdict, field path and message from both servers.

A `Case` edits a valid base manifest; `expect` is None for "accepted" or (field, message) of the
cause the rejection must carry. An update case (`update=True`) creates the base first and then
sends the edited object as a PUT, for the rules that compare with the old object.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.api import examples as ex
from tests.kube import Client, Response

Obj = dict[str, Any]
INFRA = "infrastructure.cluster.x-k8s.io"
NOT_INT_OR_PERCENT = ("must be either an int or a percentage: invalid value for IntOrString: "
                      "invalid type: string is not a percentage")


def _machine_set(version: str) -> Obj:
    md = ex.machine_deployment_v1beta2() if version == "v1beta2" \
        else ex.machine_deployment_v1beta1()
    md["kind"] = "MachineSet"
    md["metadata"]["name"] = "capi-quickstart-ms-0"
    for key in ("rollout", "strategy", "remediation", "rolloutAfter", "revisionHistoryLimit",
                "progressDeadlineSeconds", "paused"):
        md["spec"].pop(key, None)
    return md


def _machine(version: str) -> Obj:
    md = ex.machine_deployment_v1beta2() if version == "v1beta2" \
        else ex.machine_deployment_v1beta1()
    return {"apiVersion": md["apiVersion"], "kind": "Machine",
            "metadata": {"name": "capi-quickstart-m-0", "namespace": "default"},
            "spec": copy.deepcopy(md["spec"]["template"]["spec"])}


def _topology_cluster(version: str) -> Obj:
    cluster = ex.cluster_v1beta2() if version == "v1beta2" else ex.cluster_v1beta1()
    cluster["spec"]["topology"] = ({"classRef": {"name": "quick-start"}, "version": "v1.33.0"}
                                   if version == "v1beta2" else
                                   {"class": "quick-start", "version": "v1.33.0"})
    return cluster


BASES: dict[tuple[str, str], Callable[[], Obj]] = {
    ("v1beta2", "machinedeployments"): ex.machine_deployment_v1beta2,
    ("v1beta1", "machinedeployments"): ex.machine_deployment_v1beta1,
    ("v1beta2", "machinesets"): lambda: _machine_set("v1beta2"),
    ("v1beta1", "machinesets"): lambda: _machine_set("v1beta1"),
    ("v1beta2", "machines"): lambda: _machine("v1beta2"),
    ("v1beta1", "machines"): lambda: _machine("v1beta1"),
    ("v1beta2", "machinehealthchecks"): ex.mhc_v1beta2,
    ("v1beta1", "machinehealthchecks"): ex.mhc_v1beta1,
    ("v1beta2", "clusters"): lambda: _topology_cluster("v1beta2"),
    ("v1beta1", "clusters"): lambda: _topology_cluster("v1beta1"),
}


@dataclass(frozen=True)
class Case:
    id: str
    version: str
    plural: str
    edit: Callable[[Obj], None]
    expect: tuple[str, str] | None
    update: bool = False

    def manifest(self, namespace: str) -> tuple[Obj, Obj]:
        """(base, edited), both in `namespace`."""
        base = BASES[(self.version, self.plural)]()
        base["metadata"]["namespace"] = namespace
        base["metadata"]["name"] = f"{self.id}"[:63].rstrip("-.")
        edited = copy.deepcopy(base)
        self.edit(edited)
        return base, edited

    def path(self, namespace: str) -> str:
        return f"/apis/cluster.x-k8s.io/{self.version}/namespaces/{namespace}/{self.plural}"


def put(path: str, value: Any) -> Callable[[Obj], None]:
    """An edit setting the dotted `path` (creating objects on the way) to `value`."""
    keys = path.split(".")

    def edit(obj: Obj) -> None:
        node = obj
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = copy.deepcopy(value)
    return edit


def drop(path: str) -> Callable[[Obj], None]:
    keys = path.split(".")

    def edit(obj: Obj) -> None:
        node = obj
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
    return edit


def both(*edits: Callable[[Obj], None]) -> Callable[[Obj], None]:
    def edit(obj: Obj) -> None:
        for e in edits:
            e(obj)
    return edit


MD2, MD1 = ("v1beta2", "machinedeployments"), ("v1beta1", "machinedeployments")
MS2, MS1 = ("v1beta2", "machinesets"), ("v1beta1", "machinesets")
MA2, MA1 = ("v1beta2", "machines"), ("v1beta1", "machines")
MHC2, MHC1 = ("v1beta2", "machinehealthchecks"), ("v1beta1", "machinehealthchecks")
CL2, CL1 = ("v1beta2", "clusters"), ("v1beta1", "clusters")
ROLL2 = "spec.rollout.strategy.rollingUpdate"
ROLL1 = "spec.strategy.rollingUpdate"
SEMVER = "must be a valid semantic version"
NOT_MATCHING = "must match spec.selector"


def _case(id: str, kind: tuple[str, str], edit: Callable[[Obj], None],
          expect: tuple[str, str] | None, update: bool = False) -> Case:
    return Case(id, kind[0], kind[1], edit, expect, update)


CASES: list[Case] = [
    # ---- MachineDeployment v1beta2
    _case("md2-negative-replicas", MD2, put("spec.replicas", -1),
          ("spec.replicas", "should be greater than or equal to 0")),
    _case("md2-selector-labels", MD2, put("spec.selector.matchLabels", {"nodepool": "md-1"}),
          ("spec.template.metadata.labels", f"Forbidden: {NOT_MATCHING}")),
    _case("md2-selector-notin", MD2, put("spec.selector.matchExpressions", [
        {"key": "nodepool", "operator": "NotIn", "values": ["md-0"]}]),
          ("spec.template.metadata.labels", NOT_MATCHING)),
    _case("md2-selector-exists-missing", MD2, put("spec.selector.matchExpressions", [
        {"key": "zone", "operator": "Exists"}]),
          ("spec.template.metadata.labels", NOT_MATCHING)),
    _case("md2-selector-in-ok", MD2, put("spec.selector.matchExpressions", [
        {"key": "nodepool", "operator": "In", "values": ["md-0", "md-1"]},
        {"key": "zone", "operator": "DoesNotExist"}]), None),
    _case("md2-selector-operator", MD2, put("spec.selector.matchExpressions", [
        {"key": "nodepool", "operator": "Equals", "values": ["md-0"]}]),
          ("spec.selector", 'is not a valid label selector operator')),
    _case("md2-selector-in-empty", MD2, put("spec.selector.matchExpressions", [
        {"key": "nodepool", "operator": "In", "values": []}]),
          ("spec.selector", "for 'in', 'notin' operators, values set can't be empty")),
    _case("md2-max-surge-abc", MD2, put(f"{ROLL2}.maxSurge", "abc"),
          (f"{ROLL2}.maxSurge", NOT_INT_OR_PERCENT)),
    _case("md2-max-unavailable-abc-pct", MD2, put(f"{ROLL2}.maxUnavailable", "abc%"),
          (f"{ROLL2}.maxUnavailable",
           'invalid value "abc%": strconv.Atoi: parsing "abc": invalid syntax')),
    # Upstream accepts these: percentages are not capped, and both-zero is resolved to
    # maxUnavailable=1 by the rollout's fenceposts.
    _case("md2-max-unavailable-150-pct", MD2, put(f"{ROLL2}.maxUnavailable", "150%"), None),
    _case("md2-both-zero", MD2, put(f"{ROLL2}", {"maxSurge": 0, "maxUnavailable": "0%"}), None),
    _case("md2-strategy-type", MD2, put("spec.rollout.strategy.type", "Recreate"),
          ("spec.rollout.strategy.type", 'Unsupported value: "Recreate"')),
    _case("md2-max-in-flight", MD2, put("spec.remediation.maxInFlight", "two"),
          ("spec.remediation.maxInFlight", NOT_INT_OR_PERCENT)),
    _case("md2-version", MD2, put("spec.template.spec.version", "1.33"),
          ("spec.template.spec.version", SEMVER)),
    _case("md2-version-without-v", MD2, put("spec.template.spec.version", "1.33.0"), None),
    _case("md2-naming", MD2, put("spec.machineNaming.template", "{{ .machineSet.name }}-x"),
          ("spec.machineNaming.template", "invalid template, {{ .random }} is missing")),
    _case("md2-deletion-order", MD2, put("spec.deletion.order", "Youngest"),
          ("spec.deletion.order", 'Unsupported value: "Youngest"')),
    _case("md2-cluster-name-immutable", MD2, put("spec.clusterName", "other"),
          ("spec.clusterName", "Forbidden: field is immutable"), update=True),
    _case("md2-replicas-mutable", MD2, put("spec.replicas", 5), None, update=True),
    # ---- MachineDeployment v1beta1
    _case("md1-negative-replicas", MD1, put("spec.replicas", -2),
          ("spec.replicas", "should be greater than or equal to 0")),
    _case("md1-selector-labels", MD1, put("spec.selector.matchLabels", {"nodepool": "md-1"}),
          ("spec.template.metadata.labels", NOT_MATCHING)),
    _case("md1-max-surge-abc", MD1, put(f"{ROLL1}.maxSurge", "abc"),
          (f"{ROLL1}.maxSurge", NOT_INT_OR_PERCENT)),
    _case("md1-strategy-type", MD1, put("spec.strategy.type", "Recreate"),
          ("spec.strategy.type", 'Unsupported value: "Recreate"')),
    _case("md1-version", MD1, put("spec.template.spec.version", "latest"),
          ("spec.template.spec.version", SEMVER)),
    _case("md1-cluster-name-immutable", MD1, put("spec.clusterName", "other"),
          ("spec.clusterName", "field is immutable"), update=True),
    # ---- MachineSet
    _case("ms2-negative-replicas", MS2, put("spec.replicas", -3),
          ("spec.replicas", "should be greater than or equal to 0")),
    _case("ms2-selector-labels", MS2, put("spec.selector.matchLabels", {"nodepool": "md-1"}),
          ("spec.template.metadata.labels", f"Invalid value: \"object\": {NOT_MATCHING}")),
    _case("ms2-no-template-labels", MS2, both(
        put("spec.selector.matchLabels", {"nodepool": "md-0"}), drop("spec.template.metadata")),
          ("spec.template.metadata.labels", NOT_MATCHING)),
    _case("ms2-version", MS2, put("spec.template.spec.version", "v1"),
          ("spec.template.spec.version", SEMVER)),
    _case("ms1-selector-labels", MS1, put("spec.selector.matchLabels", {"nodepool": "md-1"}),
          ("spec.template.metadata.labels", NOT_MATCHING)),
    _case("ms1-selector-operator", MS1, put("spec.selector.matchExpressions", [
        {"key": "nodepool", "operator": "in", "values": ["md-0"]}]),
          ("spec.selector", 'is not a valid label selector operator')),
    _case("ms1-delete-policy", MS1, put("spec.deletePolicy", "Youngest"),
          ("spec.deletePolicy", 'Unsupported value: "Youngest"')),
    _case("ms2-cluster-name-immutable", MS2, put("spec.clusterName", "other"),
          ("spec.clusterName", "field is immutable"), update=True),
    # ---- Machine
    _case("ma2-version", MA2, put("spec.version", "v1.33"), ("spec.version", SEMVER)),
    _case("ma1-version", MA1, put("spec.version", "v1.33.x"), ("spec.version", SEMVER)),
    _case("ma2-cluster-name-immutable", MA2, put("spec.clusterName", "other"),
          ("spec.clusterName", "Forbidden: field is immutable"), update=True),
    _case("ma1-cluster-name-immutable", MA1, put("spec.clusterName", "other"),
          ("spec.clusterName", "field is immutable"), update=True),
    _case("ma2-version-mutable", MA2, put("spec.version", "v1.34.0"), None, update=True),
    # ---- MachineHealthCheck v1beta2
    _case("mhc2-empty-selector", MHC2, put("spec.selector", {}),
          ("spec.selector", "Required value: selector must not be empty")),
    _case("mhc2-cluster-selector", MHC2, put(
        "spec.selector.matchLabels", {"cluster.x-k8s.io/cluster-name": "other"}),
          ("spec.selector",
           "cannot specify a cluster selector other than the one specified by ClusterName")),
    _case("mhc2-cluster-selector-ok", MHC2, put(
        "spec.selector.matchLabels", {"cluster.x-k8s.io/cluster-name": "capi-quickstart"}),
          None),
    _case("mhc2-selector-exists-values", MHC2, put("spec.selector.matchExpressions", [
        {"key": "nodepool", "operator": "Exists", "values": ["md-0"]}]),
          ("spec.selector", "values set must be empty for exists and does not exist")),
    _case("mhc2-node-startup", MHC2, put("spec.checks.nodeStartupTimeoutSeconds", 10),
          ("spec.checks.nodeStartupTimeoutSeconds", "must be at least 30s")),
    _case("mhc2-node-startup-disabled", MHC2, put("spec.checks.nodeStartupTimeoutSeconds", 0),
          None),
    _case("mhc2-trigger-if", MHC2, put(
        "spec.remediation.triggerIf.unhealthyLessThanOrEqualTo", "40"),
          ("spec.remediation.triggerIf.unhealthyLessThanOrEqualTo", NOT_INT_OR_PERCENT)),
    _case("mhc2-unhealthy-range", MHC2, put("spec.remediation.triggerIf",
                                            {"unhealthyInRange": "3-5"}),
          ("spec.remediation.triggerIf.unhealthyInRange", "should match")),
    _case("mhc2-machine-condition-ready", MHC2, put("spec.checks.unhealthyMachineConditions", [
        {"type": "Ready", "status": "False", "timeoutSeconds": 60}]),
          ("spec.checks.unhealthyMachineConditions[0].type",
           "type must not be one of: Ready, Available, HealthCheckSucceeded, OwnerRemediated, "
           "ExternallyRemediated")),
    _case("mhc2-node-conditions-empty", MHC2, put("spec.checks.unhealthyNodeConditions", []),
          ("spec.checks.unhealthyNodeConditions", "should have at least 1 items")),
    _case("mhc2-node-condition-timeout", MHC2, put("spec.checks.unhealthyNodeConditions", [
        {"type": "Ready", "status": "False", "timeoutSeconds": -1}]),
          ("spec.checks.unhealthyNodeConditions[0].timeoutSeconds",
           "should be greater than or equal to 0")),
    _case("mhc2-node-condition-no-status", MHC2, put("spec.checks.unhealthyNodeConditions", [
        {"type": "Ready", "timeoutSeconds": 60}]),
          ("spec.checks.unhealthyNodeConditions[0].status", "Required value")),
    _case("mhc2-cluster-name-immutable", MHC2, put("spec.clusterName", "other"),
          ("spec.clusterName", "field is immutable"), update=True),
    # ---- MachineHealthCheck v1beta1
    _case("mhc1-max-unhealthy", MHC1, put("spec.maxUnhealthy", "forty"),
          ("spec.maxUnhealthy", NOT_INT_OR_PERCENT)),
    _case("mhc1-node-startup", MHC1, put("spec.nodeStartupTimeout", "10s"),
          ("spec.nodeStartupTimeout", "must be at least 30s")),
    _case("mhc1-node-startup-disabled", MHC1, put("spec.nodeStartupTimeout", "0s"), None),
    _case("mhc1-empty-selector", MHC1, put("spec.selector", {"matchLabels": {}}),
          ("spec.selector", "selector must not be empty")),
    _case("mhc1-unhealthy-range", MHC1, put("spec.unhealthyRange", "[3-]"),
          ("spec.unhealthyRange", "should match")),
    # ---- Cluster
    _case("cl2-no-refs", CL2, put("spec", {"paused": True}),
          ("spec", "one of spec.controlPlaneRef, spec.infrastructureRef or spec.topology "
                   "must be set")),
    _case("cl2-topology-version", CL2, put("spec.topology.version", "1.33"),
          ("spec.topology.version", "version must be a valid semantic version")),
    _case("cl1-topology-version", CL1, put("spec.topology.version", "next"),
          ("spec.topology.version", "version must be a valid semantic version")),
    _case("cl2-infra-ref-removed", CL2, drop("spec.infrastructureRef"),
          ("spec.infrastructureRef", "Forbidden: cannot be removed"), update=True),
    _case("cl2-topology-removed", CL2, drop("spec.topology"),
          ("spec.topology", "cannot be removed from an existing Cluster"), update=True),
    _case("cl1-control-plane-ref-removed", CL1, drop("spec.controlPlaneRef"),
          ("spec.controlPlaneRef", "cannot be removed"), update=True),
    _case("cl2-paused-mutable", CL2, put("spec.paused", True), None, update=True),
]


def submit(api: Client, case: Case, namespace: str) -> Response:
    """Send the case's manifest (for an update case: create the base, then PUT the edit)."""
    base, edited = case.manifest(namespace)
    path = case.path(namespace)
    if not case.update:
        return api.post(path, edited)
    created = api.post(path, base)
    assert created.status == 201, created.body
    edited["metadata"]["resourceVersion"] = created.json()["metadata"]["resourceVersion"]
    return api.put(f"{path}/{base['metadata']['name']}", edited)


def causes(resp: Response) -> list[tuple[str, str]]:
    """(field, message) of every cause of a 422 Invalid, as the Status carries them."""
    status = resp.json()
    assert status["reason"] == "Invalid", status
    return [(c.get("field", ""), c.get("message", ""))
            for c in status["details"].get("causes") or []]


def check(case: Case, resp: Response) -> None:
    """The verdict `case` expects: 201/200, or 422 Invalid with its (field, message) cause."""
    if case.expect is None:
        assert resp.status in (200, 201), resp.body
        return
    assert resp.status == 422, resp.body
    field, message = case.expect
    found = causes(resp)
    assert any(f == field and message in m for f, m in found), found
