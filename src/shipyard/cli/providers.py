"""The providers Shipyard ships, by clusterctl's provider types and names.

Why: `shipyard init` installs providers by name (`--infrastructure in-memory --bootstrap
kubeadm`), `shipyard controllers` runs the ones installed, and both must agree on what a name
means: its CRDs, the namespace clusterctl would install it in, and how its controllers are
registered on a Manager. One table, imported lazily, so a provider's import cost (or a broken
module) only touches commands that select it.

Contract:
- `PROVIDERS` maps (type, name) to a `Provider`; types are clusterctl's (`CoreProvider`,
  `BootstrapProvider`, `ControlPlaneProvider`, `InfrastructureProvider`), names clusterctl's
  where upstream has the provider (`cluster-api`, `kubeadm`, `in-memory`, `docker`);
  `process` is Shipyard's own (machines as local process trees).
- `Provider.manifests()` returns its CRD manifests; `await Provider.start(mgr, ctx)` registers
  its controllers and returns what must be closed after the manager stops (or None).
- `select(...)` turns command-line lists into providers, with a clear error for unknown names;
  the core provider is always included.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORE = "CoreProvider"
BOOTSTRAP = "BootstrapProvider"
CONTROL_PLANE = "ControlPlaneProvider"
INFRASTRUCTURE = "InfrastructureProvider"
TYPE_FLAGS = {BOOTSTRAP: "bootstrap", CONTROL_PLANE: "control-plane",
              INFRASTRUCTURE: "infrastructure"}


@dataclass
class RunContext:
    """What `shipyard controllers` hands every provider it starts."""

    boot_delay: float = 0.0
    workload_dir: Path | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def _attr(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Provider:
    type: str
    name: str
    namespace: str
    """Where clusterctl installs it (its Provider record lives there)."""
    crds: str
    """`module:function` returning the CRD manifests."""
    starter: str
    """`module:function` — `async (mgr, ctx) -> None` registering the controllers."""

    @property
    def key(self) -> str:
        """clusterctl's provider id, e.g. `infrastructure-in-memory`."""
        prefix = {CORE: "", BOOTSTRAP: "bootstrap-", CONTROL_PLANE: "control-plane-",
                  INFRASTRUCTURE: "infrastructure-"}[self.type]
        return f"{prefix}{self.name}"

    def manifests(self) -> list[dict[str, Any]]:
        return list(_attr(self.crds)())

    async def start(self, mgr: Any, ctx: RunContext) -> None:
        await _attr(self.starter)(mgr, ctx)


# ----------------------------------------------------------------------------- starters

async def start_core(mgr: Any, ctx: RunContext) -> None:
    from shipyard.controllers import setup as core

    options = core.Options()
    for spec in core.SETUPS:
        await _attr(spec)(mgr, options)
    ctx.closers.append(options.aclose)


async def start_inmemory(mgr: Any, ctx: RunContext) -> None:
    from shipyard.providers.inmemory import setup as inmemory

    workloads = await inmemory.setup(mgr, inmemory.InMemoryOptions(
        boot_delay=ctx.boot_delay, data_dir=ctx.workload_dir))
    ctx.closers.append(workloads.aclose)


async def start_inmemory_bootstrap(mgr: Any, ctx: RunContext) -> None:
    from shipyard.bootstrap.inmemory import controller

    await controller.setup(mgr)


async def start_kubeadm_bootstrap(mgr: Any, ctx: RunContext) -> None:
    from shipyard.bootstrap.kubeadm import controller

    reconciler = await controller.setup(mgr)
    ctx.closers.append(reconciler.aclose)


async def start_process(mgr: Any, ctx: RunContext) -> None:
    from shipyard.providers.process import setup as process

    options = process.ProcessOptions()
    if ctx.workload_dir is not None:
        options.data_dir = ctx.workload_dir / "process"
    provider = await process.setup(mgr, options)
    ctx.closers.append(provider.aclose)


async def start_docker(mgr: Any, ctx: RunContext) -> None:
    from shipyard.providers.docker import setup as docker

    provider = await docker.setup(mgr, docker.DockerOptions())
    ctx.closers.append(provider.aclose)


