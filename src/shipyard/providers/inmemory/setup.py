"""Registering the in-memory provider on a Manager.

`await setup(mgr, InMemoryOptions(...))` adds the InMemoryCluster and InMemoryMachine
controllers and returns the `WorkloadClusters` they share: whoever runs the manager owns the
simulated clusters' processes and must `await workloads.aclose()` after `mgr.run()` returns.
Its CRDs (`types.crd_manifests()`) are installed by `shipyard init` / `shipyard controllers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shipyard.controllers.kinds import CLUSTER, MACHINE
from shipyard.controllers.predicates import cluster_update_relevant, machine_relevant
from shipyard.providers.inmemory import types
from shipyard.providers.inmemory.cluster import InMemoryClusterReconciler
from shipyard.providers.inmemory.machine import InMemoryMachineReconciler
from shipyard.providers.inmemory.workload import WorkloadClusters
from shipyard.runtime import Manager


@dataclass
class InMemoryOptions:
    boot_delay: float = 0.0
    """Default seconds a machine takes to "boot" (InMemoryMachine spec.bootDelaySeconds wins)."""
    data_dir: Path | None = None
    """Where the simulated clusters keep their state (default: a temporary directory)."""
    concurrency: int = 10


async def setup(mgr: Manager, options: InMemoryOptions | None = None) -> WorkloadClusters:
    opts = options or InMemoryOptions()
    workloads = WorkloadClusters(opts.data_dir)
    clusters = InMemoryClusterReconciler(mgr, workloads)
    await mgr.new_controller("inmemorycluster", clusters, for_=types.CLUSTER,
                             watches=[(CLUSTER, clusters.map_cluster)],
                             max_concurrent_reconciles=opts.concurrency)
    machines = InMemoryMachineReconciler(mgr, workloads, opts.boot_delay)
    controller = await mgr.new_controller("inmemorymachine", machines, for_=types.MACHINE,
                                          max_concurrent_reconciles=opts.concurrency)
    controller.watch(mgr.informer(MACHINE), machines.map_machine,
                     update_predicate=machine_relevant)
    # Only Cluster changes a machine acts on: the Cluster's status counters change with every
    # Machine, and waking all of its machines each time is quadratic.
    controller.watch(mgr.informer(CLUSTER), machines.map_cluster,
                     update_predicate=cluster_update_relevant)
    return workloads
