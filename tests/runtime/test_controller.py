"""Controllers on a Manager against the live server: Owns mapping, label-mapped watches,
error backoff, terminal errors, logs, metrics and graceful shutdown."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from shipyard.apimachinery.errors import NotFound
from shipyard.client import Client, Object, ReaderWriter
from shipyard.runtime import (
    Manager,
    Metrics,
    Request,
    Result,
    TerminalError,
    logs,
    serve_metrics,
)
from tests.runtime.conftest import eventually

CM = ("v1", "ConfigMap")
SECRET = ("v1", "Secret")
FAST = {"backoff_initial": 0.05}


def sample(metrics: Metrics, metric: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(metric, labels) or 0.0


class ConfigMapToSecret:
    """Keeps a Secret `<name>-copy` with the ConfigMap's data, owned by the ConfigMap."""

    def __init__(self, mgr: Manager) -> None:
        self.client: ReaderWriter = mgr.client
        self.configmaps = mgr.informer(CM).cache
        self.reconciled: list[Request] = []
        self.log = logs.get_logger("tests.runtime.cm2secret")

    async def reconcile(self, req: Request) -> Result:
        self.reconciled.append(req)
        self.log.info("reconciling")
        cm = self.configmaps.get(req.name, req.namespace)
        if cm is None:
            return Result()  # deleted: garbage collection removes the Secret
        data = {k: base64.b64encode(v.encode()).decode()
                for k, v in (cm.get("data") or {}).items()}
        secret: Object = {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": f"{req.name}-copy", "namespace": req.namespace,
                         "ownerReferences": [{
                             "apiVersion": "v1", "kind": "ConfigMap", "name": req.name,
                             "uid": cm["metadata"]["uid"], "controller": True,
                             "blockOwnerDeletion": True}]},
            "data": data,
        }
        try:
            current = await self.client.get(*SECRET, f"{req.name}-copy", req.namespace)
        except NotFound:
            await self.client.create(secret)
            return Result()
        if current.get("data") != data:
            current["data"] = data
            await self.client.update(current)
        return Result()


@pytest.fixture
async def manager(kube: Client, namespace: str, metrics: Metrics) -> AsyncIterator[Manager]:
    mgr = Manager(kube, namespace=namespace, metrics=metrics, graceful_shutdown_timeout=5,
                  informer_options=FAST)
    yield mgr
    mgr.stop()


async def run(mgr: Manager) -> asyncio.Task[None]:
    task = asyncio.create_task(mgr.run())
    await eventually(lambda: all(c.started for c in mgr.controllers) or task.done(),
                     what="controllers started")
    return task


async def test_owned_secrets_follow_their_configmaps(
        manager: Manager, kube: Client, namespace: str, metrics: Metrics,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tests.runtime.cm2secret")
    reconciler = ConfigMapToSecret(manager)
    await manager.new_controller("cm2secret", reconciler, for_=CM, owns=[SECRET],
                                 max_concurrent_reconciles=2)
    await kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "app", "namespace": namespace},
                       "data": {"k": "v1"}})
    task = await run(manager)

    async def secret_data() -> dict[str, Any] | None:
        try:
            return (await kube.get(*SECRET, "app-copy", namespace)).get("data")
        except NotFound:
            return None

    async def wait_data(want: dict[str, Any] | None) -> None:
        for _ in range(500):
            if await secret_data() == want:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"secret data never became {want}: {await secret_data()}")

    await wait_data({"k": base64.b64encode(b"v1").decode()})
    await kube.patch(*CM, "app", {"data": {"k": "v2"}}, namespace)
    await wait_data({"k": base64.b64encode(b"v2").decode()})
    # Owns: deleting the child maps to the owner, which recreates it
    before = len(reconciler.reconciled)
    await kube.delete(*SECRET, "app-copy", namespace)
    await wait_data({"k": base64.b64encode(b"v2").decode()})
    assert len(reconciler.reconciled) > before
    assert set(reconciler.reconciled) == {Request(namespace, "app")}
    # the Secret's own name never became a request
    assert Request(namespace, "app-copy") not in reconciler.reconciled

    assert sample(metrics, "controller_runtime_reconcile_total", controller="cm2secret",
                  result="success") >= 3
    assert sample(metrics, "controller_runtime_max_concurrent_reconciles",
                  controller="cm2secret") == 2
    assert sample(metrics, "controller_runtime_reconcile_time_seconds_count",
                  controller="cm2secret") >= 3
    records = [r for r in caplog.records if r.getMessage() == "reconciling"]
    assert records
    ids = {getattr(r, "reconcileID", None) for r in records}
    assert None not in ids and len(ids) == len(records)
    assert {(getattr(r, "controller", None), getattr(r, "namespace", None),
             getattr(r, "object_name", None)) for r in records} == {("cm2secret", namespace, "app")}
    manager.stop()
    await task


