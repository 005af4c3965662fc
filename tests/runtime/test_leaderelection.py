"""Two managers contending for one Lease on the live server: one reconciles, the other takes
over when the first stops; a holder that cannot renew stops its controllers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from shipyard.apimachinery.errors import Conflict
from shipyard.client import Client
from shipyard.runtime import (
    LeaderElectionConfig,
    LeaderElectionLost,
    Manager,
    Metrics,
    Request,
    Result,
)
from shipyard.runtime.leaderelection import LEASE, micro_time
from tests.kube import Server
from tests.runtime.conftest import eventually

CM = ("v1", "ConfigMap")


class Recorder:
    def __init__(self, who: str, seen: list[tuple[str, str]]) -> None:
        self.who = who
        self.seen = seen

    async def reconcile(self, req: Request) -> Result:
        self.seen.append((self.who, req.name))
        return Result()


@pytest.fixture
async def kube2(server: Server) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(server.kubeconfig) as client:
        yield client


def election(namespace: str, lease: str, identity: str, release: bool) -> LeaderElectionConfig:
    return LeaderElectionConfig(lease, namespace, identity=identity, lease_duration=2,
                                renew_deadline=1.5, retry_period=0.2,
                                release_on_cancel=release)


async def make(client: Client, namespace: str, lease: str, who: str, seen: list[tuple[str, str]],
               metrics: Metrics, release: bool = False) -> Manager:
    mgr = Manager(client, namespace=namespace, metrics=metrics, graceful_shutdown_timeout=2,
                  leader_election=election(namespace, lease, who, release))
    await mgr.new_controller("le", Recorder(who, seen), for_=CM)
    return mgr


async def create_cm(kube: Client, namespace: str, name: str) -> None:
    await kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": namespace}})


@pytest.mark.parametrize("release", [False, True], ids=["expiry", "release"])
async def test_only_the_leader_reconciles_and_the_standby_takes_over(
        kube: Client, kube2: Client, namespace: str, metrics: Metrics, release: bool) -> None:
    lease = f"le-{uuid.uuid4().hex[:6]}"
    seen: list[tuple[str, str]] = []
    first = await make(kube, namespace, lease, "one", seen, metrics, release)
    second = await make(kube2, namespace, lease, "two", seen, metrics, release)
    run_first = asyncio.create_task(first.run())
    await asyncio.wait_for(first.elected.wait(), 10)
    run_second = asyncio.create_task(second.run())
    await create_cm(kube, namespace, "a")
    await eventually(lambda: ("one", "a") in seen, what="leader reconciles")
    assert not second.elected.is_set()
    held = await kube.get(*LEASE, lease, namespace)
    assert held["spec"]["holderIdentity"] == "one"
    assert held["spec"]["leaseDurationSeconds"] == 2
    assert metrics.registry.get_sample_value("leader_election_master_status",
                                             {"name": lease}) == 1

    first.stop()
    await asyncio.wait_for(run_first, 10)
    await asyncio.wait_for(second.elected.wait(), 10)
    await create_cm(kube, namespace, "b")
    await eventually(lambda: ("two", "b") in seen, what="new leader reconciles")
    assert not any(who == "two" for who, _ in seen[:seen.index(("one", "a")) + 1])
    assert ("one", "b") not in seen
    taken = await kube.get(*LEASE, lease, namespace)
    assert taken["spec"]["holderIdentity"] == "two"
    assert taken["spec"]["leaseTransitions"] == 1
    second.stop()
    await asyncio.wait_for(run_second, 10)


async def test_losing_the_lease_stops_the_controllers(
        kube: Client, namespace: str, metrics: Metrics) -> None:
    lease = f"le-{uuid.uuid4().hex[:6]}"
    seen: list[tuple[str, str]] = []
    mgr = await make(kube, namespace, lease, "one", seen, metrics)
    running = asyncio.create_task(mgr.run())
    await asyncio.wait_for(mgr.elected.wait(), 10)
    # another party takes the Lease over and keeps it fresh
    for _ in range(20):
        taken = await kube.get(*LEASE, lease, namespace)
        taken["spec"].update(holderIdentity="impostor", renewTime=micro_time(),
                             leaseDurationSeconds=30)
        try:
            await kube.update(taken)
            break
        except Conflict:  # raced a renewal
            continue
    with pytest.raises(LeaderElectionLost):
        await asyncio.wait_for(running, 10)
    assert all(c.queue.shutting_down for c in mgr.controllers)
    assert metrics.registry.get_sample_value("leader_election_master_status",
                                             {"name": lease}) == 0
