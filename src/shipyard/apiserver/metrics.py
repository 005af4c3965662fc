"""Prometheus metrics under kube-apiserver's names, so existing dashboards read them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request_total", "Counter of apiserver requests broken out by verb and "
            "HTTP response code.", ["verb", "code"], registry=self.registry,
        )
        self.latency = Histogram(
            "apiserver_request_duration_seconds", "Response latency distribution in seconds "
            "for each verb.", ["verb"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0),
        )

    def observe(self, verb: str, code: int, seconds: float) -> None:
        self.requests.labels(verb, str(code)).inc()
        self.latency.labels(verb).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
