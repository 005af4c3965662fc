"""`shipyard create cluster -i docker` end to end: a throw-away management plane, a cluster of
containers, the pivot into it; then the cluster manages itself from inside its control-plane
container (the engine's socket mounted there, as CAPD's self-hosted tests do): it scales its
own MachineDeployment and creates a second Docker cluster on another private network, which
its container joins. Deleting both leaves no container or network behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from shipyard.providers.docker import engine
from tests.cli.test_create import Env, ready_nodes, until

pytestmark = pytest.mark.slow


def owned(client: docker.DockerClient, name: str) -> list[str]:
    label = f"{engine.OWNER_LABEL}={engine.owner_key('default', name)}"
    return sorted(c.name for c in client.containers.list(all=True, filters={"label": label}))


def networks(client: docker.DockerClient, name: str) -> list[str]:
    wanted = engine.network_name("default", name)
    return [n.name for n in client.networks.list(names=[wanted]) if n.name == wanted]


@pytest.fixture
def names(docker_client: docker.DockerClient) -> Iterator[tuple[str, str]]:
    suffix = os.urandom(2).hex()
    pair = (f"dself-{suffix}", f"dsecond-{suffix}")
    yield pair
    for name in pair:  # whatever a failed run left
        for container in owned(docker_client, name):
            docker_client.containers.get(container).remove(force=True)
        for network in networks(docker_client, name):
            docker_client.networks.get(network).remove()


@pytest.mark.timeout(600)
def test_self_managed_docker_cluster(tmp_path: Path, docker_client: docker.DockerClient,
                                     node_image: str, names: tuple[str, str]) -> None:
    env = Env(tmp_path)
    first, second = names
    created = env.shipyard("create", "cluster", first, "-i", "docker",
                           "--worker-machine-count", "1")
    assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-3000:]
    assert "The cluster manages itself" in created.stdout
    kubeconfig = tmp_path / "clusters" / first / "kubeconfig"

    machines = env.json(kubeconfig, "get", "machines", "-n", "default")["items"]
    assert {n["spec"]["providerID"] for n in ready_nodes(env, kubeconfig)} == \
        {m["spec"]["providerID"] for m in machines} and len(machines) == 2
    control_plane = next(m["metadata"]["name"] for m in machines
                         if "cluster.x-k8s.io/control-plane" in m["metadata"]["labels"])
    mounts = docker_client.containers.get(control_plane).attrs["Mounts"]
    assert any(m["Destination"] == "/var/run/docker.sock" for m in mounts)

    # It scales itself: its own controllers, in the control-plane container, add a container.
    env.kubectl(kubeconfig, "scale", "machinedeployment", f"{first}-md-0", "-n", "default",
                "--replicas=2")
    until(lambda: len(ready_nodes(env, kubeconfig)) == 3, "a third Ready Node")
    assert len(owned(docker_client, first)) == 4  # three machines and the load balancer

    # It creates a second cluster, on a network of its own that the controllers' container
    # joins to reach that cluster's API server.
    generated = env.shipyard("generate", "cluster", second, "-i", "docker",
                             "--kubernetes-version", "v1.33.0", "--worker-machine-count", "0")
    assert generated.returncode == 0, generated.stderr
    env.kubectl(kubeconfig, "apply", "-f", "-", stdin=generated.stdout)

    def second_running() -> bool:
        items = env.json(kubeconfig, "get", "machines", "-n", "default", "-l",
                         f"cluster.x-k8s.io/cluster-name={second}")["items"]
        return len(items) == 1 and bool(items[0]["status"].get("nodeRef"))

    until(second_running, f"{second}'s control-plane machine with a Node", timeout=180)
    attached = docker_client.containers.get(control_plane).attrs["NetworkSettings"]["Networks"]
    assert set(attached) == {engine.network_name("default", first),
                             engine.network_name("default", second)}
    # Its own machines keep their addresses on their own network.
    own_ip = attached[engine.network_name("default", first)]["IPAddress"]
    mine = env.json(kubeconfig, "get", "machine", control_plane, "-n", "default")
    assert {"type": "InternalIP", "address": own_ip} in mine["status"]["addresses"]

    gone = env.shipyard("delete", "cluster", second, "-n", "default", "--wait", "--timeout",
                        "120", kubeconfig=kubeconfig)
    assert gone.returncode == 0, gone.stderr
    assert not owned(docker_client, second) and not networks(docker_client, second)
    attached = docker_client.containers.get(control_plane).attrs["NetworkSettings"]["Networks"]
    assert set(attached) == {engine.network_name("default", first)}

    deleted = env.shipyard("delete", "cluster", first, "-n", "default", kubeconfig=kubeconfig)
    assert deleted.returncode == 0, deleted.stdout[-3000:] + deleted.stderr[-3000:]
    assert not owned(docker_client, first) and not networks(docker_client, first)
    assert not (tmp_path / "clusters" / first).exists()


def test_docker_create_refuses_what_cannot_work(tmp_path: Path,
                                                docker_client: docker.DockerClient) -> None:
    env = Env(tmp_path)
    env.environ["DOCKER_HOST"] = "tcp://127.0.0.1:2375"
    tcp = env.shipyard("create", "cluster", "x", "-i", "docker")
    assert tcp.returncode == 2 and "is not a unix socket" in tcp.stderr
    env.environ["DOCKER_HOST"] = str(os.environ["DOCKER_HOST"])
    env.environ["DOCKER_NODE_IMAGE"] = "localhost/shipyard/node:missing"
    missing = env.shipyard("create", "cluster", "x", "-i", "docker")
    assert missing.returncode == 1
    assert "localhost/shipyard/node:missing is not in the Docker engine; build it with " \
        "`shipyard build node-image`" in missing.stderr
    env.environ["DOCKER_HOST"] = f"unix://{tmp_path}/nothing.sock"
    unreachable = env.shipyard("create", "cluster", "x", "-i", "docker")
    assert unreachable.returncode == 1 and "cannot reach a Docker engine" in unreachable.stderr
    assert not (tmp_path / "clusters").exists()
    assert not owned(docker_client, "x")
