"""``python -m benchmarks.capi_bench``: Cluster API's controllers from zero to all Machines Running.

Why: item 6 of "Cluster API core" asks how long Shipyard's controllers take to bring up
machines with the in-memory provider at zero boot delay, how busy they are (reconciles/s) and
what it costs in memory, for one big cluster (1 Cluster × 1,000 machines) and for many small
ones (100 Clusters × (1 control-plane Machine + a MachineDeployment of 3)). Target on 2 cores:
1,000 machines Running in under 60 s.

How: a fresh management API server (`ServerProcess`, its own SQLite directory), then
``python -m shipyard.cli controllers`` as a second child process against its kubeconfig, with
/metrics on a free port and ``--boot-delay 0``. The controllers install their CRDs; once
/metrics answers the objects are POSTed with aiohttp (one connection, over TLS, in this
process) and the clock starts at the first POST. The list of Machines is polled every
``--poll`` seconds (one plain JSON list; its cost lands on the API server) until all N report
``status.phase == Running``. Reconciles/s is the sum over controllers of the
``controller_runtime_reconcile_total`` increase (all results: success, requeue, error) over
that time. RSS (``VmRSS``) is sampled every 0.2 s for the controllers process, the management
API server and the controllers' child processes (the in-memory provider's workload API
servers, one per Cluster), and the peak of each is reported (the workload peak is the peak of
the sum). The host's load average before the run is printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.server import ServerProcess, Target, cpu_seconds, host_cpu_busy, rss_bytes

NAMESPACE = "capi-bench"
CAPI = "cluster.x-k8s.io/v1beta2"
INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"
BOOT = "bootstrap.cluster.x-k8s.io/v1beta1"
CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"
CONTROL_PLANE_LABEL = "cluster.x-k8s.io/control-plane"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def children_of(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (the workload API servers of the controllers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            found.append(int(entry))
    return found


def safe_rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += rss_bytes([pid])
        except (OSError, RuntimeError):
            pass  # exited between listing and reading
    return total


@dataclass
class Peaks:
    controllers: int = 0
    apiserver: int = 0
    workloads: int = 0
    workload_processes: int = 0


class RssSampler:
    """Samples RSS in a thread every ``interval`` seconds and keeps the peaks."""

    def __init__(self, controllers: int, apiserver: int, interval: float = 0.2) -> None:
        self.controllers, self.apiserver, self.interval = controllers, apiserver, interval
        self.peaks = Peaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            p = self.peaks
            p.controllers = max(p.controllers, safe_rss([self.controllers]))
            p.apiserver = max(p.apiserver, safe_rss([self.apiserver]))
            kids = children_of(self.controllers)
            p.workload_processes = max(p.workload_processes, len(kids))
            p.workloads = max(p.workloads, safe_rss(kids))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cluster_objects(name: str, workers: int, control_plane: bool) -> list[dict[str, Any]]:
    """What one Cluster needs: infra cluster, Cluster, templates, a MachineDeployment of
    ``workers`` and, with ``control_plane``, one standalone control-plane Machine."""
    meta = {"namespace": NAMESPACE}
    objs: list[dict[str, Any]] = [
        {"apiVersion": INFRA, "kind": "InMemoryCluster", "metadata": {**meta, "name": name},
         "spec": {}},
        {"apiVersion": CAPI, "kind": "Cluster", "metadata": {**meta, "name": name},
         "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}},
                  "infrastructureRef": {"apiGroup": INFRA.split("/")[0],
                                        "kind": "InMemoryCluster", "name": name}}},
    ]
    if control_plane:
        cp = f"{name}-cp-0"
        labels = {CLUSTER_LABEL: name, CONTROL_PLANE_LABEL: ""}
        objs += [
            {"apiVersion": BOOT, "kind": "InMemoryBootstrapConfig",
             "metadata": {**meta, "name": cp, "labels": labels},
             "spec": {"commands": ["echo booted"]}},
            {"apiVersion": INFRA, "kind": "InMemoryMachine",
             "metadata": {**meta, "name": cp, "labels": labels}, "spec": {}},
            {"apiVersion": CAPI, "kind": "Machine",
             "metadata": {**meta, "name": cp, "labels": labels},
             "spec": {"clusterName": name, "version": "v1.33.0",
                      "bootstrap": {"configRef": {"apiGroup": BOOT.split("/")[0],
                                                  "kind": "InMemoryBootstrapConfig",
                                                  "name": cp}},
                      "infrastructureRef": {"apiGroup": INFRA.split("/")[0],
                                            "kind": "InMemoryMachine", "name": cp}}},
        ]
    if workers:
        md = f"{name}-md-0"
        labels = {CLUSTER_LABEL: name, "pool": "md-0"}
        objs += [
            {"apiVersion": INFRA, "kind": "InMemoryMachineTemplate",
             "metadata": {**meta, "name": md}, "spec": {"template": {"spec": {}}}},
            {"apiVersion": BOOT, "kind": "InMemoryBootstrapConfigTemplate",
             "metadata": {**meta, "name": md},
             "spec": {"template": {"spec": {"commands": ["echo booted"]}}}},
            {"apiVersion": CAPI, "kind": "MachineDeployment", "metadata": {**meta, "name": md},
             "spec": {"clusterName": name, "replicas": workers,
                      "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels}, "spec": {
                          "clusterName": name, "version": "v1.33.0",
                          "bootstrap": {"configRef": {
                              "apiGroup": BOOT.split("/")[0],
                              "kind": "InMemoryBootstrapConfigTemplate", "name": md}},
                          "infrastructureRef": {
                              "apiGroup": INFRA.split("/")[0],
                              "kind": "InMemoryMachineTemplate", "name": md}}}}},
        ]
    return objs


def collection_path(obj: dict[str, Any]) -> str:
    api_version, kind = obj["apiVersion"], obj["kind"]
    plural = kind.lower() + ("es" if kind.endswith("s") else "s")
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{obj['metadata']['namespace']}/{plural}"


def parse_reconciles(text: str) -> dict[str, float]:
    """controller → sum of controller_runtime_reconcile_total over results."""
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        if not line.startswith("controller_runtime_reconcile_total{"):
            continue
        labels, _, value = line.rpartition(" ")
        controller = labels.split('controller="', 1)[1].split('"', 1)[0]
        out[controller] += float(value)
    return dict(out)


@dataclass
class Outcome:
    case: str
    machines: int
    clusters: int
    apply_s: float = 0.0
    running_s: float = 0.0
    reconciles: dict[str, float] = field(default_factory=dict)
    peaks: Peaks = field(default_factory=Peaks)
    controllers_cpu: float = 0.0
    apiserver_cpu: float = 0.0
    workloads_cpu: float = 0.0
    timed_out: bool = False
    running: int = 0

    @property
    def reconciles_per_s(self) -> float:
        return sum(self.reconciles.values()) / self.running_s if self.running_s else 0.0


class Session:
    """An aiohttp session against the management server."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.http = aiohttp.ClientSession(
            headers={**target.headers(), "Content-Type": "application/json"},
            connector=aiohttp.TCPConnector(ssl=target.ssl_context(), limit=8))

    async def post(self, obj: dict[str, Any]) -> None:
        url = self.target.url + collection_path(obj)
        for _ in range(100):
            async with self.http.post(url, json=obj) as resp:
                if resp.status in (200, 201, 409):
                    return
                body = await resp.text()
                if resp.status != 404:  # 404: the CRD is not served yet
                    raise RuntimeError(f"POST {url}: {resp.status} {body[:300]}")
            await asyncio.sleep(0.1)
        raise RuntimeError(f"POST {url}: still 404")

    async def ensure_namespace(self) -> None:
        url = self.target.url + "/api/v1/namespaces"
        async with self.http.post(url, json={"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": NAMESPACE}}) as resp:
            if resp.status not in (200, 201, 409):
                raise RuntimeError(f"namespace: {resp.status} {await resp.text()}")

    async def machine_phases(self) -> list[str]:
        url = f"{self.target.url}/apis/{CAPI}/namespaces/{NAMESPACE}/machines"
        async with self.http.get(url) as resp:
            resp.raise_for_status()
            body = await resp.json()
        return [str((m.get("status") or {}).get("phase", "")) for m in body["items"]]

    async def close(self) -> None:
        await self.http.close()


