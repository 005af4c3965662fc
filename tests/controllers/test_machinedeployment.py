"""The MachineDeployment reconciler on the FakeClient, with the MachineSet reconciler and a
stand-in for the Machine controller (marking machines available) in the loop: creation,
in-place propagation, RollingUpdate never dropping below the availability floor, OnDelete,
rollout.after, pause, scaling and deletion."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from shipyard.client import FakeClient, Object
from shipyard.controllers.machinedeployment import MachineDeploymentReconciler
from shipyard.controllers.machineset import MachineSetReconciler
from shipyard.controllers.rollout import max_surge, max_unavailable
from shipyard.runtime import Request
from tests.controllers.capi_fakes import (
    NS,
    V1B2,
    capi_fake,
    is_marked,
    machine_template,
    machines,
    mark,
)


def deployment(replicas: int, surge: Any = 1, unavailable: Any = 0,
               strategy: str = "RollingUpdate") -> Object:
    labels = {"pool": "md"}
    rollout: dict[str, Any] = {"strategy": {"type": strategy}}
    if strategy == "RollingUpdate":
        rollout["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": V1B2, "kind": "MachineDeployment",
            "metadata": {"name": "md", "namespace": NS},
            "spec": {"clusterName": "c1", "replicas": replicas, "rollout": rollout,
                     "selector": {"matchLabels": labels},
                     "template": machine_template(labels)}}


class Loop:
    """Both reconcilers plus 'the Machine controller' (every machine becomes available)."""

    def __init__(self, fake: FakeClient) -> None:
        self.fake = fake
        rng = random.Random(11)
        self.md = MachineDeploymentReconciler(fake, rng=rng)
        self.ms = MachineSetReconciler(fake, rng=rng)

    async def sets(self) -> list[Object]:
        return (await self.fake.list(V1B2, "MachineSet", NS))["items"]

    async def step(self, *, make_available: bool = True) -> None:
        await self.md.reconcile(Request(NS, "md"))
        for ms in await self.sets():
            await self.ms.reconcile(Request(NS, ms["metadata"]["name"]))
        if make_available:
            for m in await machines(self.fake):
                if not is_marked(m):
                    await mark(self.fake, m)
        for ms in await self.sets():  # status catches up with the marks
            await self.ms.reconcile(Request(NS, ms["metadata"]["name"]))
        await self.md.reconcile(Request(NS, "md"))

    async def available(self) -> int:
        return sum(1 for m in await machines(self.fake)
                   if any(c["type"] == "Available" and c["status"] == "True"
                          for c in (m.get("status") or {}).get("conditions") or ()))


async def test_creates_a_machine_set_with_hash_and_annotations() -> None:
    fake = await capi_fake()
    await fake.create(deployment(3))
    loop = Loop(fake)
    await loop.step()
    (ms,) = await loop.sets()
    hash_label = ms["metadata"]["labels"]["machine-template-hash"]
    digits, _, suffix = hash_label.partition("-")
    assert digits.isdigit() and len(suffix) == 5
    assert ms["spec"]["selector"]["matchLabels"] == {
        "pool": "md", "machine-template-hash": hash_label,
        "cluster.x-k8s.io/cluster-name": "c1"}  # selector and template in the same cluster
    assert ms["metadata"]["name"].startswith("md-")
    assert ms["metadata"]["labels"]["cluster.x-k8s.io/deployment-name"] == "md"
    assert ms["metadata"]["annotations"] == {
        "machinedeployment.clusters.x-k8s.io/revision": "1",
        "machinedeployment.clusters.x-k8s.io/desired-replicas": "3",
        "machinedeployment.clusters.x-k8s.io/max-replicas": "4"}
    found = await machines(fake)
    assert len(found) == 3
    assert all(m["metadata"]["labels"]["cluster.x-k8s.io/deployment-name"] == "md"
               and m["metadata"]["labels"]["machine-template-hash"] == hash_label
               for m in found)
    md = await fake.get(V1B2, "MachineDeployment", "md", NS)
    assert md["metadata"]["annotations"]["machinedeployment.clusters.x-k8s.io/revision"] == "1"
    status = md["status"]
    assert (status["replicas"], status["availableReplicas"], status["upToDateReplicas"],
            status["phase"]) == (3, 3, 3, "Running")
    assert status["selector"] == "cluster.x-k8s.io/cluster-name=c1,pool=md"


async def rolling(replicas: int, surge: Any, unavailable: Any) -> None:
    fake = await capi_fake()
    md = deployment(replicas, surge, unavailable)
    floor = replicas - max_unavailable(md["spec"])
    await fake.create(md)
    loop = Loop(fake)
    for _ in range(3):
        await loop.step()
    first = {m["metadata"]["uid"] for m in await machines(fake)}
    assert len(first) == replicas
    await fake.patch(V1B2, "MachineDeployment", "md",
                     {"spec": {"template": {"spec": {"version": "v1.34.0"}}}}, NS)
    for _ in range(4 * replicas + 4):
        await loop.step()
        assert await loop.available() >= floor
        assert len(await machines(fake)) <= replicas + max_surge(md["spec"])
    final = await machines(fake)
    assert len(final) == replicas
    assert not first & {m["metadata"]["uid"] for m in final}
    assert all(m["spec"]["version"] == "v1.34.0" for m in final)
    (ms,) = await loop.sets()
    assert ms["metadata"]["annotations"]["machinedeployment.clusters.x-k8s.io/revision"] == "2"
    status = (await fake.get(V1B2, "MachineDeployment", "md", NS))["status"]
    assert (status["replicas"], status["upToDateReplicas"], status["phase"]) == (
        replicas, replicas, "Running")


async def test_rolling_update_surge_one_unavailable_zero() -> None:
    await rolling(3, 1, 0)


async def test_rolling_update_no_surge() -> None:
    await rolling(3, 0, 1)


async def test_rolling_update_percentages() -> None:
    await rolling(4, "50%", "25%")


async def test_rolling_update_waits_for_availability() -> None:
    fake = await capi_fake()
    await fake.create(deployment(2, 1, 0))
    loop = Loop(fake)
    await loop.step()
    await fake.patch(V1B2, "MachineDeployment", "md",
                     {"spec": {"template": {"spec": {"version": "v1.34.0"}}}}, NS)
    for _ in range(5):
        await loop.step(make_available=False)
    found = await machines(fake)
    assert len(found) == 3  # one surge machine, never available, so no old one goes
    assert sum(m["spec"]["version"] == "v1.34.0" for m in found) == 1
    up_to_date = {m["spec"]["version"]: [c["status"] for c in m["status"]["conditions"]
                                         if c["type"] == "UpToDate"] for m in found}
    assert up_to_date == {"v1.33.0": ["False"], "v1.34.0": ["True"]}
    status = (await fake.get(V1B2, "MachineDeployment", "md", NS))["status"]
    assert (status["replicas"], status["upToDateReplicas"], status["phase"]) == (
        3, 1, "ScalingDown")
    assert [c["status"] for c in status["conditions"] if c["type"] == "RollingOut"] == ["True"]


async def test_in_place_changes_do_not_roll_out() -> None:
    fake = await capi_fake()
    await fake.create(deployment(2))
    loop = Loop(fake)
    await loop.step()
    before = {m["metadata"]["uid"] for m in await machines(fake)}
    await fake.patch(V1B2, "MachineDeployment", "md", {"spec": {
        "deletion": {"order": "Oldest"},
        "template": {"metadata": {"labels": {"team": "x"}, "annotations": {"a": "b"}},
                     "spec": {"deletion": {"nodeDrainTimeoutSeconds": 7}}}}}, NS)
    await loop.step()
    await loop.step()
    found = await machines(fake)
    assert {m["metadata"]["uid"] for m in found} == before
    assert all(m["metadata"]["labels"]["team"] == "x" and m["metadata"]["annotations"]["a"]
               == "b" and m["spec"]["deletion"] == {"nodeDrainTimeoutSeconds": 7} for m in found)
    (ms,) = await loop.sets()
    assert ms["spec"]["deletion"] == {"order": "Oldest"}
    assert "machine-template-hash" in ms["spec"]["template"]["metadata"]["labels"]


async def test_scale_up_and_down() -> None:
    fake = await capi_fake()
    await fake.create(deployment(2))
    loop = Loop(fake)
    await loop.step()
    await fake.patch(V1B2, "MachineDeployment", "md", {"spec": {"replicas": 4}}, NS)
    await loop.step()
    assert len(await machines(fake)) == 4
    await fake.patch(V1B2, "MachineDeployment", "md", {"spec": {"replicas": 1}}, NS)
    await loop.md.reconcile(Request(NS, "md"))
    (ms,) = await loop.sets()
    assert ms["spec"]["replicas"] == 1
    assert ms["metadata"]["annotations"][
        "machinedeployment.clusters.x-k8s.io/desired-replicas"] == "1"
    await loop.step()
    assert len(await machines(fake)) == 1


async def test_on_delete_replaces_only_deleted_machines() -> None:
    fake = await capi_fake()
    await fake.create(deployment(2, strategy="OnDelete"))
    loop = Loop(fake)
    await loop.step()
    await fake.patch(V1B2, "MachineDeployment", "md",
                     {"spec": {"template": {"spec": {"version": "v1.34.0"}}}}, NS)
    await loop.step()
    await loop.step()
    found = await machines(fake)
    assert len(found) == 2 and all(m["spec"]["version"] == "v1.33.0" for m in found)
    await fake.delete(V1B2, "Machine", found[0]["metadata"]["name"], NS)
    await loop.step()
    await loop.step()
    found = await machines(fake)
    assert sorted(m["spec"]["version"] for m in found) == ["v1.33.0", "v1.34.0"]


async def test_rollout_after_replaces_machines() -> None:
    fake = await capi_fake()
    await fake.create(deployment(2))
    loop = Loop(fake)
    await loop.step()
    before = {m["metadata"]["uid"] for m in await machines(fake)}
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await fake.patch(V1B2, "MachineDeployment", "md", {"spec": {"rollout": {"after": future}}},
                     NS)
    await loop.step()
    assert {m["metadata"]["uid"] for m in await machines(fake)} == before  # not yet due
    (ms,) = await loop.sets()
    # Timestamps have second precision: wait into the next second so "after" can be later
    # than the set's creation and already past.
    while datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") <= ms["metadata"][
            "creationTimestamp"]:
        await asyncio.sleep(0.05)
    due = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    await fake.patch(V1B2, "MachineDeployment", "md", {"spec": {"rollout": {"after": due}}},
                     NS)
    for _ in range(8):
        await loop.step()
    final = await machines(fake)
    assert len(final) == 2 and not before & {m["metadata"]["uid"] for m in final}
    assert len(await loop.sets()) == 1


async def test_paused_deployment_only_reports() -> None:
    fake = await capi_fake()
    md = deployment(2)
    md["spec"]["paused"] = True
    await fake.create(md)
    loop = Loop(fake)
    await loop.step()
    assert await loop.sets() == []
    status = (await fake.get(V1B2, "MachineDeployment", "md", NS))["status"]
    assert status["replicas"] == 0 and status["phase"] == "ScalingUp"


async def test_deletion_removes_sets_then_finalizer() -> None:
    fake = await capi_fake()
    await fake.create(deployment(2))
    loop = Loop(fake)
    await loop.step()
    await fake.delete(V1B2, "MachineDeployment", "md", NS)
    for _ in range(3):
        await loop.md.reconcile(Request(NS, "md"))
        for ms in await loop.sets():
            await loop.ms.reconcile(Request(NS, ms["metadata"]["name"]))
    assert await loop.sets() == []
    assert (await fake.list(V1B2, "MachineDeployment", NS))["items"] == []


async def test_an_empty_selector_is_defaulted_as_upstream_does() -> None:
    """CAPD's quick start writes ``selector: {matchLabels: null}`` and no template labels,
    leaving the rest to upstream's defaulting webhook, which Shipyard does not run: the
    controller defaults them (deployment name and cluster name labels) and carries on."""
    fake = await capi_fake()
    md = deployment(2)
    md["spec"]["selector"] = {"matchLabels": None}
    md["spec"]["template"]["metadata"] = {}
    await fake.create(md)
    loop = Loop(fake)
    await loop.step()
    await loop.step()
    md = await fake.get(V1B2, "MachineDeployment", "md", NS)
    expected = {"cluster.x-k8s.io/cluster-name": "c1", "cluster.x-k8s.io/deployment-name": "md"}
    assert md["spec"]["selector"]["matchLabels"] == expected
    assert md["spec"]["template"]["metadata"]["labels"] == expected
    found = await machines(fake)
    assert len(found) == 2
    assert all(m["metadata"]["labels"].items() >= expected.items() for m in found)
    assert md["status"]["selector"]
