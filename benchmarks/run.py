"""``python -m benchmarks.run``: the API server benchmarks, Shipyard next to kube-apiserver + etcd.

One run measures Shipyard's server and then, on the same machine, upstream kube-apiserver 1.33
on a durable etcd 3.5 (`benchmarks.kube_reference`), with the same client code, workload and
request counts, and prints one Markdown table with both columns and their ratio. The two
servers run one after the other, never at once: on two cores either would take CPU from the
other. ``--reference kube`` is the default when the binaries are built
(``scripts/build-kube-binaries``); ``--reference none`` measures Shipyard alone.

Fixed request counts, each measurement repeated ``--repeats`` times with the median reported.
The servers run as their own processes, load comes from spawned client processes
(`benchmarks.load`); the table says how much CPU each side used, so a client-bound figure is
visible as such. ``--quick`` divides the request counts by ten, for checking the harness.
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
from dataclasses import dataclass, field

from benchmarks import apiserver_bench as bench
from benchmarks.kube_reference import KubeProcesses, kube_binaries
from benchmarks.load import run_load
from benchmarks.server import MeasuredServer, ServerProcess, host_cpu_busy

CONCURRENCY = (1, 16, 64)
NAMESPACES = ["bench-writes", "bench-list", "bench-watch", "bench-warmup"]


@dataclass(frozen=True, slots=True)
class Counts:
    writes: dict[int, int]
    list_objects: int
    watch_writes: int
    repeats: int
    processes: int


@dataclass(slots=True)
class Figure:
    """One measurement on one server. ``unit`` says how to read ``value``: "/s" (higher is
    better), "s" or "B" (lower is better)."""

    value: float
    unit: str
    p50: float | None = None
    p99: float | None = None
    server_cores: float | None = None
    client_cores: float | None = None
    note: str = ""


# (measurement, clients) -> figure, in the order measured
Suite = dict[tuple[str, str], Figure]


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def show(fig: Figure) -> str:
    if fig.unit == "/s":
        return f"{fig.value:,.0f}/s"
    if fig.unit == "s":
        return ms(fig.value)
    return f"{fig.value / 2**20:.1f} MiB"


# -------------------------------------------------------------------------------- one server

def write_figures(server: MeasuredServer, op: str, counts: Counts, suite: Suite) -> None:
    label = "creates/s (POST)" if op == "create" else "updates/s (PUT with resourceVersion)"
    for clients in CONCURRENCY:
        figures = [
            bench.measure_writes(server, op, namespace="bench-writes",
                                 tag=f"{op}-{clients}-{r}", clients=clients,
                                 requests=counts.writes[clients], processes=counts.processes)
            for r in range(counts.repeats)
        ]
        errors = sum(f.load.errors for f in figures)
        rate = median([f.load.rate for f in figures])
        server_cores = median([f.server_cores for f in figures])
        # CPU per request: comparable between servers even when the host was busy.
        note = f"{server_cores / rate * 1000:.2f} ms server CPU/request" if rate else ""
        suite[(label, str(clients))] = Figure(
            rate, "/s",
            median([f.load.percentile(0.50) for f in figures]),
            median([f.load.percentile(0.99) for f in figures]),
            server_cores,
            median([f.load.client_cores for f in figures]),
            note + (f", {errors} errors" if errors else ""))


def memory_and_list(server: MeasuredServer, counts: Counts, suite: Suite) -> None:
    assert server.target is not None
    mem = bench.measure_memory(server, namespace="bench-list", objects=counts.list_objects,
                               processes=counts.processes)
    suite[(f"memory per {mem.objects:,} stored objects (server RSS growth)", "")] = Figure(
        mem.delta, "B",
        note=f"RSS {mem.rss_before / 2**20:.0f} → {mem.rss_after / 2**20:.0f} MiB")
    for fig in asyncio.run(bench.measure_list(server.target, "bench-list", counts.repeats + 2)):
        pages = f"{fig.requests} request{'s' if fig.requests > 1 else ''}"
        encoding = f" {fig.encoding}" if fig.encoding else ""
        suite[(f"list {fig.items:,} objects, {fig.label}: time to last byte", "1")] = Figure(
            fig.seconds, "s",
            note=f"{fig.body_bytes / 2**20:.1f} MiB in {pages}{encoding}; "
                 f"client decode {ms(fig.decode_seconds)} more")


def watch_figure(server: MeasuredServer, counts: Counts, suite: Suite) -> None:
    figures = [asyncio.run(bench.measure_watch(server, namespace="bench-watch", watchers=100,
                                               writes=counts.watch_writes, tag=f"watch-{r}"))
               for r in range(counts.repeats)]
    fig = sorted(figures, key=lambda f: f.rate)[len(figures) // 2]
    closed = sum(f.closed_early for f in figures)
    note = (f"{closed} of {fig.watchers * len(figures)} watches closed by the server before "
            f"the last event" if closed else "")
    suite[(f"watch events/s delivered to {fig.watchers} watchers ({fig.writes:,} creates by "
           f"64 writers)", "100")] = Figure(fig.rate, "/s", server_cores=fig.server_cores,
                                            client_cores=fig.watcher_cores, note=note)


def step(name: str, fn: Callable[[], None]) -> None:
    t0 = time.perf_counter()
    print(f"... {name}", file=sys.stderr, flush=True)
    fn()
    print(f"    {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def measure_suite(name: str, server: MeasuredServer, counts: Counts) -> Suite:
    """Every measurement against one running server, in a fixed order: set-up and warm-up,
    10,000 objects stored (memory), lists over them, creates, updates, watch fan-out."""
    assert server.target is not None
    suite: Suite = {}
    asyncio.run(bench.prepare(server.target, NAMESPACES))
    run_load(server.target, "create", namespace="bench-warmup", tag="warm", clients=64,
             requests=640, processes=counts.processes)
    step(f"{name}: memory and list", lambda: memory_and_list(server, counts, suite))
    step(f"{name}: creates", lambda: write_figures(server, "create", counts, suite))
    step(f"{name}: updates", lambda: write_figures(server, "update", counts, suite))
    step(f"{name}: watch", lambda: watch_figure(server, counts, suite))
    return suite


# ------------------------------------------------------------------------------------ table

@dataclass(slots=True)
class Table:
    head: list[str]
    lines: list[list[str]] = field(default_factory=list)

    def markdown(self) -> str:
        out = ["| " + " | ".join(self.head) + " |", "|" + "---|" * len(self.head)]
        out += ["| " + " | ".join(cells) + " |" for cells in self.lines]
        return "\n".join(out)


def _latency(fig: Figure | None) -> str:
    if fig is None or fig.p50 is None or fig.p99 is None:
        return ""
    return f"{ms(fig.p50)} / {ms(fig.p99)}"


def _cores(fig: Figure | None) -> str:
    return "" if fig is None or fig.server_cores is None else f"{fig.server_cores:.2f}"


def _client(fig: Figure | None) -> str:
    return "" if fig is None or fig.client_cores is None else f"{fig.client_cores:.2f}"


def render(ours: Suite, kube: Suite | None) -> str:
    if kube is None:
        table = Table(["measurement", "clients", "Shipyard", "p50 / p99", "server CPU (cores)",
                       "client CPU (cores)", "notes"])
        for (label, clients), fig in ours.items():
            table.lines.append([label, clients, show(fig), _latency(fig), _cores(fig),
                                _client(fig), fig.note])
        return table.markdown()
    table = Table(["measurement", "clients", "Shipyard", "kube-apiserver+etcd",
                   "ratio (Shipyard/kube)", "p50 / p99 Shipyard", "p50 / p99 kube",
                   "server CPU Shipyard", "server CPU kube (apiserver+etcd)",
                   "client CPU (Shipyard / kube)", "notes (Shipyard; kube)"])
    for key, fig in ours.items():
        ref = kube.get(key)
        ratio = f"{fig.value / ref.value:.2f}" if ref is not None and ref.value else ""
        clients = "" if fig.client_cores is None else f"{_client(fig)} / {_client(ref)}"
        notes = fig.note
        if ref is not None and ref.note:
            notes = f"{notes} — kube: {ref.note}" if notes else f"kube: {ref.note}"
        table.lines.append([key[0], key[1], show(fig), show(ref) if ref else "", ratio,
                            _latency(fig), _latency(ref), _cores(fig), _cores(ref), clients,
                            notes])
    return table.markdown()


# ------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--client-processes", type=int, default=1,
                        help="spread concurrent clients over this many processes")
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests")
    parser.add_argument("--reference", choices=["auto", "kube", "none"], default="auto",
                        help="also measure kube-apiserver + etcd (auto: when built)")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    counts = Counts(writes={1: 600 // scale, 16: 3200 // scale, 64: 6400 // scale},
                    list_objects=10_000 // scale, watch_writes=2560 // scale,
                    repeats=args.repeats, processes=args.client_processes)
    binaries = kube_binaries()
    if args.reference == "kube" and binaries is None:
        parser.error("--reference kube: kube-apiserver and etcd are not built; run "
                     "scripts/build-kube-binaries")
    with_kube = args.reference != "none" and binaries is not None

    load_before = os.getloadavg()[0]
    busy0, total0 = host_cpu_busy()
    started = time.perf_counter()
    with ServerProcess() as server:
        ours = measure_suite("shipyard", server, counts)
    kube: Suite | None = None
    if with_kube:
        assert binaries is not None
        with KubeProcesses(binaries) as reference:
            kube = measure_suite("kube-apiserver+etcd", reference, counts)

    busy1, total1 = host_cpu_busy()
    elapsed = time.perf_counter() - started
    host = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
    print(render(ours, kube))
    print()
    print(f"{platform.python_implementation()} {platform.python_version()}, "
          f"{len(os.sched_getaffinity(0))} CPUs, client processes: {counts.processes}, "
          f"repeats: {counts.repeats} (median), total {elapsed:.0f} s; host load average "
          f"{load_before:.1f} before the run, host CPU busy {host * 100:.0f}% during it "
          f"(this benchmark included).")


if __name__ == "__main__":
    main()
