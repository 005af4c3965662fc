"""The Docker provider's controllers against a real engine (podman's Docker API in CI): a
DockerCluster gets its private network and load-balancer container, a DockerMachine its
container with the bootstrap data applied from outside (files copied, commands executed), and
bad input becomes conditions with their reasons, never touching anything that is not ours.
No kubeadm here (the user-data is plain cloud-config): that is test_docker_e2e's business."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import tarfile
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker
import pytest
import yaml
from prometheus_client import CollectorRegistry

from shipyard.client import Client
from shipyard.controllers import setup as core
from shipyard.providers.docker import engine as eng
from shipyard.providers.docker import setup as docker_setup
from shipyard.providers.docker import types
from shipyard.runtime import Metrics
from tests.kube import Server
from tests.providers.harness import capi, condition, eventually, install_crd

__all__ = ["capi"]

pytestmark = pytest.mark.slow

V2 = "cluster.x-k8s.io/v1beta2"
SENTINEL = "/run/cluster-api/bootstrap-success.complete"


@pytest.fixture(scope="module")
def docker_crds(capi: Server) -> Iterator[Server]:
    api = capi.client()
    for manifest in types.crd_manifests():
        install_crd(api, manifest)
    yield capi
    api.pool.clear()


@contextlib.asynccontextmanager
async def running(server: Server, namespace: str, node_image: str,
                  docker_host: str | None = None) -> AsyncIterator[Client]:
    kube = Client.from_kubeconfig(server.kubeconfig)
    options = core.Options()
    mgr = await core.build(kube, namespace=namespace, options=options,
                           metrics=Metrics(CollectorRegistry()), graceful_shutdown_timeout=5,
                           informer_options={"backoff_initial": 0.05})
    provider = await docker_setup.setup(mgr, docker_setup.DockerOptions(
        docker_host=docker_host, node_image=node_image))
    task = asyncio.create_task(mgr.run())
    try:
        yield kube
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await task
        await options.aclose()
        await provider.aclose()
        await kube.close()


@pytest.fixture
def cleanup(docker_client: docker.DockerClient, namespace: str) -> Iterator[None]:
    """Whatever a failed test left behind in the engine for this namespace."""
    yield
    for summary in docker_client.api.containers(all=True, filters={"label": eng.OWNER_LABEL}):
        if str(summary["Labels"].get(eng.OWNER_LABEL, "")).startswith(f"{namespace}."):
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.api.remove_container(summary["Id"], force=True, v=True)
    for network in docker_client.networks.list(filters={"label": eng.OWNER_LABEL}):
        if str((network.attrs.get("Labels") or {}).get(eng.OWNER_LABEL, "")).startswith(
                f"{namespace}."):
            network.remove()


def cluster_objects(name: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": V2, "kind": "Cluster", "metadata": {"name": name},
         "spec": {"infrastructureRef": {"apiGroup": types.GROUP, "kind": "DockerCluster",
                                        "name": name}}},
        {"apiVersion": types.API_VERSION, "kind": "DockerCluster", "metadata": {"name": name},
         "spec": {}},
    ]


def user_data(runcmd: list[Any]) -> str:
    doc = {"write_files": [
        {"path": "/etc/demo/config.yaml", "encoding": "b64", "permissions": "0600",
         "content": base64.b64encode(b"secret-setting: 1\n").decode()},
        {"path": "/etc/demo/hello", "content": "hello from {{ ds.meta_data.local_hostname }}"}],
        "users": [{"name": "nobody"}], "runcmd": runcmd}
    return "#cloud-config\n" + yaml.safe_dump(doc)


def machine_objects(name: str, cluster: str, data: str, **spec: Any) -> list[dict[str, Any]]:
    text = "## template: jinja\n" + data
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-bootstrap"},
         "type": "cluster.x-k8s.io/secret",
         "data": {"value": base64.b64encode(text.encode()).decode(), "format":
                  base64.b64encode(b"cloud-config").decode()}},
        {"apiVersion": V2, "kind": "Machine", "metadata": {"name": name},
         "spec": {"clusterName": cluster, "bootstrap": {"dataSecretName": f"{name}-bootstrap"},
                  "infrastructureRef": {"apiGroup": types.GROUP, "kind": "DockerMachine",
                                        "name": name}}},
        {"apiVersion": types.API_VERSION, "kind": "DockerMachine", "metadata": {"name": name},
         "spec": spec},
    ]


async def create_all(kube: Client, namespace: str, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        obj["metadata"]["namespace"] = namespace
        await kube.create(obj)


async def get(kube: Client, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    api_version = "v1" if kind == "Secret" else (
        types.API_VERSION if kind.startswith("Docker") else V2)
    try:
        return await kube.get(api_version, kind, name, namespace)
    except Exception:
        return None


async def wait_condition(kube: Client, kind: str, name: str, namespace: str, type_: str,
                         status: str, reason: str | None = None,
                         timeout: float = 60) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await get(kube, kind, name, namespace)
        cond = condition(obj, type_)
        if cond.get("status") == status and (reason is None or cond.get("reason") == reason):
            return obj
        return None
    try:
        return await eventually(check, f"{kind} {name} {type_}={status} {reason or ''}",
                                timeout=timeout)
    except AssertionError as e:
        obj = await get(kube, kind, name, namespace)
        raise AssertionError(f"{e}: {((obj or {}).get('status') or {}).get('conditions')}"
                             ) from None


async def test_cluster_and_machine_from_cloud_config_then_deleted_without_trace(
        docker_crds: Server, namespace: str, node_image: str,
        docker_client: docker.DockerClient, cleanup: None) -> None:
    async with running(docker_crds, namespace, node_image) as kube:
        await create_all(kube, namespace, cluster_objects("c1"))
        infra = await wait_condition(kube, "DockerCluster", "c1", namespace, "Ready", "True")
        lb = docker_client.containers.get("c1-lb")
        lb_address = next(iter(lb.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        assert infra["spec"]["controlPlaneEndpoint"] == {"host": lb_address, "port": 6443}
        assert lb.labels[eng.ROLE_LABEL] == "external-load-balancer"
        assert lb.labels[eng.CLUSTER_LABEL] == "c1"
        assert condition(infra, types.LOAD_BALANCER_AVAILABLE)["status"] == "True"
        network = eng.network_name(namespace, "c1")
        assert docker_client.networks.get(network).attrs["Internal"] is True

        name = f"m-{uuid.uuid4().hex[:6]}"
        await create_all(kube, namespace, machine_objects(
            name, "c1", user_data([f"mkdir -p /run/cluster-api && echo success > {SENTINEL}"])))
        dm = await wait_condition(kube, "DockerMachine", name, namespace, "Ready", "True")
        assert dm["spec"]["providerID"] == f"docker:////{name}"
        assert condition(dm, types.BOOTSTRAP_EXEC_SUCCEEDED)["status"] == "True"
        assert condition(dm, types.CONTAINER_PROVISIONED)["status"] == "True"
        assert dm["status"]["initialization"] == {"provisioned": True}
        container = docker_client.containers.get(name)
        address = next(iter(container.attrs["NetworkSettings"]["Networks"].values()))[
            "IPAddress"]
        assert {"type": "InternalIP", "address": address} in dm["status"]["addresses"]
        assert container.labels[eng.ROLE_LABEL] == "worker"
        assert container.exec_run(["cat", "/etc/demo/hello"]).output.decode().strip() \
            == f"hello from {name}"
        stat = container.exec_run(["stat", "-c", "%a", "/etc/demo/config.yaml"])
        assert stat.output.decode().strip() == "600"
        machine_json = container.exec_run(["cat", "/etc/shipyard/machine.json"]).output
        assert f'"providerID": "docker:////{name}"'.encode() in machine_json

        await kube.delete(V2, "Machine", name, namespace)

        async def machine_gone() -> bool:
            return (await get(kube, "DockerMachine", name, namespace) is None
                    and not docker_client.api.containers(all=True, filters={"name": name}))
        await eventually(machine_gone, "DockerMachine and its container gone", timeout=60)

        await kube.delete(V2, "Cluster", "c1", namespace)

        async def cluster_gone() -> bool:
            if await get(kube, "DockerCluster", "c1", namespace) is not None:
                return False
            owned = docker_client.api.containers(
                all=True, filters={"label": f"{eng.OWNER_LABEL}={namespace}.c1"})
            return not owned and not docker_client.networks.list(names=[network])
        await eventually(cluster_gone, "load balancer and network gone", timeout=60)


@pytest.fixture
def exits_image(docker_client: docker.DockerClient, node_image: str) -> Iterator[str]:
    """A node image whose ``shipyard`` exits at once: a container that dies at start."""
    ref = "localhost/shipyard-test/exits-at-start:1"
    base = docker_client.containers.create(node_image, command=["true"])
    try:
        script = b"#!/bin/sh\necho 'node agent: cannot start: boom' >&2\nexit 3\n"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("usr/local/bin/shipyard")
            info.size, info.mode = len(script), 0o755
            tar.addfile(info, io.BytesIO(script))
        base.put_archive("/", buffer.getvalue())
        repository, tag = ref.rsplit(":", 1)
        base.commit(repository=repository, tag=tag)
    finally:
        base.remove(force=True)
    yield ref
    with contextlib.suppress(docker.errors.APIError):
        docker_client.images.remove(ref, force=True)


async def test_bad_input_is_a_condition_and_others_are_untouched(
        docker_crds: Server, namespace: str, node_image: str,
        docker_client: docker.DockerClient, exits_image: str, cleanup: None) -> None:
    foreign = docker_client.containers.run(node_image, command=["sleep", "600"],
                                           name=f"clash-{namespace}"[:60], detach=True,
                                           labels={"owner": "someone-else"})
    try:
        async with running(docker_crds, namespace, node_image) as kube:
            await create_all(kube, namespace, cluster_objects("c2"))
            await wait_condition(kube, "DockerCluster", "c2", namespace, "Ready", "True")
            ok = [f"mkdir -p /run/cluster-api && echo success > {SENTINEL}"]
            await create_all(kube, namespace, [
                *machine_objects("no-image", "c2", user_data(ok),
                                 customImage="localhost/shipyard/absent:0"),
                *machine_objects(str(foreign.name), "c2", user_data(ok)),
                *machine_objects("fails", "c2", user_data(["echo about to fail; exit 7"])),
                *machine_objects("dies", "c2", user_data(ok), customImage=exits_image),
            ])
            missing = await wait_condition(kube, "DockerMachine", "no-image", namespace,
                                           types.CONTAINER_PROVISIONED, "False", "ImageNotFound")
            assert "localhost/shipyard/absent:0" in condition(
                missing, types.CONTAINER_PROVISIONED)["message"]
            clash = await wait_condition(kube, "DockerMachine", str(foreign.name), namespace,
                                         types.CONTAINER_PROVISIONED, "False",
                                         "ContainerNameConflict")
            assert "does not belong to this cluster" in condition(clash, "Ready")["message"]
            failed = await wait_condition(kube, "DockerMachine", "fails", namespace,
                                          types.BOOTSTRAP_EXEC_SUCCEEDED, "False",
                                          "BootstrapFailed")
            message = condition(failed, types.BOOTSTRAP_EXEC_SUCCEEDED)["message"]
            assert "exited with status 7" in message and "about to fail" in message
            dead = await wait_condition(kube, "DockerMachine", "dies", namespace,
                                        types.CONTAINER_PROVISIONED, "False", "ContainerExited")
            assert "boom" in condition(dead, types.CONTAINER_PROVISIONED)["message"]

            foreign.reload()
            assert foreign.status == "running" and foreign.labels["owner"] == "someone-else"
            assert eng.OWNER_LABEL not in foreign.labels
            await kube.delete(V2, "Cluster", "c2", namespace)
            for name in ("no-image", str(foreign.name), "fails", "dies"):
                with contextlib.suppress(Exception):
                    await kube.delete(V2, "Machine", name, namespace)

            async def cleaned() -> bool:
                return not docker_client.api.containers(
                    all=True, filters={"label": f"{eng.OWNER_LABEL}={namespace}.c2"})
            await eventually(cleaned, "the cluster's containers removed", timeout=60)
            foreign.reload()
            assert foreign.status == "running"
    finally:
        foreign.remove(force=True)


async def test_unreachable_engine_is_a_condition(docker_crds: Server, namespace: str,
                                                 node_image: str) -> None:
    async with running(docker_crds, namespace, node_image,
                       docker_host="unix:///nonexistent/docker.sock") as kube:
        await create_all(kube, namespace, cluster_objects("c3"))
        infra = await wait_condition(kube, "DockerCluster", "c3", namespace, "Ready", "False",
                                     "DockerEngineUnreachable")
        assert "unix:///nonexistent/docker.sock" in condition(infra, "Ready")["message"]
        assert condition(infra, types.LOAD_BALANCER_AVAILABLE)["status"] == "False"
        await kube.delete(V2, "Cluster", "c3", namespace)


async def test_load_balancer_follows_running_control_plane_machines(
        docker_crds: Server, namespace: str, node_image: str,
        docker_client: docker.DockerClient, cleanup: None) -> None:
    """Two control-plane machines (written at v1beta1, as CAPD manifests are) each serve a
    page on 6443; the load balancer's backends list both, a connection through it reaches one,
    and once a container is stopped its backend goes and connections reach the other."""
    serve = ("mkdir -p /srv && hostname > /srv/index.html && cd /srv && "
             "setsid python3 -m http.server 6443 >/dev/null 2>&1 < /dev/null &")
    done = f"mkdir -p /run/cluster-api && echo success > {SENTINEL}"
    async with running(docker_crds, namespace, node_image) as kube:
        await create_all(kube, namespace, cluster_objects("c4"))
        await wait_condition(kube, "DockerCluster", "c4", namespace, "Ready", "True")
        for name in ("c4-cp-a", "c4-cp-b"):
            objects = machine_objects(name, "c4", user_data([serve, done]))
            objects[1]["metadata"]["labels"] = {"cluster.x-k8s.io/control-plane": ""}
            objects[2] = {"apiVersion": types.API_VERSION_V1BETA1, "kind": "DockerMachine",
                          "metadata": {"name": name}, "spec": {"extraMounts": []}}
            await create_all(kube, namespace, objects)
        for name in ("c4-cp-a", "c4-cp-b"):
            await wait_condition(kube, "DockerMachine", name, namespace, "Ready", "True")
        lb = docker_client.containers.get("c4-lb")

        def address(name: str) -> str:
            container = docker_client.containers.get(name)
            return str(next(iter(container.attrs["NetworkSettings"]["Networks"].values()))[
                "IPAddress"])

        def backends() -> list[str]:
            out = lb.exec_run(["cat", "/etc/shipyard/backends.json"]).output
            return sorted(json.loads(out)) if out.strip().startswith(b"[") else []

        both = sorted(f"{address(n)}:6443" for n in ("c4-cp-a", "c4-cp-b"))

        async def listed(expected: list[str]) -> bool:
            return await asyncio.to_thread(backends) == expected
        await eventually(lambda: listed(both), "both control-plane machines as backends")
        lb_ip = next(iter(lb.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]

        def fetch() -> str:
            with urllib.request.urlopen(f"http://{lb_ip}:6443/", timeout=5) as resp:
                return str(resp.read().decode().strip())

        seen = {await asyncio.to_thread(fetch) for _ in range(4)}
        assert seen == {"c4-cp-a", "c4-cp-b"}  # round robin over both

        remaining = f"{address('c4-cp-b')}:6443"
        await asyncio.to_thread(docker_client.containers.get("c4-cp-a").stop, timeout=1)
        await eventually(lambda: listed([remaining]), "the stopped machine's backend gone",
                         timeout=40)
        assert {await asyncio.to_thread(fetch) for _ in range(3)} == {"c4-cp-b"}
        stopped = await wait_condition(kube, "DockerMachine", "c4-cp-a", namespace, "Ready",
                                       "False", "ContainerNotRunning")
        assert "exited" in condition(stopped, "Ready")["message"]
        await kube.delete(V2, "Cluster", "c4", namespace)

        async def cleaned() -> bool:
            return not docker_client.api.containers(
                all=True, filters={"label": f"{eng.OWNER_LABEL}={namespace}.c4"})
        await eventually(cleaned, "the cluster's containers removed", timeout=60)
