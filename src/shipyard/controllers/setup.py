"""Where the core controllers are registered on a `Manager`.

Each controller module exposes `async def setup(mgr: Manager, options: Options) -> None` and is
listed in `SETUPS`; `build(client)` makes a Manager and runs every setup, so the CLI and tests
start all core controllers the same way. Whoever runs the Manager calls `options.aclose()`
after `run()` returns, so clients the controllers opened (workload clusters) are closed. Add new
controllers by appending to `SETUPS` (module path strings, imported lazily so one broken module
does not hide the others' errors).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.client.interfaces import ReaderWriter
from shipyard.runtime import LeaderElectionConfig, Manager, Metrics


@dataclass
class Options:
    """Knobs shared by the core controllers (upstream's manager flags)."""

    concurrency: dict[str, int] = field(default_factory=dict)
    """Per-controller max concurrent reconciles by controller name (default 1... 10)."""
    remote_client_factory: Callable[[str], Any] | None = None
    """Builds a client for a workload cluster from kubeconfig text (default: shipyard.client)."""
    sync_period: float = 600.0
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """Registered by setups (e.g. workload-cluster clients); run by `aclose()`."""

    async def aclose(self) -> None:
        """Release what the controllers hold; call after `Manager.run()` returns."""
        while self.closers:
            await self.closers.pop()()


Setup = Callable[[Manager, Options], Awaitable[None]]

SETUPS: list[str] = [
    "shipyard.controllers.cluster:setup",
    "shipyard.controllers.machine:setup",
    "shipyard.controllers.machineset:setup",
    "shipyard.controllers.machinedeployment:setup",
    "shipyard.controllers.machinehealthcheck:setup",
]
"""`module:function` of every core controller's setup, in registration order."""


def _load(spec: str) -> Setup:
    module, _, attr = spec.partition(":")
    fn: Setup = getattr(importlib.import_module(module), attr)
    return fn


async def build(client: ReaderWriter, *, namespace: str | None = None,
                options: Options | None = None,
                leader_election: LeaderElectionConfig | None = None,
                metrics: Metrics | None = None, setups: Sequence[str] | None = None,
                **manager_kwargs: Any) -> Manager:
    """A Manager with the core controllers (all of `SETUPS`, or the given subset)."""
    mgr = Manager(client, namespace=namespace, leader_election=leader_election, metrics=metrics,
                  **manager_kwargs)
    opts = options or Options()
    for spec in setups if setups is not None else SETUPS:
        await _load(spec)(mgr, opts)
    return mgr