async def start_kubeadm_control_plane(mgr: Any, ctx: RunContext) -> None:
    from shipyard.controlplane.kubeadm import controller

    reconciler = await controller.setup(mgr)
    ctx.closers.append(reconciler.aclose)


def core_crds() -> list[dict[str, Any]]:
    import yaml

    from shipyard.api import crdgen

    return [yaml.safe_load(p.read_text()) for p in sorted(crdgen.CRDS_DIR.glob("*.yaml"))]


def kubeadm_bootstrap_crds() -> list[dict[str, Any]]:
    from shipyard.bootstrap.kubeadm import types

    return types.crd_manifests(serve_v1beta1=True)


PROVIDERS: dict[tuple[str, str], Provider] = {
    (p.type, p.name): p for p in [
        Provider(CORE, "cluster-api", "capi-system", "shipyard.cli.providers:core_crds",
                 "shipyard.cli.providers:start_core"),
        Provider(INFRASTRUCTURE, "in-memory", "capim-system",
                 "shipyard.providers.inmemory.types:crd_manifests",
                 "shipyard.cli.providers:start_inmemory"),
        Provider(BOOTSTRAP, "in-memory", "capim-bootstrap-system",
                 "shipyard.bootstrap.inmemory.types:crd_manifests",
                 "shipyard.cli.providers:start_inmemory_bootstrap"),
        Provider(BOOTSTRAP, "kubeadm", "capi-kubeadm-bootstrap-system",
                 "shipyard.cli.providers:kubeadm_bootstrap_crds",
                 "shipyard.cli.providers:start_kubeadm_bootstrap"),
        Provider(CONTROL_PLANE, "kubeadm", "capi-kubeadm-control-plane-system",
                 "shipyard.controlplane.kubeadm.types:crd_manifests",
                 "shipyard.cli.providers:start_kubeadm_control_plane"),
        Provider(INFRASTRUCTURE, "process", "shipyard-process-system",
                 "shipyard.providers.process.types:crd_manifests",
                 "shipyard.cli.providers:start_process"),
        Provider(INFRASTRUCTURE, "docker", "capd-system",
                 "shipyard.providers.docker.types:crd_manifests",
                 "shipyard.cli.providers:start_docker"),
    ]
}
DEFAULTS = {INFRASTRUCTURE: ["in-memory"], BOOTSTRAP: ["in-memory", "kubeadm"],
            CONTROL_PLANE: ["kubeadm"]}
"""What `shipyard init` installs when no provider of a type is named."""


class UnknownProvider(ValueError):
    pass


def available(type_: str) -> list[str]:
    return sorted(name for (t, name) in PROVIDERS if t == type_)


def select(infrastructure: Sequence[str] | None = None, bootstrap: Sequence[str] | None = None,
           control_plane: Sequence[str] | None = None) -> list[Provider]:
    """The core provider plus the named ones (None: the type's defaults), in install order."""
    chosen = [PROVIDERS[(CORE, "cluster-api")]]
    for type_, names in ((BOOTSTRAP, bootstrap), (CONTROL_PLANE, control_plane),
                         (INFRASTRUCTURE, infrastructure)):
        for raw in DEFAULTS[type_] if names is None else names:
            name = raw.split(":", 1)[0]  # clusterctl accepts name:version; one version here
            provider = PROVIDERS.get((type_, name))
            if provider is None:
                raise UnknownProvider(
                    f"unknown {TYPE_FLAGS[type_]} provider {name!r}; available: "
                    f"{', '.join(available(type_)) or 'none'}")
            if provider not in chosen:
                chosen.append(provider)
    return chosen


def split(values: Sequence[str]) -> list[str]:
    """`--infrastructure a,b --infrastructure c` → [a, b, c] (clusterctl's flag form)."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


__all__ = ["BOOTSTRAP", "CONTROL_PLANE", "CORE", "DEFAULTS", "INFRASTRUCTURE", "PROVIDERS",
           "Provider", "RunContext", "UnknownProvider", "available", "select", "split"]
