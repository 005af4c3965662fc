"""Closed-loop load from client processes: N concurrent clients, fixed request counts, latencies.

Each client is a coroutine that sends its share of requests one after the other over an aiohttp
keep-alive pool (one connection per client, TLS verified against the server's CA, bearer
token), so "64 clients" means 64 requests in flight at most. Clients are spread over
``processes`` spawned processes so that a saturated Python client can be told apart from a
saturated server: every process reports its own CPU time. All processes prepare untimed
(sessions, connections, the objects an update run needs), meet at a barrier with the parent,
and only then start the clock; throughput is the total over the union of their timed windows.

Operations (``op``):

* ``create``: POST a new ~1 KB custom resource.
* ``update``: PUT the whole object back with one field changed and the resourceVersion of the
  previous response (an optimistic-concurrency update, as a controller does). Each client
  updates its own objects round-robin, so conflicts cannot happen.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from benchmarks.server import Target

GROUP = "bench.shipyard.dev"
VERSION = "v1"
PLURAL = "widgets"
KIND = "Widget"
UPDATE_OBJECTS_PER_CLIENT = 8

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": KIND, "listKind": "WidgetList"},
        "versions": [{
            "name": VERSION,
            "served": True,
            "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["replicas", "image"],
                        "properties": {
                            "replicas": {"type": "integer", "minimum": 0},
                            "image": {"type": "string", "maxLength": 256},
                            "paused": {"type": "boolean", "default": False},
                            "ports": {"type": "array", "items": {
                                "type": "object",
                                "properties": {"name": {"type": "string"},
                                               "port": {"type": "integer"}},
                            }},
                            "config": {"type": "object",
                                       "additionalProperties": {"type": "string"}},
                        },
                    },
                    "status": {
                        "type": "object",
                        "properties": {"phase": {"type": "string"},
                                       "readyReplicas": {"type": "integer"}},
                    },
                },
            }},
        }],
    },
}


def collection_path(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


def widget(namespace: str, name: str) -> dict[str, Any]:
    """A custom resource of about 1 KB as posted (the server adds uid, timestamps and
    managedFields to what it stores)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "bench", "tier": "load"}},
        "spec": {
            "replicas": 3,
            "image": "registry.example.com/bench/widget:v1.2.3",
            "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
            "config": {f"key-{i:02d}": "v" * 56 for i in range(10)},
        },
    }


@dataclass(slots=True)
class ProcessReport:
    started: float
    finished: float
    latencies: list[float]
    cpu_seconds: float
    errors: int


@dataclass(slots=True)
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float] = field(repr=False)
    client_cores: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _client_loop(
    session: aiohttp.ClientSession, target: Target, op: str, namespace: str, tag: str,
    requests: int, latencies: list[float], errors: list[int],
    objects: list[dict[str, Any]],
) -> None:
    base = target.url
    headers = {**target.headers(), "Content-Type": "application/json"}
    perf = time.perf_counter
    if op == "create":
        url = base + collection_path(namespace)
        for i in range(requests):
            body = orjson.dumps(widget(namespace, f"{tag}-{i}"))
            t0 = perf()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                ok = resp.status == 201
            latencies.append(perf() - t0)
            errors[0] += not ok
    elif op == "update":
        path = base + collection_path(namespace)
        for i in range(requests):
            slot = i % len(objects)
            obj = objects[slot]
            obj["spec"]["replicas"] = i % 7
            body = orjson.dumps(obj)
            t0 = perf()
            async with session.put(f"{path}/{obj['metadata']['name']}", data=body,
                                   headers=headers) as resp:
                raw = await resp.read()
                ok = resp.status == 200
            latencies.append(perf() - t0)
            if ok:
                objects[slot] = orjson.loads(raw)
            else:
                errors[0] += 1
    else:
        raise ValueError(f"unknown op {op!r}")


