"""End to end on the Docker provider, through a real engine (podman's Docker API in CI): the
CAPD quick-start shaped manifests that ``shipyard generate cluster --infrastructure docker``
renders (Cluster, DockerCluster, KubeadmControlPlane,
DockerMachineTemplate, MachineDeployment, KubeadmConfigTemplate) applied with kubectl give a
workload cluster whose Nodes are all Ready through its kubeconfig (the load-balancer
container's address). Then, on the same cluster: scaling the MachineDeployment, a rolling update
to a new DockerMachineTemplate, MachineHealthCheck remediation of a stopped container, and
deletion that leaves no container, network or volume behind."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from prometheus_client import CollectorRegistry

from shipyard.bootstrap.kubeadm import controller as kubeadm_bootstrap
from shipyard.bootstrap.kubeadm import types as kubeadm_types
from shipyard.client import Client
from shipyard.controllers import setup as core
from shipyard.controlplane.kubeadm import controller as kcp_controller
from shipyard.controlplane.kubeadm import types as kcp_types
from shipyard.providers.docker import engine as eng
from shipyard.providers.docker import setup as docker_setup
from shipyard.providers.docker import types
from shipyard.runtime import Metrics
from tests.controlplane.test_kcp_conversion_served import CAPD_CLUSTER
from tests.kube import Server
from tests.providers.harness import capi, eventually, install_crd
from tests.providers.process.test_process_e2e import kubectl

__all__ = ["capi"]

pytestmark = pytest.mark.slow

GRACE = "10s"


@pytest.fixture(scope="module")
def docker_all_crds(capi: Server) -> Iterator[Server]:
    api = capi.client()
    for manifest in [*kubeadm_types.crd_manifests(serve_v1beta1=True),
                     *kcp_types.crd_manifests(), *types.crd_manifests()]:
        install_crd(api, manifest, replace=True)  # upstream's v1beta1 kinds served too
    yield capi
    api.pool.clear()


@pytest.fixture
async def docker_controllers(docker_all_crds: Server, namespace: str, node_image: str,
                             docker_client: docker.DockerClient
                             ) -> AsyncIterator[docker_setup.DockerProvider]:
    kube = Client.from_kubeconfig(docker_all_crds.kubeconfig)
    options = core.Options()
    mgr = await core.build(kube, namespace=namespace, options=options,
                           metrics=Metrics(CollectorRegistry()), graceful_shutdown_timeout=5,
                           informer_options={"backoff_initial": 0.05})
    provider = await docker_setup.setup(mgr, docker_setup.DockerOptions(node_image=node_image))
    bootstrap = await kubeadm_bootstrap.setup(mgr)
    kcp = await kcp_controller.setup(mgr)
    task = asyncio.create_task(mgr.run())
    try:
        yield provider
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await task
        for summary in docker_client.api.containers(all=True,
                                                    filters={"label": eng.OWNER_LABEL}):
            if summary["Labels"][eng.OWNER_LABEL].startswith(f"{namespace}."):
                with contextlib.suppress(docker.errors.NotFound):
                    docker_client.api.remove_container(summary["Id"], force=True, v=True)
        for network in docker_client.networks.list(filters={"label": eng.OWNER_LABEL}):
            if str((network.attrs.get("Labels") or {}).get(eng.OWNER_LABEL)).startswith(
                    f"{namespace}."):
                network.remove()
        await kcp.aclose()
        await bootstrap.aclose()
        await options.aclose()
        await provider.aclose()
        await kube.close()


def generate(name: str, namespace: str, control_planes: int, workers: int) -> list[Any]:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli", "generate", "cluster", name,
         "--infrastructure", "docker", "--kubernetes-version", "v1.33.0",
         "--control-plane-machine-count", str(control_planes),
         "--worker-machine-count", str(workers), "--target-namespace", namespace],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return list(yaml.safe_load_all(done.stdout))


def diagnose(mgmt: Path, namespace: str, client: docker.DockerClient) -> str:
    lines = []
    out = kubectl(mgmt, "get", "-n", namespace, "machines,dockermachines,kubeadmconfigs,"
                  "kubeadmcontrolplanes,clusters,dockerclusters", "-o", "json")
    for obj in json.loads(out)["items"]:
        conds = [(c["type"], c["status"], c.get("reason"), c.get("message", "")[:300])
                 for c in (obj.get("status") or {}).get("conditions") or []]
        lines.append(f"{obj['kind']} {obj['metadata']['name']}: {conds}")
    out = kubectl(mgmt, "get", "-n", namespace, "machinedeployments,machinesets", "-o", "json")
    for obj in json.loads(out)["items"]:
        template = obj["spec"]["template"]
        lines.append(f"{obj['kind']} {obj['metadata']['name']} "
                     f"replicas={obj['spec'].get('replicas')} "
                     f"infra={template['spec'].get('infrastructureRef')} "
                     f"status={obj.get('status')}"[:600])
    for summary in client.api.containers(all=True, filters={"label": eng.OWNER_LABEL}):
        if not summary["Labels"][eng.OWNER_LABEL].startswith(f"{namespace}."):
            continue
        name = summary["Names"][0].lstrip("/")
        lines.append(f"--- {name} {summary['State']}")
        with contextlib.suppress(docker.errors.APIError):
            container = client.containers.get(name)
            lines.append(container.logs(tail=10).decode(errors="replace"))
            if summary["State"] == "running":
                logs = container.exec_run(["sh", "-c", "tail -n 15 /var/log/*.log"]).output
                lines.append(logs.decode(errors="replace"))
    return "\n".join(lines)


@pytest.mark.timeout(600)
async def test_quick_start_scale_rollout_remediation_and_deletion(
        docker_all_crds: Server, namespace: str, docker_controllers: docker_setup.DockerProvider,
        docker_client: docker.DockerClient, tmp_path: Path) -> None:
    mgmt = docker_all_crds.kubeconfig
    docs = generate("d1", namespace, 1, 1)
    for doc in docs:
        if doc["kind"] == "KubeadmControlPlane":
            doc["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["controllerManager"] = {
                "extraArgs": [{"name": "node-monitor-grace-period", "value": GRACE}]}
    volumes_before = {v.name for v in docker_client.volumes.list()}
    text = "---\n".join(yaml.safe_dump(d) for d in docs)
    await asyncio.to_thread(kubectl, mgmt, "apply", "-f", "-", stdin=text)
    workload = tmp_path / "d1.kubeconfig"

    async def wait(check: Any, what: str, timeout: float) -> Any:
        try:
            return await eventually(check, what, timeout=timeout)
        except AssertionError as e:
            state = await asyncio.to_thread(diagnose, mgmt, namespace, docker_client)
            raise AssertionError(f"{e}\n{state}") from None

    async def machines(selector: str = "cluster.x-k8s.io/cluster-name=d1"
                       ) -> list[dict[str, Any]]:
        out = await asyncio.to_thread(kubectl, mgmt, "get", "-n", namespace, "machines", "-l",
                                      selector, "-o", "json")
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    async def ready_nodes(count: int) -> list[dict[str, Any]] | None:
        current = await machines()
        if len(current) != count or not all((m.get("status") or {}).get("nodeRef")
                                            for m in current):
            return None
        if not workload.exists():
            secret = json.loads(await asyncio.to_thread(
                kubectl, mgmt, "get", "-n", namespace, "secret", "d1-kubeconfig", "-o", "json"))
            workload.write_bytes(base64.b64decode(secret["data"]["value"]))
        nodes = json.loads(await asyncio.to_thread(kubectl, workload, "get", "nodes", "-o",
                                                   "json"))["items"]
        ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in n["status"]["conditions"])]
        if len(ready) != count or len(nodes) != count:
            return None
        assert {n["spec"]["providerID"] for n in nodes} == {m["spec"]["providerID"]
                                                             for m in current}
        return current

    # 1. The quick start: one control-plane machine, one worker, Nodes Ready.
    current = await wait(lambda: ready_nodes(2), "2 Machines with Ready Nodes", 120)
    assert all(m["spec"]["providerID"] == f"docker:////{m['metadata']['name']}"
               for m in current)
    infra = json.loads(await asyncio.to_thread(
        kubectl, mgmt, "get", "-n", namespace, "dockercluster", "d1", "-o", "json"))
    lb = docker_client.containers.get("d1-lb")
    lb_ip = next(iter(lb.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    assert yaml.safe_load(workload.read_text())["clusters"][0]["cluster"]["server"] == \
        f"https://{lb_ip}:6443"
    assert infra["spec"]["controlPlaneEndpoint"] == {"host": lb_ip, "port": 6443}
    backends = lb.exec_run(["cat", "/etc/shipyard/backends.json"]).output.decode()
    [cp] = [m for m in current if "cluster.x-k8s.io/control-plane" in m["metadata"]["labels"]]
    cp_container = docker_client.containers.get(cp["metadata"]["name"])
    cp_ip = next(iter(cp_container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    assert json.loads(backends) == [f"{cp_ip}:6443"]
    nodes = json.loads(await asyncio.to_thread(kubectl, workload, "get", "nodes", "-o",
                                               "json"))["items"]
    assert {n["status"]["nodeInfo"]["osImage"] for n in nodes} == {
        "Debian GNU/Linux 12 (bookworm)"}  # the node image's, as kind's nodes report theirs

    # 2. Scale the workers with kubectl.
    await asyncio.to_thread(kubectl, mgmt, "scale", "-n", namespace,
                            "machinedeployment/d1-md-0", "--replicas=2")
    current = await wait(lambda: ready_nodes(3), "3 Machines with Ready Nodes", 90)

    # 3. Rolling update: the workers move to a new DockerMachineTemplate, one by one.
    old_workers = {m["metadata"]["name"] for m in current
                   if "cluster.x-k8s.io/control-plane" not in m["metadata"]["labels"]}
    template = next(d for d in docs if d["kind"] == "DockerMachineTemplate"
                    and d["metadata"]["name"] == "d1-md-0")
    template["metadata"]["name"] = "d1-md-1"
    await asyncio.to_thread(kubectl, mgmt, "apply", "-f", "-", stdin=yaml.safe_dump(template))
    await asyncio.to_thread(
        kubectl, mgmt, "patch", "-n", namespace, "machinedeployment", "d1-md-0", "--type=merge",
        "-p", json.dumps({"spec": {"template": {"spec": {"infrastructureRef": {
            "name": "d1-md-1"}}}}}))

    async def rolled() -> list[dict[str, Any]] | None:
        done = await ready_nodes(3)
        if done is None:
            return None
        workers = [m for m in done
                   if "cluster.x-k8s.io/control-plane" not in m["metadata"]["labels"]]
        if {m["metadata"]["name"] for m in workers} & old_workers:
            return None
        for m in workers:  # each DockerMachine was cloned from the new template
            infra = json.loads(await asyncio.to_thread(
                kubectl, mgmt, "get", "-n", namespace, "dockermachine",
                m["spec"]["infrastructureRef"]["name"], "-o", "json"))
            if infra["metadata"]["annotations"].get(
                    "cluster.x-k8s.io/cloned-from-name") != "d1-md-1":
                return None
        return workers

    workers = await wait(rolled, "the workers replaced from d1-md-1", 150)
    for name in old_workers:
        assert not docker_client.api.containers(all=True, filters={"name": f"^{name}$"})

    # 4. A stopped container is remediated by a MachineHealthCheck (written at v1beta1).
    mhc = {"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "MachineHealthCheck",
           "metadata": {"name": "d1-md-0", "namespace": namespace},
           "spec": {"clusterName": "d1",
                    "selector": {"matchLabels": {"cluster.x-k8s.io/deployment-name": "d1-md-0"}},
                    "unhealthyConditions": [{"type": "Ready", "status": "Unknown",
                                             "timeout": "1s"},
                                            {"type": "Ready", "status": "False",
                                             "timeout": "1s"}]}}
    await asyncio.to_thread(kubectl, mgmt, "apply", "-f", "-", stdin=yaml.safe_dump(mhc))
    victim = workers[0]["metadata"]["name"]
    await asyncio.to_thread(docker_client.containers.get(victim).stop, timeout=2)

    async def remediated() -> list[dict[str, Any]] | None:
        done = await ready_nodes(3)
        if done is None or victim in {m["metadata"]["name"] for m in done}:
            return None
        return done

    await wait(remediated, "the stopped worker replaced", 150)
    assert not docker_client.api.containers(all=True, filters={"name": f"^{victim}$"})

    # 5. Deleting the cluster leaves no container, network or volume behind.
    await asyncio.to_thread(kubectl, mgmt, "delete", "-n", namespace, "cluster", "d1",
                            "--wait=false")
    # As in the process provider's e2e: ours waits for the control-plane Machines, which only
    # the control plane deletes; deleting the KubeadmControlPlane too is harmless upstream.
    await asyncio.to_thread(kubectl, mgmt, "delete", "-n", namespace, "kubeadmcontrolplane",
                            "d1-control-plane", "--wait=false")
    owner = f"{eng.OWNER_LABEL}={namespace}.d1"

    async def gone() -> bool:
        out = await asyncio.to_thread(kubectl, mgmt, "get", "-n", namespace, "clusters,"
                                      "dockermachines,dockerclusters", "-o", "json")
        if json.loads(out)["items"]:
            return False
        return not docker_client.api.containers(all=True, filters={"label": owner}) and \
            not docker_client.networks.list(filters={"label": owner})

    await wait(gone, "the cluster, its containers and its network gone", 120)
    assert {v.name for v in docker_client.volumes.list()} <= volumes_before


@pytest.mark.timeout(300)
async def test_upstream_capd_quick_start_at_v1beta1(
        docker_all_crds: Server, namespace: str, docker_controllers: docker_setup.DockerProvider,
        docker_client: docker.DockerClient, tmp_path: Path) -> None:
    """Upstream's CAPD cluster template, every kind at v1beta1 as written for Cluster API
    v1.10, gives Ready Nodes. One change: its control-plane machines mount the engine's socket
    (``/var/run/docker.sock``), which podman's service does not have; they mount a host
    directory instead, which shows extraMounts at work."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from the host\n")
    text = CAPD_CLUSTER.replace(
        "{containerPath: /var/run/docker.sock, hostPath: /var/run/docker.sock}",
        f"{{containerPath: /mnt/host, hostPath: {shared}, readOnly: true}}")
    assert text != CAPD_CLUSTER
    await asyncio.to_thread(kubectl, docker_all_crds.kubeconfig, "apply", "-n", namespace,
                            "-f", "-", stdin=text)
    mgmt = docker_all_crds.kubeconfig
    workload = tmp_path / "capi-quickstart.kubeconfig"

    async def ready() -> list[dict[str, Any]] | None:
        out = await asyncio.to_thread(kubectl, mgmt, "get", "-n", namespace, "machines", "-o",
                                      "json")
        machines: list[dict[str, Any]] = json.loads(out)["items"]
        if len(machines) != 2 or not all((m.get("status") or {}).get("nodeRef")
                                         for m in machines):
            return None
        secret = json.loads(await asyncio.to_thread(
            kubectl, mgmt, "get", "-n", namespace, "secret", "capi-quickstart-kubeconfig",
            "-o", "json"))
        workload.write_bytes(base64.b64decode(secret["data"]["value"]))
        nodes = json.loads(await asyncio.to_thread(kubectl, workload, "get", "nodes", "-o",
                                                   "json"))["items"]
        if sum(any(c["type"] == "Ready" and c["status"] == "True"
                   for c in n["status"]["conditions"]) for n in nodes) != 2:
            return None
        return machines

    try:
        machines = await eventually(ready, "2 Machines with Ready Nodes", timeout=150)
    except AssertionError as e:
        state = await asyncio.to_thread(diagnose, mgmt, namespace, docker_client)
        raise AssertionError(f"{e}\n{state}") from None
    [cp] = [m for m in machines if "cluster.x-k8s.io/control-plane" in m["metadata"]["labels"]]
    mounted = docker_client.containers.get(cp["metadata"]["name"]).exec_run(
        ["cat", "/mnt/host/hello"])
    assert mounted.output.decode() == "from the host\n"
    v1 = json.loads(await asyncio.to_thread(
        kubectl, mgmt, "get", "-n", namespace, "dockermachines.v1beta1.infrastructure.cluster"
        ".x-k8s.io", "-o", "json"))["items"]
    assert all(m["status"]["ready"] is True for m in v1)
    assert all(m["spec"]["providerID"].startswith("docker:////") for m in v1)