async def metrics_text(http: aiohttp.ClientSession, port: int) -> str:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        return await resp.text()


async def measure(case: str, clusters: int, workers: int, control_plane: bool,
                  timeout: float, poll: float, log: Callable[[str], None]) -> Outcome:
    total = clusters * (workers + (1 if control_plane else 0))
    outcome = Outcome(case, total, clusters)
    with ServerProcess() as server, tempfile.TemporaryDirectory(prefix="capi-bench-") as tmp:
        assert server.target is not None
        kubeconfig = Path(tmp) / "kubeconfig"
        # ServerProcess keeps its kubeconfig in its own data dir; write the same one here.
        kubeconfig.write_text(_kubeconfig(server.target))
        port = free_port()
        ctl_log = open(Path(tmp) / "controllers.log", "wb")
        ctl = subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli", "controllers", "--kubeconfig", str(kubeconfig),
             "--metrics-bind-address", f"127.0.0.1:{port}", "--boot-delay", "0",
             "--workload-dir", str(Path(tmp) / "workloads"), "--log-level", "warning"],
            stdout=ctl_log, stderr=subprocess.STDOUT)
        plain = aiohttp.ClientSession()
        session = Session(server.target)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    before = parse_reconciles(await metrics_text(plain, port))
                    break
                except aiohttp.ClientError:
                    if ctl.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("controllers did not start: "
                                           + (Path(tmp) / "controllers.log").read_text()[-2000:]
                                           ) from None
                    await asyncio.sleep(0.1)
            await session.ensure_namespace()
            objects = [o for i in range(clusters)
                       for o in cluster_objects(f"c{i:03d}", workers, control_plane)]
            with RssSampler(ctl.pid, server.pid) as sampler:
                cpu0 = cpu_seconds(ctl.pid), cpu_seconds(server.pid)
                start = time.perf_counter()
                for obj in objects:
                    await session.post(obj)
                outcome.apply_s = time.perf_counter() - start
                log(f"  {case}: applied {len(objects)} objects in {outcome.apply_s:.1f} s")
                last_report = 0.0
                while True:
                    phases = await session.machine_phases()
                    outcome.running = sum(1 for p in phases if p == "Running")
                    elapsed = time.perf_counter() - start
                    if outcome.running >= total:
                        break
                    if elapsed > timeout:
                        outcome.timed_out = True
                        break
                    if elapsed - last_report > 10:
                        last_report = elapsed
                        log(f"  {case}: {elapsed:.0f} s, {len(phases)} Machines, "
                            f"{outcome.running} Running")
                    await asyncio.sleep(poll)
                outcome.running_s = time.perf_counter() - start
                outcome.controllers_cpu = (cpu_seconds(ctl.pid) - cpu0[0]) / outcome.running_s
                outcome.apiserver_cpu = (cpu_seconds(server.pid) - cpu0[1]) / outcome.running_s
                outcome.workloads_cpu = sum(
                    _cpu_or_zero(pid) for pid in children_of(ctl.pid)) / outcome.running_s
                after = parse_reconciles(await metrics_text(plain, port))
            outcome.peaks = sampler.peaks
            outcome.reconciles = {k: v - before.get(k, 0.0) for k, v in after.items()}
        finally:
            await session.close()
            await plain.close()
            ctl.terminate()
            try:
                ctl.wait(timeout=60)
            except subprocess.TimeoutExpired:
                ctl.kill()
                ctl.wait()
            ctl_log.close()
    return outcome


