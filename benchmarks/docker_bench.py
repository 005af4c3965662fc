"""``python -m benchmarks.docker_bench``: workload clusters on Docker machines (containers from
the node image, through the Docker Engine API), from the manifest to every Node Ready, what each
machine costs in memory, and the process provider measured the same way in the same run.

Why: issue 6 item 6 asks how long 1 + 3 and 3 + 10 machines (control plane + workers) take on
the Docker provider from apply to all Nodes Ready, the memory per machine, and how that compares
with the process provider (`benchmarks.process_bench`) on the same host at the same time.

How, per size, Docker first then process (`process_bench.run`, unchanged):
- the node image is built once beforehand (`image.build_node_image`, a no-op when present) and
  named in the manifest (machines' ``customImage``, the DockerCluster's load-balancer image), so
  code edited during the run cannot change which image the machines boot;
- the same steps as `shipyard create cluster` up to the wait (`shipyard.cli.create.Flow` with
  infrastructure ``docker``): an ephemeral management plane, the core, kubeadm bootstrap,
  kubeadm control-plane and Docker providers' controllers in this process, the Docker
  provider's quick-start template created object by object;
- the clock starts at the first object created and stops when every Machine is Running with a
  nodeRef and the workload cluster, through its ``<cluster>-kubeconfig`` (the load balancer's
  address on the cluster's private network, which the host reaches directly), lists that many
  Nodes, all Ready;
- memory, sampled once all are Ready: the summed ``VmRSS`` of the processes in each container's
  memory cgroup (``cgroup.procs``; host PIDs, so the same figure process_bench sums for a process
  machine), per control-plane and per worker machine, the load-balancer container separately;
  the engine's own cost beside it: each container's conmon monitor, the conmon processes left by
  exec sessions into the cluster's containers (the bootstrap runs commands one by one), and the
  podman service;
- the Cluster (and its KubeadmControlPlane) is deleted through the controllers, timed until no
  Machine, container or network of the cluster is left, which is checked; the plane is torn down.
The table is Markdown, with the core count and the load average before the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from benchmarks import process_bench
from benchmarks.process_bench import echo
from benchmarks.server import rss_bytes

NAMESPACE = "default"
ROLE_LABEL = "io.x-k8s.kind.role"


# ----------------------------------------------------------------------------- meters

def cgroup_pids(pid: int) -> list[int]:
    """Host PIDs of every process in the memory cgroup of `pid` (a container's init)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") or controllers == "":
            for root in (Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")):
                procs = root / path.lstrip("/") / "cgroup.procs"
                if procs.exists():
                    return [int(p) for p in procs.read_text().split()]
    raise RuntimeError(f"no memory cgroup found for pid {pid}")


def processes_rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += rss_bytes([pid])
        except (OSError, RuntimeError):
            continue  # exited between listing and reading
    return total


def conmons() -> list[tuple[str, bool, int]]:
    """Every conmon process: (container id, True for an exec session's monitor, RSS)."""
    found = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
            if not argv[0].endswith(b"conmon"):
                continue
            args = [a.decode() for a in argv]
            container = args[args.index("-c") + 1]
            session = args[args.index("-u") + 1] if "-u" in args else container
            found.append((container, session != container, rss_bytes([int(pid_dir.name)])))
        except (OSError, ValueError, IndexError, RuntimeError):
            continue
    return found


def podman_service_rss(docker_host: str) -> int:
    socket = docker_host.removeprefix("unix://").encode()
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
            if argv[0].endswith(b"podman") and b"service" in argv and any(
                    socket in a for a in argv):
                return rss_bytes([int(pid_dir.name)])
        except (OSError, RuntimeError):
            continue
    return 0


def sample(client: Any, owner: str) -> dict[str, Any]:
    """Memory of a cluster's containers by role, and of the engine processes serving them."""
    from shipyard.providers.docker import engine as eng

    by_role: dict[str, list[int]] = {}
    ids = set()
    for container in client.containers.list(filters={"label": f"{eng.OWNER_LABEL}={owner}"}):
        ids.add(container.id)
        pid = int(container.attrs["State"]["Pid"])
        by_role.setdefault(container.labels.get(ROLE_LABEL, "?"), []).append(
            processes_rss(cgroup_pids(pid)))
    monitors = [m for m in conmons() if m[0] in ids]
    main = [rss for _, exec_session, rss in monitors if not exec_session]
    execs = [rss for _, exec_session, rss in monitors if exec_session]
    return {"by_role": by_role, "conmon": main, "exec_conmon": execs, "monitors": monitors,
            "podman": podman_service_rss(os.environ.get("DOCKER_HOST", ""))}


def mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


# ----------------------------------------------------------------------------- the run

def docker_host() -> str:
    """DOCKER_HOST, or the private podman service started (idempotently) and its address."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    script = Path(__file__).resolve().parent.parent / "scripts" / "podman-service"
    out = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True,
                         check=True).stdout
    for word in out.split():
        if word.startswith("DOCKER_HOST="):
            os.environ["DOCKER_HOST"] = word.split("=", 1)[1].strip("'\"")
            return os.environ["DOCKER_HOST"]
    raise SystemExit(f"no DOCKER_HOST from {script} start: {out!r}")


def node_image(client: Any) -> str:
    from shipyard.providers.docker.image import build_node_image

    return build_node_image(client, progress=lambda line: echo(f"node image: {line}"))


async def run_docker(control_planes: int, workers: int, timeout: float,
                     image: str) -> dict[str, Any]:
    import docker

    from shipyard.apimachinery.errors import NotFound
    from shipyard.cli.create import KCP, V2, Flow
    from shipyard.client import Client
    from shipyard.providers.docker import engine as eng

    name = f"dbench{control_planes}x{workers}"
    home = Path(tempfile.mkdtemp(prefix="shipyard-docker-bench-"))
    values = {"CLUSTER_NAME": name, "NAMESPACE": NAMESPACE, "KUBERNETES_VERSION": "v1.33.0",
              "CONTROL_PLANE_MACHINE_COUNT": str(control_planes),
              "WORKER_MACHINE_COUNT": str(workers), "DOCKER_NODE_IMAGE": image}
    repository, tag = image.rsplit(":", 1)

    class ImagePinned(Flow):
        def manifest(self) -> list[dict[str, Any]]:
            objects = super().manifest()
            for obj in objects:
                if obj.get("kind") == "DockerCluster":
                    obj.setdefault("spec", {})["loadBalancer"] = {
                        "imageRepository": repository, "imageTag": tag}
            return objects

    flow = ImagePinned(name, NAMESPACE, home, "docker", "", values, timeout, echo)
    client = docker.DockerClient(base_url=docker_host(), version=eng.API_VERSION)
    owner = eng.owner_key(NAMESPACE, name)
    result: dict[str, Any] = {"control_planes": control_planes, "workers": workers}
    try:
        await flow.start_bootstrap()
        async with Client.from_kubeconfig(flow.plane.kubeconfig) as boot:
            await flow.init_bootstrap(boot)
            started = time.monotonic()
            await flow.apply(boot)
            await flow.wait(boot)
            await flow.write_kubeconfig(boot)
            async with Client.from_kubeconfig(flow.kubeconfig) as workload:
                while True:
                    nodes = (await workload.list("v1", "Node"))["items"]
                    ready = [n for n in nodes if any(
                        c["type"] == "Ready" and c["status"] == "True"
                        for c in (n.get("status") or {}).get("conditions") or [])]
                    if len(ready) == control_planes + workers:
                        break
                    if time.monotonic() - started > timeout:
                        raise TimeoutError(f"{len(ready)}/{len(nodes)} Nodes Ready "
                                           f"after {timeout:g}s")
                    await asyncio.sleep(0.2)
            result["seconds"] = time.monotonic() - started
            echo(f"docker {control_planes}+{workers}: all Nodes Ready after "
                 f"{result['seconds']:.1f}s")
            result.update(await asyncio.to_thread(sample, client, owner))

            deleting = time.monotonic()
            await boot.delete(V2, "Cluster", name, NAMESPACE)
            # As the Docker e2e test does: the control-plane Machines go with their
            # KubeadmControlPlane, which kubectl-created manifests do not have owned.
            with contextlib.suppress(NotFound):
                await boot.delete(*KCP, f"{name}-control-plane", NAMESPACE)
            while True:
                cluster, _, machines = await flow.observe(boot)
                left = await asyncio.to_thread(leftovers, client, owner)
                if cluster is None and not machines and not left:
                    break
                if time.monotonic() - deleting > timeout:
                    raise TimeoutError(f"deleting {name}: still there after {timeout:g}s: "
                                       f"{len(machines)} Machines, {left}")
                await asyncio.sleep(0.5)
            result["delete_seconds"] = time.monotonic() - deleting
            flow.applied = False  # nothing left for clean_up to delete
    finally:
        if not flow.applied:
            await flow.stop_controllers()
        left = await flow.clean_up()
        ids = {cid for cid, _, _ in result.get("monitors", [])}
        if ids:
            await asyncio.sleep(10)  # time for the engine to reap what it will reap
        result["exec_conmon_after"] = [rss for cid, is_exec, rss in conmons()
                                       if cid in ids and is_exec]
        remaining = await asyncio.to_thread(leftovers, client, owner)
        if left or remaining:
            echo(f"docker {control_planes}+{workers}: LEFT BEHIND {left} {remaining}; "
                 "removing the containers and network by their owner label")
            await asyncio.to_thread(force_remove, client, owner)
        client.close()
    result["leftovers"] = remaining
    return result


def leftovers(client: Any, owner: str) -> list[str]:
    from shipyard.providers.docker import engine as eng

    label = {"label": f"{eng.OWNER_LABEL}={owner}"}
    return ([f"container {c['Names'][0].lstrip('/')}"
             for c in client.api.containers(all=True, filters=label)] +
            [f"network {n.name}" for n in client.networks.list(filters=label)])


def force_remove(client: Any, owner: str) -> None:
    from shipyard.providers.docker import engine as eng

    label = {"label": f"{eng.OWNER_LABEL}={owner}"}
    for summary in client.api.containers(all=True, filters=label):
        client.api.remove_container(summary["Id"], force=True, v=True)
    for network in client.networks.list(filters=label):
        network.remove()


# ----------------------------------------------------------------------------- the table

def mib(value: float) -> str:
    return f"{value / (1024 * 1024):,.0f} MiB"


def table(rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    lines = ["| machines (control plane + workers) | provider | apply → all Nodes Ready | "
             "RSS per control-plane machine | RSS per worker | RSS, all machines | "
             "load balancer | engine per container (conmon) |",
             "|---|---|---|---|---|---|---|---|"]
    for d, p in rows:
        shape = f"{d['control_planes']} + {d['workers']}"
        if "error" in d:
            lines.append(f"| {shape} | docker | failed: {d['error']} | | | | | |")
        else:
            roles = d["by_role"]
            cp, wk = roles.get("control-plane", []), roles.get("worker", [])
            lines.append(f"| {shape} | docker | {d['seconds']:.1f} s | {mib(mean(cp))} | "
                         f"{mib(mean(wk))} | {mib(sum(cp) + sum(wk))} | "
                         f"{mib(sum(roles.get('external-load-balancer', [])))} | "
                         f"{mean(d['conmon']) / 1024:,.0f} KiB |")
        if "error" in p:
            lines.append(f"| {shape} | process | failed: {p['error']} | | | | | |")
        else:
            lines.append(f"| {shape} | process | {p['seconds']:.1f} s | {mib(p['cp_rss'])} | "
                         f"{mib(p['worker_rss'])} | {mib(p['total_rss'])} | | |")
        if "error" not in d and "error" not in p:
            cp, wk = d["by_role"].get("control-plane", []), d["by_role"].get("worker", [])
            lines.append(f"| {shape} | docker / process | {d['seconds'] / p['seconds']:.2f} | "
                         f"{mean(cp) / p['cp_rss']:.2f} | {mean(wk) / p['worker_rss']:.2f} | "
                         f"{(sum(cp) + sum(wk)) / p['total_rss']:.2f} | | |")
    return lines


def notes(rows: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[str]:
    lines = []
    for d, _ in rows:
        if "error" in d:
            continue
        lines.append(
            f"docker {d['control_planes']} + {d['workers']}: deleted (no Machine, container or "
            f"network left: {not d['leftovers']}) in {d['delete_seconds']:.1f} s; conmon "
            f"{len(d['conmon'])} × {mean(d['conmon']) / 1024:,.0f} KiB; "
            f"{len(d['exec_conmon'])} exec-session conmons still alive, "
            f"{mib(sum(d['exec_conmon']))} together ({len(d['exec_conmon_after'])} still "
            f"alive after the containers were removed); podman service {mib(d['podman'])}")
    return lines


def measure(what: str, control_planes: int, workers: int,
            run: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """One provider's run; a failure is a row saying why, and the other runs go on."""
    try:
        return asyncio.run(run)
    except Exception as e:  # noqa: BLE001 - reported in the table
        echo(f"{what} {control_planes}+{workers} FAILED: {type(e).__name__}: {e}")
        first = str(e).splitlines()[0] if str(e) else ""
        return {"control_planes": control_planes, "workers": workers,
                "error": f"{type(e).__name__}: {first[:300]}".replace("|", "/")}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1x3,3x10",
                        help="control-plane x worker counts, comma-separated")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    import docker

    from shipyard.providers.docker import engine as eng

    client = docker.DockerClient(base_url=docker_host(), version=eng.API_VERSION)
    try:
        image = node_image(client)
    finally:
        client.close()
    load = os.getloadavg()[0]
    rows = []
    for size in args.sizes.split(","):
        cps, workers = (int(x) for x in size.split("x"))
        measured = measure("docker", cps, workers,
                           run_docker(cps, workers, args.timeout, image))
        rows.append((measured, measure(
            "process", cps, workers, process_bench.run(cps, workers, args.timeout))))
        for line in table(rows[-1:]):
            echo(line)
    print(f"{os.cpu_count()} cores, load average before the run {load:.2f}; node image {image}")
    for line in [*table(rows), "", *notes(rows)]:
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
