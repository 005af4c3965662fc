"""The MachineSet reconciler on the FakeClient: creating machines from templates, scaling with
the deletion order, adoption, remediation, in-place propagation, status and deletion."""

from __future__ import annotations

import random

from shipyard.client import FakeClient
from shipyard.controllers.machineset import MachineSetReconciler
from shipyard.runtime import Request, TerminalError
from tests.controllers.capi_fakes import NS, V1B2, capi_fake, machine_set, machines, mark

_RECONCILERS: dict[int, MachineSetReconciler] = {}


async def reconcile(fake: FakeClient, name: str = "ms", times: int = 1) -> None:
    # One reconciler per fake, so its seeded name generator does not repeat names.
    r = _RECONCILERS.setdefault(id(fake), MachineSetReconciler(fake, rng=random.Random(5)))
    for _ in range(times):
        await r.reconcile(Request(NS, name))


async def test_creates_machines_with_cloned_bootstrap_and_infrastructure() -> None:
    fake = await capi_fake()
    await fake.create(machine_set("ms", 3))
    await reconcile(fake)
    ms = await fake.get(V1B2, "MachineSet", "ms", NS)
    assert "cluster.x-k8s.io/machineset" in ms["metadata"]["finalizers"]
    assert ms["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "c1"
    assert ms["metadata"]["ownerReferences"][0]["kind"] == "Cluster"
    found = await machines(fake)
    assert len(found) == 3
    m = found[0]
    name = m["metadata"]["name"]
    assert name.startswith("ms-") and len(name) == len("ms-") + 5
    assert m["metadata"]["labels"] == {"pool": "ms", "cluster.x-k8s.io/cluster-name": "c1",
                                       "cluster.x-k8s.io/set-name": "ms"}
    owner = m["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("MachineSet", "ms", True)
    assert m["spec"]["bootstrap"]["configRef"] == {
        "apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig", "name": name}
    assert m["spec"]["infrastructureRef"] == {
        "apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "TestMachine", "name": name}
    config = await fake.get("bootstrap.cluster.x-k8s.io/v1beta2", "KubeadmConfig", name, NS)
    assert config["spec"] == {"joinConfiguration": {"nodeRegistration": {}}}
    assert config["metadata"]["labels"]["from"] == "kct"
    assert config["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-name"] == "kct"
    assert config["metadata"]["ownerReferences"][0]["kind"] == "MachineSet"
    infra = await fake.get("infrastructure.cluster.x-k8s.io/v1alpha1", "TestMachine", name, NS)
    assert infra["spec"] == {"size": "small"}
    assert infra["metadata"]["annotations"]["cluster.x-k8s.io/cloned-from-groupkind"] == (
        "TestMachineTemplate.infrastructure.cluster.x-k8s.io")
    status = (await fake.get(V1B2, "MachineSet", "ms", NS))["status"]
    assert status["replicas"] == 3
    assert status["selector"] == "cluster.x-k8s.io/cluster-name=c1,pool=ms"
    assert status["readyReplicas"] == 0 and status["upToDateReplicas"] == 3


async def test_machine_naming_template() -> None:
    fake = await capi_fake()
    await fake.create(machine_set("ms", 2, machineNaming={
        "template": "{{ .machineSet.name }}-worker-{{ .random }}"}))
    await reconcile(fake)
    assert all(m["metadata"]["name"].startswith("ms-worker-") for m in await machines(fake))


async def test_scale_down_respects_delete_annotation_and_order() -> None:
    fake = await capi_fake()
    await fake.create(machine_set("ms", 5, deletion={"order": "Newest"}))
    await reconcile(fake)
    found = await machines(fake)
    for m in found:
        await mark(fake, m)
    keep_out = found[0]["metadata"]["name"]
    await fake.patch(V1B2, "Machine", keep_out, {"metadata": {"annotations": {
        "cluster.x-k8s.io/delete-machine": "yes"}}}, NS)
    await fake.patch(V1B2, "MachineSet", "ms", {"spec": {"replicas": 4}}, NS)
    await reconcile(fake)
    left = {m["metadata"]["name"] for m in await machines(fake)}
    assert len(left) == 4 and keep_out not in left
    await fake.patch(V1B2, "MachineSet", "ms", {"spec": {"replicas": 1}}, NS)
    await reconcile(fake)
    assert len(await machines(fake)) == 1
    status = (await fake.get(V1B2, "MachineSet", "ms", NS))["status"]
    assert (status["replicas"], status["availableReplicas"]) == (1, 1)


async def test_adopts_orphans_and_ignores_others() -> None:
    fake = await capi_fake()
    base = {"apiVersion": V1B2, "kind": "Machine",
            "spec": {"clusterName": "c1", "bootstrap": {"dataSecretName": "s"},
                     "infrastructureRef": {"apiGroup": "x", "kind": "Y", "name": "z"}}}
    await fake.create({**base, "metadata": {"name": "orphan", "namespace": NS,
                                            "labels": {"pool": "ms"}}})
    await fake.create({**base, "metadata": {"name": "other", "namespace": NS,
                                            "labels": {"pool": "ms"}, "ownerReferences": [{
                                                "apiVersion": V1B2, "kind": "MachineSet",
                                                "name": "x", "uid": "u", "controller": True}]}})
    await fake.create(machine_set("ms", 1))
    await reconcile(fake)
    orphan = await fake.get(V1B2, "Machine", "orphan", NS)
    assert orphan["metadata"]["ownerReferences"][0]["name"] == "ms"
    assert len(await machines(fake)) == 2  # the orphan plus the one it did not own
    assert (await fake.get(V1B2, "MachineSet", "ms", NS))["status"]["replicas"] == 1


async def test_selector_must_match_template() -> None:
    fake = await capi_fake()
    bad = machine_set("ms", 1)
    bad["spec"]["selector"] = {"matchLabels": {"pool": "other"}}
    await fake.create(bad)
    try:
        await reconcile(fake)
    except TerminalError as e:
        assert "selector" in str(e)
    else:
        raise AssertionError("expected a TerminalError")
    assert await machines(fake) == []


async def test_remediates_owner_remediated_false() -> None:
    fake = await capi_fake()
    await fake.create(machine_set("ms", 2))
    await reconcile(fake)
    sick = (await machines(fake))[0]
    await fake.patch(V1B2, "Machine", sick["metadata"]["name"], {"status": {"conditions": [
        {"type": "HealthCheckSucceeded", "status": "False", "reason": "UnhealthyNode",
         "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "OwnerRemediated", "status": "False", "reason": "WaitingForRemediation",
         "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}, NS,
        subresource="status")
    await reconcile(fake)
    names = {m["metadata"]["name"] for m in await machines(fake)}
    assert sick["metadata"]["name"] not in names and len(names) == 2  # replaced


async def test_propagates_labels_and_in_place_fields() -> None:
    fake = await capi_fake()
    await fake.create(machine_set("ms", 2))
    await reconcile(fake)
    await fake.patch(V1B2, "MachineSet", "ms", {"spec": {"template": {
        "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
        "spec": {"deletion": {"nodeDrainTimeoutSeconds": 30}}}}}, NS)
    before = {m["metadata"]["uid"] for m in await machines(fake)}
    await reconcile(fake)
    found = await machines(fake)
    assert {m["metadata"]["uid"] for m in found} == before
    for m in found:
        assert m["metadata"]["labels"]["team"] == "a"
        assert m["metadata"]["annotations"]["note"] == "x"
        assert m["spec"]["deletion"] == {"nodeDrainTimeoutSeconds": 30}


async def test_disable_machine_create_and_pause() -> None:
    fake = await capi_fake()
    ms = machine_set("ms", 2)
    ms["metadata"]["annotations"] = {"cluster.x-k8s.io/disable-machine-create": "true"}
    await fake.create(ms)
    await reconcile(fake)
    assert await machines(fake) == []
    await fake.patch(V1B2, "MachineSet", "ms", {"metadata": {"annotations": {
        "cluster.x-k8s.io/disable-machine-create": None}}}, NS)
    await fake.patch(V1B2, "Cluster", "c1", {"spec": {"paused": True}}, NS)
    await reconcile(fake)
    assert await machines(fake) == []
    status = (await fake.get(V1B2, "MachineSet", "ms", NS))["status"]
    assert [c["status"] for c in status["conditions"] if c["type"] == "Paused"] == ["True"]
    await fake.patch(V1B2, "Cluster", "c1", {"spec": {"paused": False}}, NS)
    await reconcile(fake)
    assert len(await machines(fake)) == 2


async def test_deletion_removes_machines_then_finalizer() -> None:
    fake = await capi_fake()
    await fake.create(machine_set("ms", 2))
    await reconcile(fake)
    await fake.delete(V1B2, "MachineSet", "ms", NS)
    await reconcile(fake, times=2)
    assert await machines(fake) == []
    assert (await fake.list(V1B2, "MachineSet", NS))["items"] == []


async def test_remediation_respects_deployment_max_in_flight() -> None:
    fake = await capi_fake()
    await fake.create({"apiVersion": V1B2, "kind": "MachineDeployment",
                       "metadata": {"name": "md", "namespace": NS},
                       "spec": {"clusterName": "c1", "replicas": 3,
                                "remediation": {"maxInFlight": 1},
                                "selector": {"matchLabels": {"pool": "ms"}},
                                "template": machine_set("ms", 0)["spec"]["template"]}})
    md = await fake.get(V1B2, "MachineDeployment", "md", NS)
    ms = machine_set("ms", 3)
    ms["metadata"]["ownerReferences"] = [{"apiVersion": V1B2, "kind": "MachineDeployment",
                                          "name": "md", "uid": md["metadata"]["uid"],
                                          "controller": True}]
    ms["metadata"]["labels"] = {"cluster.x-k8s.io/deployment-name": "md"}
    await fake.create(ms)
    await reconcile(fake)
    found = await machines(fake)
    assert all(m["metadata"]["labels"]["cluster.x-k8s.io/deployment-name"] == "md"
               for m in found)
    unhealthy = [{"type": t, "status": "False", "reason": "Test", "message": "",
                  "lastTransitionTime": "2026-01-01T00:00:00Z"}
                 for t in ("HealthCheckSucceeded", "OwnerRemediated")]
    for m in found:
        # A finalizer keeps deleted machines around, as the Machine controller's would.
        await fake.patch(V1B2, "Machine", m["metadata"]["name"],
                         {"metadata": {"finalizers": ["test/hold"]}}, NS)
        await fake.patch(V1B2, "Machine", m["metadata"]["name"],
                         {"status": {"conditions": unhealthy}}, NS, subresource="status")
    await reconcile(fake)
    deleting = [m for m in await machines(fake) if m["metadata"].get("deletionTimestamp")]
    assert len(deleting) == 1  # maxInFlight 1
    await reconcile(fake)
    assert sum(1 for m in await machines(fake) if m["metadata"].get("deletionTimestamp")) == 1
