"""Prometheus metrics under controller-runtime's and client-go's names, so the dashboards and
alerts written for Go controllers work on ours unchanged.

`Metrics` owns its collectors on one `CollectorRegistry` (by default the module's `REGISTRY`,
not prometheus_client's global one, so importing us never pollutes an embedding process). Serve
it with `serve_metrics()` or render it with `prometheus_client.generate_latest(registry)`.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

REGISTRY = CollectorRegistry()

# controller-runtime's reconcile_time buckets and client-go's workqueue latency buckets.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45,
                     0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0,
                     4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60)
QUEUE_BUCKETS = tuple(1e-8 * 10**i for i in range(10))


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        r = registry
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller", ["controller", "result"],
            registry=r)
        self.reconcile_errors = Counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller", ["controller"], registry=r)
        self.terminal_errors = Counter(
            "controller_runtime_terminal_reconcile_errors_total",
            "Total number of terminal reconciliation errors per controller", ["controller"],
            registry=r)
        self.reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller", ["controller"],
            buckets=RECONCILE_BUCKETS, registry=r)
        self.max_concurrent = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller", ["controller"],
            registry=r)
        self.active_workers = Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller", ["controller"], registry=r)
        self.depth = Gauge("workqueue_depth", "Current depth of workqueue",
                           ["controller", "name"], registry=r)
        self.adds = Counter("workqueue_adds_total", "Total number of adds handled by workqueue",
                            ["controller", "name"], registry=r)
        self.retries = Counter("workqueue_retries_total",
                               "Total number of retries handled by workqueue",
                               ["controller", "name"], registry=r)
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            ["controller", "name"], buckets=QUEUE_BUCKETS, registry=r)
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            ["controller", "name"], buckets=QUEUE_BUCKETS, registry=r)
        self.leader = Gauge("leader_election_master_status",
                            "Gauge of if the reporting system is master of the relevant lease, "
                            "0 indicates backup, 1 indicates master. 'name' is the string used "
                            "to identify the lease.", ["name"], registry=r)


_default: Metrics | None = None


def default_metrics() -> Metrics:
    """The process-wide `Metrics` on `REGISTRY` (collectors may be registered only once)."""
    global _default
    if _default is None:
        _default = Metrics(REGISTRY)
    return _default


def metrics_app(registry: CollectorRegistry = REGISTRY) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    return app


async def serve_metrics(host: str = "127.0.0.1", port: int = 8080,
                        registry: CollectorRegistry = REGISTRY) -> web.AppRunner:
    """Serve /metrics until the returned runner is `cleanup()`-ed; port 0 picks a free one."""
    runner = web.AppRunner(metrics_app(registry), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
