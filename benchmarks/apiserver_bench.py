"""API server benchmarks over HTTPS against a `MeasuredServer`: writes, watch fan-out, list, memory.

Every figure is client-observed except CPU and memory, which come from the server's /proc
entry. Measurements share one server, in this order: set-up and warm-up, 10,000 objects stored
(memory before/after), list timings over them, then creates and updates at each concurrency,
then watch fan-out. Each function returns plain numbers; `benchmarks.run` repeats and tabulates.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from benchmarks.load import CRD, LoadResult, LoadRun, collection_path, run_load, session_for
from benchmarks.server import CpuMeter, MeasuredServer, Target, rss_bytes

TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")


@dataclass(slots=True)
class WriteFigure:
    load: LoadResult
    server_cores: float


@dataclass(slots=True)
class WatchFigure:
    watchers: int
    writes: int
    delivered: int
    seconds: float
    server_cores: float
    watcher_cores: float
    closed_early: int  # watches the server ended before they had every event

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class ListFigure:
    label: str
    seconds: float  # request to last byte, summed over pages
    decode_seconds: float  # the benchmark client's orjson decode, not included above
    items: int
    body_bytes: int
    requests: int
    encoding: str  # Content-Encoding the server chose (aiohttp asks for gzip, as kubectl does)


@dataclass(slots=True)
class MemoryFigure:
    objects: int
    rss_before: int
    rss_after: int

    @property
    def delta(self) -> int:
        return self.rss_after - self.rss_before


# ------------------------------------------------------------------------------------ set-up

async def _request(session: aiohttp.ClientSession, target: Target, method: str, path: str,
                   body: Any = None) -> tuple[int, Any]:
    headers = {**target.headers(), "Content-Type": "application/json"}
    data = orjson.dumps(body) if body is not None else None
    async with session.request(method, target.url + path, data=data, headers=headers) as resp:
        raw = await resp.read()
        return resp.status, orjson.loads(raw) if raw else None


async def prepare(target: Target, namespaces: list[str]) -> None:
    """Install the benchmark CRD and namespaces, and wait until the resource is served."""
    async with session_for(target, 4) as session:
        status, body = await _request(session, target, "POST",
                                      "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                                      CRD)
        if status not in (201, 409):
            raise RuntimeError(f"creating the CRD: {status} {body}")
        for ns in namespaces:
            status, body = await _request(session, target, "POST", "/api/v1/namespaces",
                                          {"metadata": {"name": ns}})
            if status not in (201, 409):
                raise RuntimeError(f"creating namespace {ns}: {status} {body}")
        deadline = time.monotonic() + 30
        while True:
            status, body = await _request(session, target, "GET",
                                          collection_path(namespaces[0]) + "?limit=1")
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the CRD was not served: {status} {body}")
            await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------------ writes

def measure_writes(server: MeasuredServer, op: str, *, namespace: str, tag: str, clients: int,
                   requests: int, processes: int = 1) -> WriteFigure:
    assert server.target is not None
    run = LoadRun(server.target, op, namespace=namespace, tag=tag, clients=clients,
                  requests=requests, processes=processes)
    meter = CpuMeter(server.pids)
    run.start()
    meter.start()
    result = run.finish()
    meter.stop()
    return WriteFigure(result, meter.cores)


# ------------------------------------------------------------------------------------ memory

def measure_memory(server: MeasuredServer, *, namespace: str, objects: int,
                   processes: int = 1) -> MemoryFigure:
    """RSS before and after storing ``objects`` 1 KB objects (64 clients create them)."""
    assert server.target is not None
    before = rss_bytes(server.pids)
    result = run_load(server.target, "create", namespace=namespace, tag="mem", clients=64,
                      requests=objects, processes=processes)
    if result.errors:
        raise RuntimeError(f"{result.errors} creates failed while filling {namespace}")
    time.sleep(0.5)
    return MemoryFigure(result.requests, before, rss_bytes(server.pids))


# -------------------------------------------------------------------------------------- list

async def _timed_list(session: aiohttp.ClientSession, target: Target, path: str,
                      accept: str, limit: int) -> tuple[float, float, int, int, int, str]:
    """(seconds until the last byte of the last page, seconds decoding, items, bytes, pages,
    content encoding).

    The decode is timed apart: it is the Python client's cost (orjson building ~10 dicts per
    object, plus this process's cyclic GC), not the server's; kubectl decodes in Go.
    """
    headers = {**target.headers(), "Accept": accept}
    items = size = requests = 0
    token = ""
    transfer = decode = 0.0
    encoding = ""
    while True:
        query = f"?limit={limit}" if limit else ""
        if token:
            query += f"&continue={token}"
        t0 = time.perf_counter()
        async with session.get(target.url + path + query, headers=headers) as resp:
            raw = await resp.read()
            encoding = resp.headers.get("Content-Encoding", "")
            if resp.status != 200:
                raise RuntimeError(f"list failed: {resp.status} {raw[:300]!r}")
        t1 = time.perf_counter()
        doc = orjson.loads(raw)
        decode += time.perf_counter() - t1
        transfer += t1 - t0
        requests += 1
        size += len(raw)
        items += len(doc.get("rows") if "rows" in doc else doc["items"])
        token = (doc.get("metadata") or {}).get("continue", "")
        if not token:
            return transfer, decode, items, size, requests, encoding


async def measure_list(target: Target, namespace: str, repeats: int) -> list[ListFigure]:
    """Median time to receive the whole collection: full JSON, a full Table, and a Table in
    pages of 500 as ``kubectl get`` fetches it."""
    variants = [("JSON", "application/json", 0), ("Table", TABLE_ACCEPT, 0),
                ("Table, pages of 500 (kubectl get)", TABLE_ACCEPT, 500)]
    out = []
    async with session_for(target, 1) as session:
        await _timed_list(session, target, collection_path(namespace), "application/json", 1)
        for label, accept, limit in variants:
            runs = [await _timed_list(session, target, collection_path(namespace), accept,
                                      limit) for _ in range(repeats)]
            _, _, items, size, requests, encoding = runs[0]
            out.append(ListFigure(label, statistics.median(r[0] for r in runs),
                                  statistics.median(r[1] for r in runs), items, size,
                                  requests, encoding))
    return out


# ------------------------------------------------------------------------------------- watch

async def _current_revision(session: aiohttp.ClientSession, target: Target, path: str) -> str:
    status, body = await _request(session, target, "GET", path + "?limit=1")
    if status != 200:
        raise RuntimeError(f"list for the watch revision: {status} {body}")
    return str(body["metadata"]["resourceVersion"])


async def measure_watch(server: MeasuredServer, *, namespace: str, watchers: int, writes: int,
                        writer_clients: int = 64, tag: str = "watch") -> WatchFigure:
    """Open ``watchers`` watches on one namespace, then create ``writes`` objects there (from a
    separate process) and count the events every watcher receives. Delivered events/s is the
    total received over the time from the first write until the last watcher saw them all, or
    until its stream ended: kube-apiserver closes a watch whose events it cannot hand over fast
    enough ("watcher close due to unresponsiveness"); such watches are counted apart."""
    target = server.target
    assert target is not None
    writes -= writes % writer_clients
    path = collection_path(namespace)
    counts = [0] * watchers
    done = asyncio.Event()
    remaining = [watchers]
    closed = [0]

    async def consume(i: int, resp: aiohttp.ClientResponse) -> None:
        seen = 0
        async for chunk in resp.content.iter_any():
            seen += chunk.count(b"\n")
            if seen >= writes:
                break
        counts[i] = seen
        closed[0] += seen < writes
        remaining[0] -= 1
        if remaining[0] == 0:
            done.set()

    async with session_for(target, watchers + 1) as session:
        rv = await _current_revision(session, target, path)
        responses = []
        for _ in range(watchers):
            resp = await session.get(
                f"{target.url}{path}?watch=true&resourceVersion={rv}&timeoutSeconds=300",
                headers=target.headers())
            if resp.status != 200:
                raise RuntimeError(f"watch failed: {resp.status} {await resp.text()}")
            responses.append(resp)
        tasks = [asyncio.create_task(consume(i, r)) for i, r in enumerate(responses)]
        run = LoadRun(target, "create", namespace=namespace, tag=tag, clients=writer_clients,
                      requests=writes)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, run.start)
        meter = CpuMeter(server.pids)
        meter.start()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(done.wait(), timeout=240)
        finally:
            elapsed = time.perf_counter() - t0
            watcher_cpu = time.process_time() - cpu0
            meter.stop()
            for task in tasks:
                task.cancel()
            for resp in responses:
                resp.close()
        load = await loop.run_in_executor(None, run.finish)
        if load.errors:
            raise RuntimeError(f"{load.errors} writes failed during the watch benchmark")
    return WatchFigure(watchers, load.requests, sum(counts), elapsed, meter.cores,
                       watcher_cpu / elapsed, closed[0])
