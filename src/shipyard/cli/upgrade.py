"""``shipyard upgrade plan|apply``: clusterctl's upgrade, for the providers `shipyard init`
recorded (see `shipyard.cli.lifecycle`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from shipyard.cli.connect import context_option, kubeconfig_option, run

if TYPE_CHECKING:
    from shipyard.client import Client


@click.group("upgrade")
def upgrade() -> None:
    """Upgrade the installed providers to this version of Shipyard."""


def _go(kubeconfig: Path | None, context: str | None, apply: bool) -> list[dict[str, Any]]:
    from shipyard.cli import lifecycle

    async def go(client: Client) -> tuple[list[str], list[dict[str, Any]]]:
        records = await lifecycle.records_of(client)
        lines = await lifecycle.upgrade(client, records, apply=apply)
        return lines, records

    lines, records = run(kubeconfig, context, go)
    click.echo(f"{'NAME':<32} {'NAMESPACE':<36} {'CURRENT':<10} NEXT")
    for line in lines:
        click.echo(line)
    return records


@upgrade.command("plan")
@kubeconfig_option
@context_option
def plan(kubeconfig: Path | None, kubeconfig_context: str | None) -> None:
    """Show what `upgrade apply` would change."""
    _go(kubeconfig, kubeconfig_context, apply=False)


@upgrade.command("apply")
@kubeconfig_option
@context_option
def apply(kubeconfig: Path | None, kubeconfig_context: str | None) -> None:
    """Replace the providers' CRDs with this version's, record it, restart the controllers."""
    from shipyard.cli import lifecycle

    records = _go(kubeconfig, kubeconfig_context, apply=True)
    message = lifecycle.restart_embedded_controllers(kubeconfig, records, force=True)
    if message:
        click.echo(message)
