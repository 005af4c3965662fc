from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shipyard.client import Client, FakeClient, ReaderWriter
from tests.kube import Server


@pytest.fixture
async def kube(server: Server) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(server.kubeconfig) as client:
        yield client


@pytest.fixture(params=["real", "fake"])
async def rw(request: pytest.FixtureRequest, server: Server) -> AsyncIterator[ReaderWriter]:
    """The same protocol twice: the HTTP client on the live server, and the in-memory fake."""
    if request.param == "fake":
        yield FakeClient()
        return
    async with Client.from_kubeconfig(server.kubeconfig) as client:
        yield client
