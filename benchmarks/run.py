"""``python -m benchmarks.run``: every API server benchmark, printed as one Markdown table.

Fixed request counts, each measurement repeated ``--repeats`` times with the median reported,
so a run takes about two to three minutes on two cores. The server runs as its own process
(`benchmarks.server`), load comes from spawned client processes (`benchmarks.load`); the table
says how much CPU each side used, so a client-bound figure is visible as such. ``--quick``
divides the request counts by ten, for checking that the harness works.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import apiserver_bench as bench
from benchmarks.etcd_reference import EtcdProcess, etcd_binary
from benchmarks.load import run_load
from benchmarks.server import CpuMeter, ServerProcess, host_cpu_busy

CONCURRENCY = (1, 16, 64)
NAMESPACES = ["bench-writes", "bench-list", "bench-watch", "bench-warmup"]


@dataclass(slots=True)
class Row:
    measurement: str
    clients: str
    result: str
    p50: str = ""
    p99: str = ""
    server_cpu: str = ""
    client_cpu: str = ""
    reference: str = ""
    target: str = ""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def cores(value: float) -> str:
    return f"{value:.2f}"


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_rows(server: ServerProcess, op: str, counts: dict[int, int], repeats: int,
               processes: int, reference: dict[int, float]) -> list[Row]:
    rows = []
    for clients in CONCURRENCY:
        figures = [
            bench.measure_writes(server, op, namespace="bench-writes",
                                 tag=f"{op}-{clients}-{r}", clients=clients,
                                 requests=counts[clients], processes=processes)
            for r in range(repeats)
        ]
        errors = sum(f.load.errors for f in figures)
        rate = median([f.load.rate for f in figures])
        label = ("creates/s (POST)" if op == "create"
                 else "updates/s (PUT with resourceVersion)")
        target = ">= 3,000/s, p99 < 100 ms" if clients == 64 else ""
        ref = f"{reference[clients]:,.0f}/s" if clients in reference else ""
        rows.append(Row(
            label, str(clients),
            f"{rate:,.0f}/s" + (f" ({errors} errors)" if errors else ""),
            ms(median([f.load.percentile(0.50) for f in figures])),
            ms(median([f.load.percentile(0.99) for f in figures])),
            cores(median([f.server_cores for f in figures])),
            cores(median([f.load.client_cores for f in figures])),
            ref, target,
        ))
    return rows


def etcd_reference(counts: dict[int, int], repeats: int, processes: int) -> dict[int, float]:
    binary = etcd_binary()
    if binary is None:
        return {}
    out = {}
    with EtcdProcess(binary) as etcd:
        assert etcd.target is not None
        for clients in CONCURRENCY:
            rates = []
            for r in range(repeats):
                meter = CpuMeter(etcd.pid)
                meter.start()
                result = run_load(etcd.target, "etcd-put", namespace="ref",
                                  tag=f"{clients}-{r}", clients=clients,
                                  requests=counts[clients], processes=processes)
                meter.stop()
                rates.append(result.rate)
            out[clients] = median(rates)
    return out


def render(rows: list[Row], with_reference: bool) -> str:
    head = ["measurement", "clients", "result", "p50", "p99", "server CPU (cores)",
            "client CPU (cores)"]
    if with_reference:
        head.append("etcd 3.4 raw put")
    head.append("target")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.measurement, row.clients, row.result, row.p50, row.p99, row.server_cpu,
                 row.client_cpu]
        if with_reference:
            cells.append(row.reference)
        cells.append(row.target)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def step(name: str, fn: Callable[[], list[Row]], rows: list[Row]) -> None:
    t0 = time.perf_counter()
    print(f"... {name}", file=sys.stderr, flush=True)
    rows.extend(fn())
    print(f"    {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--client-processes", type=int, default=1,
                        help="spread concurrent clients over this many processes")
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests")
    parser.add_argument("--etcd", choices=["auto", "no"], default="auto",
                        help="measure raw etcd puts as a reference if etcd is installed")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    write_counts = {1: 600 // scale, 16: 3200 // scale, 64: 6400 // scale}
    list_objects = 10_000 // scale
    watch_writes = 2560 // scale
    procs = args.client_processes

    load_before = os.getloadavg()[0]
    busy0, total0 = host_cpu_busy()
    started = time.perf_counter()
    rows: list[Row] = []
    reference: dict[int, float] = {}
    if args.etcd == "auto" and etcd_binary():
        print("... etcd reference", file=sys.stderr, flush=True)
        reference = etcd_reference(write_counts, args.repeats, procs)

    with ServerProcess() as server:
        assert server.target is not None
        target = server.target
        asyncio.run(bench.prepare(target, NAMESPACES))
        run_load(target, "create", namespace="bench-warmup", tag="warm", clients=64,
                 requests=640, processes=procs)

        def memory_and_list() -> list[Row]:
            mem = bench.measure_memory(server, namespace="bench-list", objects=list_objects,
                                       processes=procs)
            out = [Row(f"memory per {mem.objects:,} stored objects (server RSS growth)", "",
                       f"{mem.delta / 2**20:.1f} MiB",
                       target=f"RSS {mem.rss_before / 2**20:.0f} → "
                              f"{mem.rss_after / 2**20:.0f} MiB")]
            for fig in asyncio.run(bench.measure_list(target, "bench-list", args.repeats + 2)):
                out.append(Row(
                    f"list {fig.items:,} objects, {fig.label}: time to last byte", "1",
                    ms(fig.seconds),
                    target=("< 300 ms; " if fig.label == "JSON" else "")
                    + f"{fig.body_bytes / 2**20:.1f} MiB in {fig.requests} "
                      f"request{'s' if fig.requests > 1 else ''}; Python client decode "
                      f"{ms(fig.decode_seconds)} more"))
            return out

        def watch() -> list[Row]:
            figures = [asyncio.run(bench.measure_watch(server, namespace="bench-watch",
                                                       watchers=100, writes=watch_writes,
                                                       tag=f"watch-{r}"))
                       for r in range(args.repeats)]
            fig = sorted(figures, key=lambda f: f.rate)[len(figures) // 2]
            return [Row(f"watch events/s delivered to {fig.watchers} watchers "
                        f"({fig.writes:,} creates by 64 writers)", "100",
                        f"{fig.rate:,.0f}/s", server_cpu=cores(fig.server_cores),
                        client_cpu=cores(fig.watcher_cores) + " (watchers)",
                        target=">= 50,000/s")]

        step("memory and list", memory_and_list, rows)
        step("creates", lambda: write_rows(server, "create", write_counts, args.repeats, procs,
                                           reference), rows)
        step("updates", lambda: write_rows(server, "update", write_counts, args.repeats, procs,
                                           {}), rows)
        step("watch", watch, rows)

    busy1, total1 = host_cpu_busy()
    elapsed = time.perf_counter() - started
    host = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
    print(render(rows, bool(reference)))
    print()
    print(f"{platform.python_implementation()} {platform.python_version()}, "
          f"{len(os.sched_getaffinity(0))} CPUs, client processes: {procs}, "
          f"repeats: {args.repeats} (median), total {elapsed:.0f} s; host load average "
          f"{load_before:.1f} before the run, host CPU busy {host * 100:.0f}% during it "
          f"(this benchmark included).")


if __name__ == "__main__":
    main()
