"""The KCP's pure decisions: what makes a Machine outdated, where a new Machine goes, which
Machine goes first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shipyard.controlplane.kubeadm import machines as m

NOW = datetime(2026, 6, 1, tzinfo=UTC)
INFRA_REF = {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "InMemoryMachineTemplate",
             "name": "cp-v2"}


def kcp(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"version": "v1.33.1",
                            "machineTemplate": {"spec": {"infrastructureRef": INFRA_REF}},
                            "kubeadmConfigSpec": {"clusterConfiguration": {"apiServer": {}},
                                                  "files": [{"path": "/a"}]}}
    base.update(spec)
    return {"metadata": {"name": "cp", "uid": "u1"}, "spec": base}


def machine(name: str, created: str = "2026-05-01T00:00:00Z", domain: str = "",
            version: str = "v1.33.1", annotations: dict[str, str] | None = None,
            deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": created,
                            "annotations": annotations or {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-05-02T00:00:00Z"
    spec: dict[str, Any] = {"version": version}
    if domain:
        spec["failureDomain"] = domain
    return {"metadata": meta, "spec": spec}


def infra(template: str = "cp-v2") -> dict[str, Any]:
    return {"metadata": {"annotations": {
        "cluster.x-k8s.io/cloned-from-name": template,
        "cluster.x-k8s.io/cloned-from-groupkind":
            "InMemoryMachineTemplate.infrastructure.cluster.x-k8s.io"}}}


def config(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"clusterConfiguration": {"apiServer": {}}, "files": [{"path": "/a"}],
                            "joinConfiguration": {"controlPlane": {}, "discovery": {"x": 1}}}
    base.update(spec)
    return {"spec": base}


def test_up_to_date_ignores_role_specific_configuration() -> None:
    assert m.outdated_reasons(machine("a"), kcp(), infra(), config(), NOW) == []


def test_each_outdated_reason() -> None:
    assert m.outdated_reasons(machine("a", version="v1.33.0"), kcp(), infra(), config(), NOW) \
        == ["Version v1.33.0 should be updated to v1.33.1"]
    assert m.outdated_reasons(machine("a"), kcp(), infra("cp-v1"), config(), NOW) == [
        "InMemoryMachineTemplate is not up-to-date"]
    assert m.outdated_reasons(machine("a"), kcp(), infra(), config(files=[]), NOW) == [
        "KubeadmConfig is not up-to-date"]
    after = kcp(rollout={"after": "2026-05-15T00:00:00Z"})
    assert m.outdated_reasons(machine("a"), after, infra(), config(), NOW) == [
        "Machine rollout.after expired"]
    future = kcp(rollout={"after": "2026-07-01T00:00:00Z"})
    assert m.outdated_reasons(machine("a"), future, infra(), config(), NOW) == []
    expiring = machine("a")
    expiring["status"] = {"certificatesExpiryDate": "2026-06-05T00:00:00Z"}
    assert m.outdated_reasons(expiring, kcp(rollout={"before": {"certificatesExpiryDays": 7}}),
                              infra(), config(), NOW) == ["Certificates will expire soon"]


def test_new_machine_goes_to_the_emptiest_failure_domain() -> None:
    domains = ["fd-a", "fd-b", "fd-c"]
    assert m.failure_domain_for_new_machine([], [machine("a")]) is None
    assert m.failure_domain_for_new_machine(domains, []) == "fd-a"
    assert m.failure_domain_for_new_machine(
        domains, [machine("a", domain="fd-a"), machine("b", domain="fd-c")]) == "fd-b"
    cluster = {"status": {"failureDomains": [
        {"name": "fd-b", "controlPlane": True}, {"name": "w", "controlPlane": False},
        {"name": "fd-a", "controlPlane": True}]}}
    assert m.control_plane_failure_domains(cluster) == ["fd-a", "fd-b"]


def test_scale_down_picks_oldest_in_busiest_domain() -> None:
    machines = [machine("a", "2026-05-01T00:00:00Z", "fd-a"),
                machine("b", "2026-05-02T00:00:00Z", "fd-b"),
                machine("c", "2026-05-03T00:00:00Z", "fd-b")]
    assert m.machine_to_delete(machines, set())["metadata"]["name"] == "b"  # type: ignore[index]
    # Outdated machines go before up-to-date ones.
    assert m.machine_to_delete(machines, {"c"})["metadata"]["name"] == "c"  # type: ignore[index]
    # The delete-machine annotation wins over everything.
    machines[0]["metadata"]["annotations"] = {"cluster.x-k8s.io/delete-machine": ""}
    assert m.machine_to_delete(machines, {"c"})["metadata"]["name"] == "a"  # type: ignore[index]
    # Deleting machines are never picked.
    assert m.machine_to_delete([machine("x", deleting=True)], set()) is None
