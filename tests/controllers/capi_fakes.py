"""A FakeClient that serves the Cluster API kinds and two provider template kinds, and object
builders, for the MachineSet/MachineDeployment/MachineHealthCheck controller tests."""

from __future__ import annotations

from typing import Any

from shipyard.client import FakeClient, Object, RESTMapping

V1B2 = "cluster.x-k8s.io/v1beta2"
NS = "default"
STATUS_SCALE = frozenset({"status", "scale"})


def crd(group: str, kind: str, version: str) -> Object:
    plural = kind.lower() + "s"
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}",
                         "labels": {"cluster.x-k8s.io/v1beta2": version}},
            "spec": {"group": group, "names": {"kind": kind, "plural": plural},
                     "scope": "Namespaced",
                     "versions": [{"name": version, "served": True, "storage": True}]}}


PROVIDER_KINDS = [
    ("bootstrap.cluster.x-k8s.io", "KubeadmConfigTemplate", "v1beta2"),
    ("bootstrap.cluster.x-k8s.io", "KubeadmConfig", "v1beta2"),
    ("infrastructure.cluster.x-k8s.io", "TestMachineTemplate", "v1alpha1"),
    ("infrastructure.cluster.x-k8s.io", "TestMachine", "v1alpha1"),
]


async def capi_fake() -> FakeClient:
    fake = FakeClient()
    for kind, plural, subs in [
        ("Cluster", "clusters", frozenset({"status"})), ("Machine", "machines",
                                                         frozenset({"status"})),
        ("MachineSet", "machinesets", STATUS_SCALE),
        ("MachineDeployment", "machinedeployments", STATUS_SCALE),
        ("MachineHealthCheck", "machinehealthchecks", frozenset({"status"})),
    ]:
        fake.add_kind(RESTMapping("cluster.x-k8s.io", "v1beta2", kind, plural, True, subs))
    fake.add_kind(RESTMapping("apiextensions.k8s.io", "v1", "CustomResourceDefinition",
                              "customresourcedefinitions", False))
    fake.add_kind(RESTMapping("", "v1", "Node", "nodes", False, frozenset({"status"})))
    for group, kind, version in PROVIDER_KINDS:
        fake.add_kind(RESTMapping(group, version, kind, kind.lower() + "s", True))
        await fake.create(crd(group, kind, version))
    await fake.create({"apiVersion": V1B2, "kind": "Cluster",
                       "metadata": {"name": "c1", "namespace": NS}, "spec": {}})
    await fake.create({
        "apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfigTemplate",
        "metadata": {"name": "kct", "namespace": NS},
        "spec": {"template": {"metadata": {"labels": {"from": "kct"}},
                              "spec": {"joinConfiguration": {"nodeRegistration": {}}}}}})
    await fake.create({
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1alpha1", "kind": "TestMachineTemplate",
        "metadata": {"name": "tmt", "namespace": NS},
        "spec": {"template": {"spec": {"size": "small"}}}})
    return fake


def machine_template(labels: dict[str, str], version: str = "v1.33.0",
                     **spec: Any) -> Object:
    return {"metadata": {"labels": dict(labels)},
            "spec": {"clusterName": "c1", "version": version,
                     "bootstrap": {"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io",
                                                 "kind": "KubeadmConfigTemplate",
                                                 "name": "kct"}},
                     "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io",
                                           "kind": "TestMachineTemplate", "name": "tmt"},
                     **spec}}


def machine_set(name: str, replicas: int, **spec: Any) -> Object:
    labels = {"pool": name}
    return {"apiVersion": V1B2, "kind": "MachineSet",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"clusterName": "c1", "replicas": replicas,
                     "selector": {"matchLabels": labels},
                     "template": machine_template(labels), **spec}}


async def machines(fake: FakeClient, selector: str | None = None) -> list[Object]:
    return (await fake.list(V1B2, "Machine", NS, label_selector=selector))["items"]


def is_marked(machine: Object) -> bool:
    return any(c.get("type") == "Available"
               for c in (machine.get("status") or {}).get("conditions") or ())


async def mark(fake: FakeClient, machine: Object, *, available: bool = True,
               node: bool = True) -> None:
    """Play the Machine controller: Ready/Available conditions and a nodeRef (other
    conditions, e.g. the UpToDate the MachineSet writes, are kept)."""
    current = await fake.get(V1B2, "Machine", machine["metadata"]["name"], NS)
    status = current.setdefault("status", {})
    kept = [c for c in status.get("conditions") or () if c["type"] not in ("Ready", "Available")]
    status["conditions"] = kept + [
        {"type": t, "status": "True" if available else "False", "reason": "Test",
         "lastTransitionTime": "2026-01-01T00:00:00Z", "message": ""}
        for t in ("Ready", "Available")]
    if node:
        status["nodeRef"] = {"name": machine["metadata"]["name"]}
    await fake.update_status(current)
