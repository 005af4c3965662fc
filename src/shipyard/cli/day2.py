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
from typing import TYPE_CHECKING, Literal

import click

from shipyard.cli.connect import context_option, kubeconfig_option, namespace_option, run

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


@click.group("delete")
def delete() -> None:
    """Delete workload clusters."""


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
