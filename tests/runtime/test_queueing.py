"""WorkQueue and rate limiters on a FakeClock: time moves only when the test says so."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from shipyard.runtime import (
    BucketRateLimiter,
    FakeClock,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    Metrics,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def sample(metrics: Metrics, metric: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(metric, labels)
    return 0.0 if value is None else value


def test_exponential_backoff_doubles_from_5ms_to_1000s() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1000.0 and max(delays) == 1000.0
    assert limiter.num_requeues("a") == 20 and limiter.when("b") == 0.005
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0 and limiter.when("a") == 0.005
    for _ in range(200):
        limiter.when("c")
    assert limiter.when("c") == 1000.0


def test_bucket_allows_a_burst_then_paces() -> None:
    now = [0.0]
    bucket = BucketRateLimiter(qps=10, burst=3, clock=lambda: now[0])
    assert [bucket.when(i) for i in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.when(3) == pytest.approx(0.1)
    assert bucket.when(4) == pytest.approx(0.2)
    now[0] = 10.0  # refilled to the burst, no more
    assert [bucket.when(i) for i in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.when(9) == pytest.approx(0.1)


def test_default_controller_limiter_is_the_max_of_both() -> None:
    now = [0.0]
    limiter = default_controller_rate_limiter(clock=lambda: now[0])
    assert isinstance(limiter, MaxOfRateLimiter)
    assert limiter.when("x") == 0.005
    # 100 distinct items exhaust the bucket: the 102nd waits for a token, not 5 ms
    for i in range(100):
        limiter.when(i)
    assert limiter.when("y") == pytest.approx(0.2)
    assert limiter.num_requeues("x") == 1
    limiter.forget("x")
    assert limiter.num_requeues("x") == 0


async def test_dedup_and_fifo(metrics: Metrics) -> None:
    q: WorkQueue[str] = WorkQueue("t", metrics=metrics)
    for item in ("a", "b", "a", "c", "b"):
        q.add(item)
    assert len(q) == 3
    assert sample(metrics, "workqueue_depth", controller="t", name="t") == 3
    assert sample(metrics, "workqueue_adds_total", controller="t", name="t") == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_item_is_never_handed_out_twice_concurrently(metrics: Metrics) -> None:
    q: WorkQueue[str] = WorkQueue("t", metrics=metrics)
    q.add("a")
    item = await q.get()
    q.add("a")  # dirty while processing: not queued yet
    assert len(q) == 0
    waiter = asyncio.create_task(q.get())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiter.done()
    q.done(item)  # now it is requeued once
    assert await waiter == "a"
    q.done("a")
    assert len(q) == 0 and q.processing() == frozenset()


async def test_add_after_keeps_the_earliest(metrics: Metrics) -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue("t", metrics=metrics, clock=clock)
    q.add_after("a", 60)
    q.add_after("a", 10)
    q.add_after("a", 30)
    clock.advance(9.9)
    assert len(q) == 0
    clock.advance(0.1)
    assert len(q) == 1 and await q.get() == "a"
    q.done("a")
    clock.advance(100)
    assert len(q) == 0 and clock.pending() == 0  # the later delays were dropped


async def test_rate_limited_retries_back_off_exponentially(metrics: Metrics) -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue("t", metrics=metrics, clock=clock)
    waits = []
    q.add("a")
    for _ in range(5):
        item = await q.get()
        q.done(item)
        q.add_rate_limited(item)
        waited = 0.0
        while not len(q):
            clock.advance(0.001)
            waited += 0.001
        waits.append(round(waited, 3))
    assert waits == [0.005, 0.01, 0.02, 0.04, 0.08]
    assert q.num_requeues("a") == 5
    assert sample(metrics, "workqueue_retries_total", controller="t", name="t") == 5
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_shutdown_wakes_getters_and_refuses_adds(metrics: Metrics) -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue("t", metrics=metrics, clock=clock)
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.add_after("later", 5)
    q.shutdown()
    for g in getters:
        with pytest.raises(ShutDown):
            await g
    q.add("x")
    clock.advance(10)
    assert len(q) == 0 and q.shutting_down
    with pytest.raises(ShutDown):
        await q.get()


async def test_durations_are_observed(metrics: Metrics) -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue("t", metrics=metrics, clock=clock)
    q.add("a")
    clock.advance(2)
    item = await q.get()
    clock.advance(3)
    q.done(item)
    labels = {"controller": "t", "name": "t"}
    assert sample(metrics, "workqueue_queue_duration_seconds_sum", **labels) == pytest.approx(2)
    assert sample(metrics, "workqueue_work_duration_seconds_sum", **labels) == pytest.approx(3)