def _kubeconfig(target: Target) -> str:
    import base64

    import yaml
    ca = base64.b64encode(target.ca_pem.encode()).decode()
    return str(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "bench",
        "clusters": [{"name": "bench", "cluster": {"server": target.url,
                                                   "certificate-authority-data": ca}}],
        "users": [{"name": "bench", "user": {"token": target.token}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
    }))


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def table(outcomes: list[Outcome], load: tuple[float, float, float], busy: float) -> str:
    rows = ["| case | Machines | apply | all Running | reconciles/s | controllers CPU "
            "| API server CPU | workload servers CPU | peak RSS controllers | peak RSS API server "
            "| peak RSS workload servers |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for o in outcomes:
        running = f"{o.running_s:.1f} s" + (f" (timed out: {o.running} Running)"
                                             if o.timed_out else "")
        p = o.peaks
        rows.append(
            f"| {o.case} | {o.machines:,} | {o.apply_s:.1f} s | {running} "
            f"| {o.reconciles_per_s:,.0f} | {o.controllers_cpu:.2f} | {o.apiserver_cpu:.2f} "
            f"| {o.workloads_cpu:.2f} "
            f"| {mib(p.controllers)} | {mib(p.apiserver)} "
            f"| {mib(p.workloads)} ({p.workload_processes} processes) |")
    detail = []
    for o in outcomes:
        per = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(o.reconciles.items()) if v)
        detail.append(f"* {o.case}: reconciles by controller: {per}")
    footer = (f"\n{os.cpu_count()} CPUs, load average before the run "
              f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}; host CPU busy over the run "
              f"{busy:.0%}.")
    return "\n".join(rows + [""] + detail) + "\n" + footer


CASES = {
    "1x1000": (1, 1000, False),
    "100x(1+3)": (100, 3, True),
    "20x(1+3)": (20, 3, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="Which case(s) to run (default: 1x1000 and 100x(1+3)).")
    parser.add_argument("--machines", type=int,
                        help="Override the machines per cluster of the 1xN case.")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args()
    cases = args.case or ["1x1000", "100x(1+3)"]
    load = os.getloadavg()
    busy0 = host_cpu_busy()
    outcomes = []
    for case in cases:
        clusters, workers, cp = CASES[case]
        if case == "1x1000" and args.machines:
            workers = args.machines
            case = f"1x{workers}"
        print(f"running {case} ...", file=sys.stderr, flush=True)
        outcomes.append(asyncio.run(measure(
            case, clusters, workers, cp, args.timeout, args.poll,
            lambda s: print(s, file=sys.stderr, flush=True))))
    busy1 = host_cpu_busy()
    busy = (busy1[0] - busy0[0]) / max(1.0, busy1[1] - busy0[1])
    print(table(outcomes, load, busy))


if __name__ == "__main__":
    main()
