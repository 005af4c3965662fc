"""The engine wrapper's network attachments for self-managed clusters, on a real engine: a
managing cluster's control-plane containers are attached to a managed cluster's network, and
before that network goes every other cluster's machine is detached, while a container that is
no Shipyard machine is left attached (so the network stays, as before)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import docker
import pytest

from shipyard.providers.docker import engine as eng


@pytest.fixture
def network(docker_client: docker.DockerClient) -> Iterator[str]:
    namespace, cluster = "default", f"managed-{os.urandom(3).hex()}"
    name = eng.network_name(namespace, cluster)
    docker_client.networks.create(name, driver="bridge", internal=True,
                                  labels={eng.OWNER_LABEL: eng.owner_key(namespace, cluster)})
    yield name
    for net in docker_client.networks.list(names=[name]):
        net.reload()
        for container in net.containers:
            net.disconnect(container, force=True)
        net.remove()


def test_attach_is_idempotent_and_detach_spares_non_machines(
    docker_client: docker.DockerClient, node_image: str, network: str,
    container_labels: dict[str, str],
) -> None:
    owner = eng.owner_key("default", network.removeprefix("shipyard-default-"))
    run = docker_client.containers.run
    manager = run(node_image, command=["sleep", "600"], detach=True,
                  name=f"manager-{os.urandom(3).hex()}",
                  labels={**container_labels, eng.OWNER_LABEL: "default.managing"})
    bystander = run(node_image, command=["sleep", "600"], detach=True,
                    name=f"bystander-{os.urandom(3).hex()}", labels=container_labels)
    engine = eng.Engine()
    try:
        engine.attach(network, manager.name)
        engine.attach(network, manager.name)  # already attached: nothing to do
        docker_client.networks.get(network).connect(bystander)
        manager.reload()
        assert network in manager.attrs["NetworkSettings"]["Networks"]

        engine.detach_managers(network, owner)
        manager.reload()
        bystander.reload()
        assert network not in manager.attrs["NetworkSettings"]["Networks"]
        assert network in bystander.attrs["NetworkSettings"]["Networks"]
        assert engine.remove_network(network, owner) is False  # the bystander holds it
    finally:
        engine.close()
