"""Pin the public surface of shipyard.client and shipyard.runtime (httpx's habit)."""

from __future__ import annotations

import shipyard.client
import shipyard.runtime


def test_client_exports() -> None:
    public = {n for n in dir(shipyard.client) if not n.startswith("_")}
    modules = {"fake", "interfaces", "kubeconfig", "mapping", "rest"}
    assert public - modules == set(shipyard.client.__all__)


def test_runtime_exports() -> None:
    public = {n for n in dir(shipyard.runtime) if not n.startswith("_")}
    modules = {"cache", "clock", "controller", "handlers", "informers", "leaderelection",
               "logs", "manager", "metrics", "queueing", "ratelimiting", "reconcile"}
    assert public - modules == set(shipyard.runtime.__all__)
