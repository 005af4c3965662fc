"""``python -m benchmarks.process_bench``: workload clusters on process machines, from the
manifest to every Node Ready, and what each machine costs in memory.

Why: item 7 of "Workload clusters on real machines" asks how long 1 + 3 and 3 + 20 machines
(control plane + workers) take from `kubectl apply` to all Nodes Ready, and the resident memory
per machine. These are real machines in the sense that matters here: each runs the node agent,
applies its cloud-init user-data and runs kubeadm init/join; control-plane machines run a
stacked etcd member and an API server on it.

How: the same steps as `shipyard create cluster` up to the wait (`shipyard.cli.create.Flow`):
an ephemeral management plane, the core, kubeadm bootstrap, kubeadm control-plane and process
providers' controllers in this process, the process provider's quick-start template applied.
The clock starts at the first object created and stops when every Machine is Running with a
nodeRef and the workload cluster (through its `<cluster>-kubeconfig`) lists that many Nodes, all
Ready. Memory: the summed RSS (`VmRSS`) of each machine's processes (every process whose
command line names the machine's root), sampled once all are Ready, reported per control-plane
and per worker machine. The cluster is then deleted and the plane torn down. The host's load
average before the run is printed with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.server import rss_bytes


def machine_rss(machine_dir: Path) -> int:
    """Summed RSS of the processes whose command line names this machine's directory."""
    total = 0
    needle = str(machine_dir).encode()
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            if needle in (pid_dir / "cmdline").read_bytes():
                total += rss_bytes([int(pid_dir.name)])
        except OSError:
            continue
    return total


def echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def run(control_planes: int, workers: int, timeout: float) -> dict[str, Any]:
    from shipyard.cli.create import Flow
    from shipyard.client import Client

    home = Path(tempfile.mkdtemp(prefix="shipyard-process-bench-"))
    name = f"bench{control_planes}x{workers}"
    values = {"CLUSTER_NAME": name, "NAMESPACE": "default", "KUBERNETES_VERSION": "v1.33.0",
              "CONTROL_PLANE_MACHINE_COUNT": str(control_planes),
              "WORKER_MACHINE_COUNT": str(workers)}
    flow = Flow(name, "default", home, "process", "", values, timeout, echo)
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
                    await asyncio.sleep(0.2)
            result["seconds"] = time.monotonic() - started
            machines_root = flow.workload_dir / "process" / "machines" / "default"
            cp, wk = [], []
            for machine_dir in sorted(machines_root.iterdir()):
                (cp if "control-plane" in machine_dir.name else wk).append(
                    machine_rss(machine_dir))
            result["cp_rss"] = sum(cp) / len(cp) if cp else 0
            result["worker_rss"] = sum(wk) / len(wk) if wk else 0
            result["total_rss"] = sum(cp) + sum(wk)
    finally:
        await flow.clean_up()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="1+3,3+20",
                        help="control-plane+worker counts, comma-separated")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = []
    for shape in args.shapes.split(","):
        cps, workers = (int(x) for x in shape.split("+"))
        rows.append(asyncio.run(run(cps, workers, args.timeout)))
    mib = 1024 * 1024
    print(f"{os.cpu_count()} cores, load average before the run {load:.2f}")
    print("| machines (control plane + workers) | apply → all Nodes Ready | RSS per "
          "control-plane machine | RSS per worker | RSS, all machines |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['control_planes']} + {r['workers']} | {r['seconds']:.1f} s | "
              f"{r['cp_rss'] / mib:.0f} MiB | {r['worker_rss'] / mib:.0f} MiB | "
              f"{r['total_rss'] / mib:.0f} MiB |")


if __name__ == "__main__":
    main()