async def _prepare_updates(
    session: aiohttp.ClientSession, target: Target, namespace: str, tag: str
) -> list[dict[str, Any]]:
    url = target.url + collection_path(namespace)
    headers = {**target.headers(), "Content-Type": "application/json"}
    out = []
    for i in range(UPDATE_OBJECTS_PER_CLIENT):
        body = orjson.dumps(widget(namespace, f"{tag}-u{i}"))
        async with session.post(url, data=body, headers=headers) as resp:
            raw = await resp.read()
            if resp.status != 201:
                raise RuntimeError(f"preparing updates: {resp.status} {raw[:300]!r}")
        out.append(orjson.loads(raw))
    return out


def session_for(target: Target, connections: int) -> aiohttp.ClientSession:
    ssl_ctx: Any = target.ssl_context() if target.ca_pem else False
    connector = aiohttp.TCPConnector(limit=connections, ssl=ssl_ctx, force_close=False)
    return aiohttp.ClientSession(connector=connector,
                                 timeout=aiohttp.ClientTimeout(total=120))


async def _process_main(
    target: Target, op: str, namespace: str, tag: str, clients: int, per_client: int,
    barrier: multiprocessing.synchronize.Barrier,
) -> ProcessReport:
    latencies: list[float] = []
    errors = [0]
    async with session_for(target, clients) as session:
        prepared: list[list[dict[str, Any]]] = [[] for _ in range(clients)]
        if op == "update":
            prepared = list(await asyncio.gather(*(
                _prepare_updates(session, target, namespace, f"{tag}-c{c}")
                for c in range(clients)
            )))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, barrier.wait)
        cpu0 = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(
            _client_loop(session, target, op, namespace, f"{tag}-c{c}", per_client, latencies,
                         errors, prepared[c])
            for c in range(clients)
        ))
        finished = time.perf_counter()
        cpu = time.process_time() - cpu0
    return ProcessReport(started, finished, latencies, cpu, errors[0])


def _process_entry(
    target: Target, op: str, namespace: str, tag: str, clients: int, per_client: int,
    barrier: multiprocessing.synchronize.Barrier, results: Any,
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        report = asyncio.run(_process_main(target, op, namespace, tag, clients, per_client,
                                           barrier))
        results.put(report)
    except BaseException as exc:
        barrier.abort()
        results.put(exc)
        raise


class LoadRun:
    """Client processes for one measurement: `start` spawns them and waits for their
    preparation, `finish` collects their reports. Between the two the clock is running, so a
    caller can meter the server (or watch streams) over exactly the timed window."""

    def __init__(
        self, target: Target, op: str, *, namespace: str, tag: str, clients: int,
        requests: int, processes: int = 1,
    ) -> None:
        processes = max(1, min(processes, clients))
        self.per_process = [clients // processes + (p < clients % processes)
                            for p in range(processes)]
        self.per_client = max(1, requests // clients)
        ctx = multiprocessing.get_context("spawn")
        self.barrier = ctx.Barrier(processes + 1)
        self.results = ctx.Queue()
        self.procs = [
            ctx.Process(target=_process_entry, daemon=True, args=(
                target, op, namespace, f"{tag}-p{p}", n, self.per_client, self.barrier,
                self.results))
            for p, n in enumerate(self.per_process)
        ]

    def start(self) -> None:
        for proc in self.procs:
            proc.start()
        self.barrier.wait(timeout=120)

    def finish(self) -> LoadResult:
        reports: list[ProcessReport] = []
        for _ in self.procs:
            item = self.results.get(timeout=300)
            if isinstance(item, BaseException):
                raise RuntimeError(f"a client process failed: {item!r}") from item
            reports.append(item)
        for proc in self.procs:
            proc.join(timeout=30)
        started = min(r.started for r in reports)
        finished = max(r.finished for r in reports)
        wall = finished - started
        latencies = [x for r in reports for x in r.latencies]
        return LoadResult(
            requests=len(latencies),
            seconds=wall,
            latencies=latencies,
            client_cores=sum(r.cpu_seconds for r in reports) / wall if wall > 0 else 0.0,
            errors=sum(r.errors for r in reports),
        )


def run_load(
    target: Target, op: str, *, namespace: str, tag: str, clients: int, requests: int,
    processes: int = 1,
) -> LoadResult:
    run = LoadRun(target, op, namespace=namespace, tag=tag, clients=clients, requests=requests,
                  processes=processes)
    run.start()
    return run.finish()
