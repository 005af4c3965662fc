"""`shipyard controllers` as processes: SIGKILLed in the middle of a rollout and restarted, it
converges without ever exceeding replicas + maxSurge machines; two replicas with
--leader-elect, exactly one holds the Lease and reconciles, and when it is killed the other
takes over (after the Lease expires: the default 15 s lease duration, so this is the slowest
scenario)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.apimachinery.errors import NotFound
from shipyard.client import Client, Object
from tests.kube import Server
from tests.scenarios.conftest import (
    V2,
    ControllerProcess,
    MachineWatcher,
    converged,
    create_all,
    eventually,
    machine_deployment,
    machines,
    workload_cluster,
)

SURGE = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
LEASE = "controller-leader-election-capi"


def group_members(pgid: int) -> list[int]:
    """Pids in process group `pgid` (the controllers and the workload API servers they run)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                found.append(int(entry))
    return found


@pytest.mark.timeout(90)
async def test_killed_mid_rollout_and_restarted_converges_without_extra_machines(
        capi: Server, kube: Client, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    workloads = tmp_path / "workloads"
    proc = ControllerProcess(capi, ns, workloads, tmp_path / "first.log")
    restarted: ControllerProcess | None = None
    watcher = MachineWatcher(kube, ns)
    try:
        await create_all(kube, ns, [*workload_cluster(),
                                    machine_deployment("md", 3, strategy=SURGE)])
        await eventually(lambda: converged(kube, ns, "md", 3), "3 machines", timeout=40)
        await watcher.start()
        await kube.patch(V2, "MachineDeployment", "md",
                         {"spec": {"template": {"spec": {"version": "v1.34.0"}}}}, ns)

        async def mid_rollout() -> list[Object] | None:
            found = await machines(kube, ns, "md")
            new = [m for m in found if m["spec"]["version"] == "v1.34.0"]
            return found if new and len(new) < 3 else None

        await eventually(mid_rollout, "the rollout under way", timeout=30)
        proc.kill()
        assert group_members(proc.pid) == []
        restarted = ControllerProcess(capi, ns, workloads, tmp_path / "second.log")
        await eventually(lambda: converged(kube, ns, "md", 3, "v1.34.0"),
                         "the rollout to finish after the restart", timeout=50)
    except AssertionError as e:
        logs = proc.tail() + (restarted.tail() if restarted else "")
        raise AssertionError(f"{e}\n{logs}") from e
    finally:
        watcher.stop()
        proc.stop()
        if restarted is not None:
            restarted.stop()
    assert watcher.highest_total <= 3 + 1, "more machines than replicas + maxSurge"
    sets = (await kube.list(V2, "MachineSet", ns))["items"]
    assert sorted(ms["spec"]["replicas"] for ms in sets)[-1] == 3
    assert sum(ms["spec"]["replicas"] for ms in sets) == 3


@pytest.mark.timeout(90)
async def test_leader_election_one_reconciles_and_the_other_takes_over(
        capi: Server, kube: Client, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    procs = [ControllerProcess(capi, ns, tmp_path / f"workloads-{i}", tmp_path / f"{i}.log",
                               leader_elect=True) for i in range(2)]
    try:
        async def holder(other_than: str | None = None) -> str | None:
            try:
                lease = await kube.get("coordination.k8s.io/v1", "Lease", LEASE, ns)
            except NotFound:
                return None
            identity = (lease.get("spec") or {}).get("holderIdentity")
            return str(identity) if identity and identity != other_than else None

        async def process_of(identity: str) -> list[int]:
            """The processes that logged acquiring the Lease as `identity`."""
            return [i for i, p in enumerate(procs) if identity in p.log.read_text()]

        identity = await eventually(holder, "a leader", timeout=30)
        (leader,) = await eventually(lambda: process_of(identity), "the leader's log")
        follower = 1 - leader
        await create_all(kube, ns, [*workload_cluster(), machine_deployment("md", 2)])
        await eventually(lambda: converged(kube, ns, "md", 2), "2 machines", timeout=40)
        # Only the leader reconciles: only it runs the Cluster's workload API server.
        assert len(group_members(procs[leader].pid)) > 1
        assert group_members(procs[follower].pid) == [procs[follower].pid]
        assert await holder() == identity

        procs[leader].kill()
        await kube.patch(V2, "MachineDeployment", "md", {"spec": {"replicas": 3}}, ns,
                         subresource="scale")
        new_identity = await eventually(lambda: holder(other_than=identity),
                                        "the follower to take the Lease", timeout=40)
        assert await eventually(lambda: process_of(new_identity), "its log") == [follower]
        await eventually(lambda: converged(kube, ns, "md", 3), "3 machines", timeout=40)
        assert len(group_members(procs[follower].pid)) > 1
    except AssertionError as e:
        raise AssertionError(f"{e}\n" + "\n".join(p.tail() for p in procs)) from e
    finally:
        for p in procs:
            p.stop()

