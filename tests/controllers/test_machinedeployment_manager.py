"""The MachineSet and MachineDeployment controllers registered through `setup.build` on a
Manager over the FakeClient: watches wake the right owners, a template change rolls out with
maxSurge=1/maxUnavailable=0 and available machines never drop below replicas."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from shipyard.client import FakeClient
from shipyard.controllers import setup
from shipyard.runtime import Manager, Metrics
from tests.controllers.capi_fakes import NS, V1B2, capi_fake, is_marked, machines, mark
from tests.controllers.test_machinedeployment import deployment


@contextlib.asynccontextmanager
async def running(fake: FakeClient) -> AsyncIterator[Manager]:
    opts = setup.Options()
    mgr = await setup.build(fake, options=opts, metrics=Metrics(CollectorRegistry()), setups=[
        "shipyard.controllers.machineset:setup", "shipyard.controllers.machinedeployment:setup"])
    task = asyncio.create_task(mgr.run())
    try:
        yield mgr
    finally:
        mgr.stop()
        await task
        await opts.aclose()


async def available_and_mark(fake: FakeClient) -> int:
    """Play the Machine controller: every new machine becomes available; count them."""
    count = 0
    for m in await machines(fake):
        if not is_marked(m):
            await mark(fake, m)
        count += 1 if is_marked(m) else 0
    return count


@pytest.mark.timeout(60)
async def test_rollout_through_the_manager() -> None:
    fake = await capi_fake()
    await fake.create(deployment(3, 1, 0))
    async with running(fake):
        async def settle(version: str) -> None:
            for _ in range(2000):
                available = await available_and_mark(fake)
                found = await machines(fake)
                md = await fake.get(V1B2, "MachineDeployment", "md", NS)
                if version != "v1.33.0":
                    assert available >= 3, "availability dropped below replicas"
                status = md.get("status") or {}
                if (len(found) == 3 and all(m["spec"]["version"] == version for m in found)
                        and status.get("availableReplicas") == 3
                        and status.get("upToDateReplicas") == 3
                        and len((await fake.list(V1B2, "MachineSet", NS))["items"]) == 1):
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"rollout to {version} did not settle")

        await settle("v1.33.0")
        await fake.patch(V1B2, "MachineDeployment", "md",
                         {"spec": {"template": {"spec": {"version": "v1.34.0"}}}}, NS)
        await settle("v1.34.0")
        md = await fake.get(V1B2, "MachineDeployment", "md", NS)
        assert md["status"]["phase"] == "Running"
        assert md["metadata"]["annotations"]["machinedeployment.clusters.x-k8s.io/revision"] == (
            "2")
