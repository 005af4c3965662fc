"""Storage throughput: group-committed writes/s and watch fan-out events/s.

Run ``python -m benchmarks.storage_bench``. Writes are creates of ~1 KB objects by 1, 16 and 64
concurrent writers (synchronous=FULL, so each transaction is fsynced); the fan-out figure is
events delivered in total to 100 watchers on one prefix, counted by the watchers themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from shipyard.storage import SQLiteStore
from shipyard.storage.watching import Watcher

PREFIX = "/registry/cluster.x-k8s.io/machines/default/"


def payload(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Machine",
        "metadata": {"name": name, "namespace": "default", "labels": {"cluster": "c1"}},
        "spec": {"clusterName": "c1", "padding": "x" * 800},
    }


async def writes_per_second(directory: Path, writers: int, total: int) -> tuple[float, float]:
    store = SQLiteStore(directory / f"writes-{writers}.db", compaction_interval=0)
    await store.open()
    per_writer = total // writers

    async def writer(w: int) -> None:
        for i in range(per_writer):
            await store.create(f"{PREFIX}w{w}-{i}", payload(f"w{w}-{i}"))

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    elapsed = time.perf_counter() - started
    batch = store.stats.writes / max(store.stats.transactions, 1)
    await store.close()
    return per_writer * writers / elapsed, batch


async def fanout_per_second(directory: Path, watchers: int, events: int) -> float:
    store = SQLiteStore(directory / "fanout.db", compaction_interval=0)
    await store.open()
    watches = [store.watch(PREFIX, 0) for _ in range(watchers)]

    async def consume(watch: Watcher) -> int:
        seen = 0
        async for _ in watch:
            seen += 1
            if seen == events:
                break
        return seen

    async def writer(w: int, count: int) -> None:
        for i in range(count):
            await store.create(f"{PREFIX}f{w}-{i}", payload(f"f{w}-{i}"))

    consumers = [asyncio.create_task(consume(watch)) for watch in watches]
    started = time.perf_counter()
    await asyncio.gather(*(writer(w, events // 64) for w in range(64)))
    delivered = sum(await asyncio.gather(*consumers))
    elapsed = time.perf_counter() - started
    await store.close()
    return delivered / elapsed


async def main(total: int, fanout_events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"{'writers':>8} {'writes/s':>10} {'writes/transaction':>19}")
        for writers in (1, 16, 64):
            count = total // 10 if writers == 1 else total
            rate, batch = await writes_per_second(directory, writers, count)
            print(f"{writers:>8} {rate:>10,.0f} {batch:>19.1f}")
        rate = await fanout_per_second(directory, 100, fanout_events - fanout_events % 64)
        print(f"watch fan-out to 100 watchers: {rate:,.0f} events/s delivered")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=20_000)
    parser.add_argument("--fanout-events", type=int, default=5_120)
    args = parser.parse_args()
    asyncio.run(main(args.writes, args.fanout_events))
