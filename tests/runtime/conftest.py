from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import CollectorRegistry

from shipyard.client import Client
from shipyard.runtime import Metrics
from tests.kube import Server


@pytest.fixture
async def kube(server: Server) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(server.kubeconfig) as client:
        yield client


@pytest.fixture
def metrics() -> Metrics:
    """A private registry per test, so counts start at zero."""
    return Metrics(CollectorRegistry())


async def eventually(predicate: Callable[[], object], timeout: float = 10.0,
                     what: str = "condition") -> None:
    """Poll `predicate` every 10 ms; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
