"""Registering the process provider on a Manager.

`provider = await setup(mgr, ProcessOptions(data_dir=...))` adds the ProcessCluster and
ProcessMachine controllers and returns the `ProcessProvider` they share. Whoever runs the
manager must `await provider.aclose()` after `mgr.run()` returns: it closes the control-plane
load balancers. Machines are left running on purpose (they survive a controller restart and
are found again under `data_dir`); deleting their ProcessMachines stops them.
Its CRDs (`types.crd_manifests()`) are installed by `shipyard init` / `shipyard controllers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shipyard.controllers.kinds import CLUSTER, MACHINE
from shipyard.controllers.predicates import cluster_update_relevant, machine_relevant
from shipyard.providers.process import types
from shipyard.providers.process.cluster import ProcessClusterReconciler
from shipyard.providers.process.machine import ProcessMachineReconciler
from shipyard.providers.process.supervisor import Supervisor
from shipyard.runtime import Manager


def _default_data_dir() -> Path:
    return Path("~/.local/share/shipyard/process").expanduser()


@dataclass
class ProcessOptions:
    data_dir: Path = field(default_factory=_default_data_dir)
    """Where machines keep their directories (one per machine: root filesystem, logs, pid)."""
    address_prefix: str = "127.77"
    """Machines get addresses <prefix>.<x>.<y> (a /16 of the loopback network)."""
    concurrency: int = 10


@dataclass
class ProcessProvider:
    supervisor: Supervisor
    clusters: ProcessClusterReconciler

    async def aclose(self) -> None:
        await self.clusters.aclose()
        self.supervisor.close()


async def setup(mgr: Manager, options: ProcessOptions | None = None) -> ProcessProvider:
    opts = options or ProcessOptions()
    supervisor = Supervisor(opts.data_dir, opts.address_prefix)
    clusters = ProcessClusterReconciler(mgr, supervisor)
    await mgr.new_controller("processcluster", clusters, for_=types.CLUSTER,
                             watches=[(CLUSTER, clusters.map_cluster)],
                             max_concurrent_reconciles=opts.concurrency)
    machines = ProcessMachineReconciler(mgr, supervisor)
    controller = await mgr.new_controller("processmachine", machines, for_=types.MACHINE,
                                          max_concurrent_reconciles=opts.concurrency)
    controller.watch(mgr.informer(MACHINE), machines.map_machine,
                     update_predicate=machine_relevant)
    controller.watch(mgr.informer(CLUSTER), machines.map_cluster,
                     update_predicate=cluster_update_relevant)
    return ProcessProvider(supervisor, clusters)