async def test_label_mapped_watch(manager: Manager, kube: Client, namespace: str) -> None:
    seen: list[Request] = []

    class Recorder:
        async def reconcile(self, req: Request) -> Result:
            seen.append(req)
            return Result()

    def by_label(obj: Object) -> list[Request]:
        target = (obj["metadata"].get("labels") or {}).get("example.com/for")
        return [Request(namespace, target)] if target else []

    await manager.new_controller("by-label", Recorder(), for_=CM, watches=[(SECRET, by_label)])
    task = await run(manager)
    await kube.create({"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "s", "namespace": namespace,
                                    "labels": {"example.com/for": "target"}}})
    await eventually(lambda: Request(namespace, "target") in seen, what="mapped request")
    manager.stop()
    await task


async def test_errors_retry_with_backoff_and_terminal_errors_do_not(
        manager: Manager, kube: Client, namespace: str, metrics: Metrics) -> None:
    attempts: dict[str, list[int]] = {"flaky": [], "broken": [], "later": []}

    class Reconciler:
        async def reconcile(self, req: Request) -> Result:
            attempts[req.name].append(controller.queue.num_requeues(req))
            if req.name == "flaky" and len(attempts["flaky"]) < 4:
                raise RuntimeError("not yet")
            if req.name == "broken":
                raise TerminalError("spec can never work")
            if req.name == "later" and len(attempts["later"]) == 1:
                return Result(requeue_after=0.05)
            return Result()

    controller = await manager.new_controller("retry", Reconciler(), for_=CM)
    task = await run(manager)
    for name in attempts:
        await kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "namespace": namespace}})
    await eventually(lambda: len(attempts["flaky"]) == 4 and len(attempts["later"]) == 2
                     and attempts["broken"], what="reconciles")
    # each retry saw one more recorded failure: the backoff grows 5 ms, 10 ms, 20 ms
    assert attempts["flaky"] == [0, 1, 2, 3]
    assert controller.queue.num_requeues(Request(namespace, "flaky")) == 0  # forgotten
    assert attempts["later"] == [0, 0]
    # flaky's three retries took at least 35 ms; the terminal error had that long to retry
    await asyncio.sleep(0.1)
    assert attempts["broken"] == [0]
    labels = {"controller": "retry"}
    assert sample(metrics, "controller_runtime_reconcile_errors_total", **labels) == 4
    assert sample(metrics, "controller_runtime_terminal_reconcile_errors_total", **labels) == 1
    assert sample(metrics, "controller_runtime_reconcile_total", result="requeue_after",
                  **labels) == 1
    assert sample(metrics, "workqueue_retries_total", controller="retry", name="retry") == 3
    # a new event still reaches the terminally failed object
    await kube.patch(*CM, "broken", {"data": {"fixed": "yes"}}, namespace)
    await eventually(lambda: len(attempts["broken"]) == 2, what="reconcile after event")
    manager.stop()
    await task


async def test_graceful_shutdown_drains_in_flight_reconciles(
        manager: Manager, kube: Client, namespace: str) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    class Slow:
        async def reconcile(self, req: Request) -> Result:
            started.set()
            await asyncio.sleep(0.3)
            finished.append(req.name)
            return Result()

    await manager.new_controller("slow", Slow(), for_=CM)
    task = await run(manager)
    await kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "s", "namespace": namespace}})
    await asyncio.wait_for(started.wait(), 10)
    manager.stop()
    await asyncio.wait_for(task, 10)
    assert finished == ["s"]
    assert all(c.queue.shutting_down for c in manager.controllers)


async def test_metrics_are_served(metrics: Metrics) -> None:
    metrics.reconcile_total.labels(controller="x", result="success").inc()
    runner = await serve_metrics("127.0.0.1", 0, metrics.registry)
    try:
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession() as http, http.get(
                f"http://{host}:{port}/metrics") as resp:
            text = await resp.text()
        assert resp.status == 200
        assert 'controller_runtime_reconcile_total{controller="x",result="success"} 1.0' in text
        assert "workqueue_depth" in text and "leader_election_master_status" in text
    finally:
        await runner.cleanup()
