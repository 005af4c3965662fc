"""``shipyard controllers``: Cluster API's controllers against any Kubernetes API server.

It runs the core controllers (Cluster, Machine, MachineSet, MachineDeployment,
MachineHealthCheck) and the providers chosen by `--infrastructure/--bootstrap/--control-plane`
(default: those `shipyard init` recorded in the cluster, else `shipyard.cli.providers.DEFAULTS`)
on one runtime Manager, until SIGTERM or SIGINT, after creating any of their CRDs that are
missing. It talks to the API only
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

from shipyard.cli.apiserver import configure_logging
from shipyard.cli.management import default_data_dir

log = logging.getLogger("shipyard.controllers")


async def install_crds(client: Any, chosen: list[Any]) -> None:
    """Create the chosen providers' CRDs, unless they exist, and wait until they are served.

    Cluster API's CRDs ask for webhook conversion. Shipyard's server converts in process. A
    real kube-apiserver needs a reachable webhook with a real ``caBundle``: where `shipyard
    init` deployed one (`shipyard.cli.deploy`), a missing multi-version CRD is created pointing
    at it; elsewhere with conversion ``None`` (v1beta1 then served by relabelling only).
    Existing CRDs are left as they are.
    """
    from shipyard.cli import deploy
    from shipyard.cli.init import _ensure, _wait_served, is_shipyard
    from shipyard.cli.webhook import converters

    in_process_conversion = await is_shipyard(client)
    ca_bundle = None if in_process_conversion else await deploy.served_ca_bundle(client)
    if not in_process_conversion and ca_bundle is None:
        log.warning("installing Cluster API CRDs without a conversion webhook: v1beta1 is "
                    "served by relabelling only; run `shipyard init` (or `shipyard "
                    "conversion-webhook` and point the CRDs at it) for real conversion")
    groups = list(converters())
    for provider in chosen:
        manifests = provider.manifests()
        for manifest in manifests:
            if not in_process_conversion and (manifest["spec"].get("conversion") or {}).get(
                    "strategy") == "Webhook":
                manifest["spec"]["conversion"] = {"strategy": "None"}
            if ca_bundle is not None and deploy.wants_webhook(manifest, groups):
                manifest["spec"]["conversion"] = deploy.conversion(ca_bundle)
            await _ensure(client, manifest)
        await _wait_served(client, manifests)


async def choose(client: Any, infrastructure: list[str] | None, bootstrap: list[str] | None,
                 control_plane: list[str] | None) -> list[Any]:
    """The providers named on the command line; for a type not named, those `shipyard init`
    recorded in the cluster; with no record at all, the defaults."""
    from shipyard.cli import providers as registry
    from shipyard.cli.init import installed

    records = await installed(client)

    def recorded(type_: str) -> list[str] | None:
        names = [str(r["providerName"]) for r in records if r.get("type") == type_]
        return names if records else None

    return registry.select(
        infrastructure if infrastructure is not None else recorded(registry.INFRASTRUCTURE),
        bootstrap if bootstrap is not None else recorded(registry.BOOTSTRAP),
        control_plane if control_plane is not None else recorded(registry.CONTROL_PLANE))


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
    infrastructure: list[str] | None = None,
    bootstrap: list[str] | None = None,
    control_plane: list[str] | None = None,
    master: str | None = None,
) -> None:
    from shipyard.cli.providers import RunContext
    from shipyard.client import Client
    from shipyard.runtime import LeaderElectionConfig, Manager, serve_metrics

    client = Client.from_kubeconfig(kubeconfig)
    if master:
        client.config.server = master.rstrip("/")
    ctx = RunContext(boot_delay=boot_delay, workload_dir=workload_dir)
    metrics_runner = None
    try:
        chosen = await choose(client, infrastructure, bootstrap, control_plane)
        await install_crds(client, chosen)
        election = (
            LeaderElectionConfig(name="controller-leader-election-capi",
                                 namespace=leader_election_namespace,
                                 # client-go's proportions: renew at 2/3, retry at 2/15.
                                 lease_duration=lease_duration,
                                 renew_deadline=lease_duration * 2 / 3,
                                 retry_period=lease_duration * 2 / 15)
            if leader_elect else None
        )
        mgr = Manager(client, namespace=namespace, leader_election=election)
        for provider in chosen:
            await provider.start(mgr, ctx)
        if metrics_address != "0":
            host, _, port = metrics_address.rpartition(":")
            metrics_runner = await serve_metrics(host or "127.0.0.1", int(port))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, mgr.stop)
        log.info("controllers running against %s: %s", kubeconfig,
                 ", ".join(p.key for p in chosen))
        await mgr.run()
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        while ctx.closers:
            await ctx.closers.pop()()
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
@click.option("-i", "--infrastructure", multiple=True,
              help="Infrastructure providers to run (default: those `shipyard init` recorded).")
@click.option("-b", "--bootstrap", multiple=True, help="Bootstrap providers to run.")
@click.option("-c", "--control-plane", multiple=True, help="Control-plane providers to run.")
@click.option("--master", default=None,
              help="The API server's URL, overriding the kubeconfig's (kube-controller-"
                   "manager's --master): a control-plane machine's own API server.")
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
    infrastructure: tuple[str, ...],
    bootstrap: tuple[str, ...],
    control_plane: tuple[str, ...],
    master: str | None,
    log_level: str,
) -> None:
    """Run Cluster API's controllers and the installed providers against a management cluster."""
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
        infrastructure=_names(infrastructure), bootstrap=_names(bootstrap),
        control_plane=_names(control_plane), master=master,
    ))


def _names(values: tuple[str, ...]) -> list[str] | None:
    from shipyard.cli.providers import split

    return split(values) if values else None
