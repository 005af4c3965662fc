"""``shipyard controllers``: Cluster API's controllers against any Kubernetes API server.

It installs the CRDs it serves (Cluster API's core kinds, the in-memory infrastructure provider
and its bootstrap kind) when they are missing, then runs the core controllers (Cluster, Machine,
MachineSet, MachineDeployment, MachineHealthCheck), the in-memory provider and the in-memory
bootstrap provider on one runtime Manager, until SIGTERM or SIGINT. It talks to the API only
through a kubeconfig, so the same command drives Shipyard's embedded management plane (the
default) or a real cluster.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any

import click
import yaml

from shipyard.cli.apiserver import configure_logging
from shipyard.cli.management import default_data_dir

log = logging.getLogger("shipyard.controllers")


async def install_crds(client: Any) -> None:
    """Create the CRDs the controllers serve, unless they exist.

    Cluster API's CRDs ask for webhook conversion. Shipyard's server converts in process; a
    real kube-apiserver needs a reachable webhook with a real ``caBundle`` (or it never marks the
    CRD Established), so there they are installed with conversion ``None`` unless they exist
    already, wired by `shipyard conversion-webhook` or a deployment of it.
    """
    from shipyard.api import crdgen
    from shipyard.apimachinery.errors import AlreadyExists
    from shipyard.bootstrap.inmemory import types as bootstrap_types
    from shipyard.providers.inmemory import setup as inmemory

    version = await client.get_json("/version")
    in_process_conversion = "shipyard" in str(version.get("gitVersion", ""))
    manifests = [yaml.safe_load(p.read_text()) for p in sorted(crdgen.CRDS_DIR.glob("*.yaml"))]
    if not in_process_conversion:
        for manifest in manifests:
            manifest["spec"]["conversion"] = {"strategy": "None"}
        log.warning("installing Cluster API CRDs without a conversion webhook: v1beta1 is "
                    "served by relabelling only; run `shipyard conversion-webhook` and point "
                    "the CRDs at it for real conversion")
    for manifest in [*manifests, *bootstrap_types.crd_manifests()]:
        try:
            await client.create(manifest)
        except AlreadyExists:
            pass
    await inmemory.install_crds(client)


async def run(
    kubeconfig: Path,
    *,
    namespace: str | None,
    leader_elect: bool,
    leader_election_namespace: str,
    metrics_address: str,
    boot_delay: float,
    workload_dir: Path | None,
    lease_duration: float = 15.0,
) -> None:
    from shipyard.bootstrap.inmemory import controller as bootstrap
    from shipyard.client import Client
    from shipyard.controllers import setup as core
    from shipyard.providers.inmemory import setup as inmemory
    from shipyard.runtime import LeaderElectionConfig, serve_metrics

    client = Client.from_kubeconfig(kubeconfig)
    options = core.Options()
    workloads = None
    metrics_runner = None
    try:
        await install_crds(client)
        election = (
            LeaderElectionConfig(name="controller-leader-election-capi",
                                 namespace=leader_election_namespace,
                                 # client-go's proportions: renew at 2/3, retry at 2/15.
                                 lease_duration=lease_duration,
                                 renew_deadline=lease_duration * 2 / 3,
                                 retry_period=lease_duration * 2 / 15)
            if leader_elect else None
        )
        mgr = await core.build(client, namespace=namespace, options=options,
                               leader_election=election)
        workloads = await inmemory.setup(mgr, inmemory.InMemoryOptions(
            boot_delay=boot_delay, data_dir=workload_dir))
        await bootstrap.setup(mgr)
        if metrics_address != "0":
            host, _, port = metrics_address.rpartition(":")
            metrics_runner = await serve_metrics(host or "127.0.0.1", int(port))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, mgr.stop)
        log.info("controllers running against %s", kubeconfig)
        await mgr.run()
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await options.aclose()
        if workloads is not None:
            await workloads.aclose()
        await client.close()


@click.command("controllers")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
              help="The management cluster. Default: $KUBECONFIG, else the embedded "
                   "management plane's kubeconfig.")
@click.option("--namespace", help="Reconcile only this namespace (default: all).")
@click.option("--leader-elect/--no-leader-elect", default=False, show_default=True,
              help="Run as one of several replicas, one active, through a Lease.")
@click.option("--leader-election-namespace", default="kube-system", show_default=True)
@click.option("--leader-elect-lease-duration", type=click.FloatRange(min=1.0), default=15.0,
              show_default=True, help="Seconds a standby waits before taking an unrenewed "
              "Lease; the renew deadline and retry period follow client-go's proportions.")
@click.option("--metrics-bind-address", default="127.0.0.1:8080", show_default=True,
              help="Where /metrics is served; 0 turns it off.")
@click.option("--boot-delay", type=float, default=0.0, show_default=True,
              help="Seconds an in-memory machine takes to boot.")
@click.option("--workload-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the in-memory provider keeps its simulated workload clusters.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
def controllers(
    kubeconfig: Path | None,
    namespace: str | None,
    leader_elect: bool,
    leader_election_namespace: str,
    leader_elect_lease_duration: float,
    metrics_bind_address: str,
    boot_delay: float,
    workload_dir: Path | None,
    log_level: str,
) -> None:
    """Run Cluster API's controllers and the in-memory provider against a management cluster."""
    configure_logging(log_level)
    if kubeconfig is None:
        env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
        kubeconfig = Path(env) if env else default_data_dir() / "kubeconfig"
    if not kubeconfig.exists():
        raise click.ClickException(
            f"no kubeconfig at {kubeconfig}: start the management plane with "
            "`shipyard management up`, or pass --kubeconfig"
        )
    asyncio.run(run(
        kubeconfig, namespace=namespace, leader_elect=leader_elect,
        leader_election_namespace=leader_election_namespace,
        metrics_address=metrics_bind_address, boot_delay=boot_delay, workload_dir=workload_dir,
        lease_duration=leader_elect_lease_duration,
    ))
