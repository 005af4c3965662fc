"""``shipyard get kubeconfig NAME`` and ``shipyard delete cluster NAME``: the day-2 verbs
people reach for after ``describe``.

- ``get kubeconfig``: prints the value of the ``<NAME>-kubeconfig`` Secret the control plane
  writes (clusterctl's ``get kubeconfig``); a Cluster that does not exist, or has no such
  Secret yet, is a clear error.
- ``delete cluster``: deletes the Cluster with ``propagationPolicy`` Foreground (kubectl's
  ``--cascade=foreground``; ``--cascade=background`` for kubectl's default). The Cluster
  controller tears down its control plane, MachineDeployments and infrastructure. With
  ``--wait`` the command returns only when the Cluster and every object labelled
  ``cluster.x-k8s.io/cluster-name=<NAME>`` (of the Cluster API families' kinds and Secrets) are
  gone, printing what is left whenever that changes; ``--timeout`` bounds the wait (exit
  status 1, naming what is left).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from shipyard.cli.connect import (
    context_option,
    default_kubeconfig,
    kubeconfig_option,
    namespace_option,
    run,
)

if TYPE_CHECKING:
    from shipyard.client import Client

V2 = "cluster.x-k8s.io/v1beta2"
CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name"


async def _cluster_exists(client: Client, name: str, ns: str) -> None:
    from shipyard.apimachinery.errors import NotFound

    try:
        await client.get(V2, "Cluster", name, ns)
    except NotFound as e:
        raise click.ClickException(f'Cluster "{name}" not found in namespace "{ns}"') from e


@click.group("get")
def get() -> None:
    """Get info from a management or a workload cluster."""


@get.command("kubeconfig")
@click.argument("name")
@kubeconfig_option
@context_option
@namespace_option
def get_kubeconfig(name: str, kubeconfig: Path | None, kubeconfig_context: str | None,
                   namespace: str | None) -> None:
    """Print the kubeconfig of workload cluster NAME."""
    from shipyard.apimachinery.errors import NotFound

    async def main(client: Client) -> str:
        ns = namespace or client.namespace
        await _cluster_exists(client, name, ns)
        secret_name = f"{name}-kubeconfig"
        try:
            secret = await client.get("v1", "Secret", secret_name, ns)
        except NotFound as e:
            raise click.ClickException(
                f'Secret "{ns}/{secret_name}" not found: the kubeconfig of Cluster "{name}" '
                "is written once its control plane is initialized") from e
        value = (secret.get("data") or {}).get("value")
        if not value:
            raise click.ClickException(f'Secret "{ns}/{secret_name}" has no "value" key')
        return base64.b64decode(value).decode()

    text = run(kubeconfig, kubeconfig_context, main)
    click.echo(text, nl=not text.endswith("\n"))


@click.group("delete", invoke_without_command=True)
@click.option("--all", "everything", is_flag=True, help="Delete every installed provider.")
@click.option("--core", is_flag=True, help="Delete the core provider (cluster-api).")
@click.option("-i", "--infrastructure", multiple=True, help="Infrastructure providers.")
@click.option("-b", "--bootstrap", multiple=True, help="Bootstrap providers.")
@click.option("-c", "--control-plane", multiple=True, help="Control-plane providers.")
@click.option("--include-crd", is_flag=True,
              help="Also delete the providers' CRDs, and with them every object of their kinds.")
@click.option("--include-namespace", is_flag=True, help="Also delete the providers' namespaces.")
@kubeconfig_option
@context_option
@click.pass_context
def delete(ctx: click.Context, everything: bool, core: bool, infrastructure: tuple[str, ...],
           bootstrap: tuple[str, ...], control_plane: tuple[str, ...], include_crd: bool,
           include_namespace: bool, kubeconfig: Path | None,
           kubeconfig_context: str | None) -> None:
    """Delete providers installed by `shipyard init` (clusterctl delete), or, with the
    `cluster` subcommand, a workload cluster."""
    if ctx.invoked_subcommand is not None:
        return
    from shipyard.cli import lifecycle
    from shipyard.cli.providers import split

    if not (everything or core or infrastructure or bootstrap or control_plane):
        raise click.UsageError("say which providers to delete: --all, --core, "
                               "--infrastructure, --bootstrap or --control-plane")

    async def go(client: Client) -> tuple[list[str], list[dict[str, Any]]]:
        records = await lifecycle.records_of(client)
        chosen = lifecycle.selected(
            records, everything=everything, core=core, infrastructure=split(infrastructure),
            bootstrap=split(bootstrap), control_plane=split(control_plane))
        done = await lifecycle.delete_providers(client, chosen, include_crd=include_crd,
                                                include_namespace=include_namespace)
        left = [r for r in records if r not in chosen]
        return done, left

    done, left = run(kubeconfig, kubeconfig_context, go)
    for line in done:
        click.echo(line)
    message = lifecycle.restart_embedded_controllers(kubeconfig, left)
    if message:
        click.echo(message)


async def _leftovers(client: Client, name: str, ns: str) -> list[str]:
    """``Kind/name`` of the Cluster and everything still labelled with it."""
    from shipyard.apimachinery.errors import NotFound
    from shipyard.clusterctl.objectgraph import discover_types

    left: list[str] = []
    try:
        await client.get(V2, "Cluster", name, ns)
        left.append(f"Cluster/{name}")
    except NotFound:
        pass
    for info in await discover_types(client):
        if not info.namespaced:
            continue
        try:
            found = await client.list(*info.gvk, ns,
                                      label_selector=f"{CLUSTER_NAME_LABEL}={name}")
        except NotFound:
            continue
        left += [f"{info.gvk.kind}/{o['metadata']['name']}" for o in found["items"]
                 if info.gvk.kind != "Cluster"]
    return sorted(left)


def _summary(left: list[str]) -> str:
    counts = Counter(item.partition("/")[0] for item in left)
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


@delete.command("cluster")
@click.argument("name")
@kubeconfig_option
@context_option
@namespace_option
@click.option("--wait", is_flag=True,
              help="Wait until the Cluster and every object labelled with it are gone.")
@click.option("--timeout", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds --wait waits before giving up.")
@click.option("--cascade", type=click.Choice(["foreground", "background"]),
              default="foreground", show_default=True,
              help="Deletion propagation, as kubectl's --cascade.")
def delete_cluster(name: str, kubeconfig: Path | None, kubeconfig_context: str | None,
                   namespace: str | None, wait: bool, timeout: float,
                   cascade: Literal["foreground", "background"]) -> None:
    """Delete workload cluster NAME and, through its controllers, everything it owns."""
    from shipyard.apimachinery.errors import NotFound

    async def main(client: Client) -> None:
        ns = namespace or client.namespace
        from shipyard.cli import create

        kept = create.interrupted_deletion(name)
        if kept is not None:
            # A self-managed deletion stopped after moving the objects into a plane of its
            # own: the cluster's own API may be gone already, so go on from that plane.
            await create.resume_deletion(name, ns, kept, click.echo, timeout)
            return
        try:
            self_managed = await create.is_self_managed(client, name, ns)
        except NotFound:
            self_managed = False
        if self_managed:
            # Deleting it in place would have its controllers delete the machines they run
            # on: move it to a throw-away management plane and delete it from there.
            path = kubeconfig or default_kubeconfig()
            await create.destroy_self_managed(name, ns, path, click.echo, timeout)
            return
        try:
            await client.delete(V2, "Cluster", name, ns,
                                propagation_policy="Foreground" if cascade == "foreground"
                                else "Background")
        except NotFound as e:
            raise click.ClickException(
                f'Cluster "{name}" not found in namespace "{ns}"') from e
        click.echo(f'Cluster "{ns}/{name}" deleting')
        if not wait:
            return
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            left = await _leftovers(client, name, ns)
            if not left:
                click.echo(f'Cluster "{ns}/{name}" deleted')
                return
            summary = _summary(left)
            if summary != last:
                click.echo(f"waiting for {summary} to be deleted")
                last = summary
            if time.monotonic() >= deadline:
                raise click.ClickException(
                    f"timed out after {timeout:g}s; still present: {', '.join(left)}")
            await asyncio.sleep(0.5)

    run(kubeconfig, kubeconfig_context, main)
