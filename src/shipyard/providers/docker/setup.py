"""Registering the Docker provider on a Manager.

`provider = await setup(mgr, DockerOptions())` adds the DockerCluster and DockerMachine
controllers and returns the `DockerProvider` they share; whoever runs the manager calls
`await provider.aclose()` after `mgr.run()` returns (it closes the engine connection).
Containers are left running on purpose: they are the machines, found again by their labels
when the controllers restart; deleting their DockerMachines removes them.

The engine is reached through ``DockerOptions.docker_host`` or, when None, ``DOCKER_HOST`` as
the docker CLI does; it is not contacted before the first DockerCluster needs it, so the
controllers start (and report `DockerEngineUnreachable` on the objects) without one. The node
image defaults to Shipyard's own (`image.default_node_image()`, built by `shipyard build
node-image`); a DockerMachine's ``spec.customImage`` overrides it.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from shipyard.controllers.kinds import CLUSTER, MACHINE
from shipyard.controllers.predicates import cluster_update_relevant, machine_relevant
from shipyard.providers.docker import types
from shipyard.providers.docker.cluster import DockerClusterReconciler
from shipyard.providers.docker.engine import Engine
from shipyard.providers.docker.image import default_node_image
from shipyard.providers.docker.machine import DockerMachineReconciler
from shipyard.runtime import Manager

SELF_CONTAINER_ENV = "SHIPYARD_DOCKER_CONTAINER"
"""Names the container the controllers run in, when that is a machine on the same engine."""


@dataclass
class DockerOptions:
    docker_host: str | None = None
    node_image: str | None = None
    concurrency: int = 10
    self_container: str | None = None
    """None: from ``SHIPYARD_DOCKER_CONTAINER``."""


@dataclass
class DockerProvider:
    engine: Engine
    clusters: DockerClusterReconciler
    machines: DockerMachineReconciler

    async def aclose(self) -> None:
        await asyncio.to_thread(self.engine.close)


async def setup(mgr: Manager, options: DockerOptions | None = None) -> DockerProvider:
    opts = options or DockerOptions()
    engine = Engine(opts.docker_host)
    image = opts.node_image or default_node_image()
    self_container = opts.self_container or os.environ.get(SELF_CONTAINER_ENV) or None
    clusters = DockerClusterReconciler(mgr, engine, image, self_container)
    controller = await mgr.new_controller("dockercluster", clusters, for_=types.CLUSTER,
                                          watches=[(CLUSTER, clusters.map_cluster)],
                                          max_concurrent_reconciles=opts.concurrency)
    controller.watch(mgr.informer(MACHINE), clusters.map_machine,
                     update_predicate=machine_relevant)
    machines = DockerMachineReconciler(mgr, engine, image, clusters)
    controller = await mgr.new_controller("dockermachine", machines, for_=types.MACHINE,
                                          max_concurrent_reconciles=opts.concurrency)
    controller.watch(mgr.informer(MACHINE), machines.map_machine,
                     update_predicate=machine_relevant)
    controller.watch(mgr.informer(CLUSTER), machines.map_cluster,
                     update_predicate=cluster_update_relevant)
    return DockerProvider(engine, clusters, machines)
