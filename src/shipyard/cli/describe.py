"""``shipyard describe cluster NAME``: clusterctl's at-a-glance tree of a Cluster.

Flags as clusterctl's (v1beta2 output): ``--show-conditions all|Kind|Kind/name[+],...``,
``--show-machinesets``, ``--show-templates``, ``--echo``, ``--grouping/--grouping=false``
(also ``--no-grouping``), ``--color/--no-color`` (default: colour only on a terminal and when
``NO_COLOR`` is unset). The tree itself is `shipyard.describe`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from shipyard.cli.connect import context_option, kubeconfig_option, namespace_option, run

if TYPE_CHECKING:
    from shipyard.client import Client


@click.group("describe")
def describe() -> None:
    """Describe management cluster objects."""


@describe.command("cluster")
@click.argument("name")
@kubeconfig_option
@context_option
@namespace_option
@click.option("--show-conditions", default="",
              help="Comma separated kinds or kind/name whose every condition is shown ('all' "
                   "for everything; a '+' suffix shows only conditions not in their normal "
                   "state).")
@click.option("--show-machinesets", is_flag=True, help="Show MachineSet objects.")
@click.option("--show-templates", is_flag=True,
              help="Show the infrastructure and bootstrap config templates.")
@click.option("--echo", is_flag=True,
              help="Show MachineInfrastructure and BootstrapConfig even when they are ready or "
                   "only repeat their Machine's state.")
@click.option("--grouping", type=click.BOOL, default=True, show_default=True,
              is_flag=False, flag_value=True,
              help="Group machines whose Available, Ready and UpToDate conditions agree.")
@click.option("--no-grouping", "no_grouping", is_flag=True, hidden=True)
@click.option("--color/--no-color", "-c", default=None,
              help="Colour the output (default: only on a terminal, unless NO_COLOR is set).")
def describe_cluster(name: str, kubeconfig: Path | None, kubeconfig_context: str | None,
                     namespace: str | None, show_conditions: str, show_machinesets: bool,
                     show_templates: bool, echo: bool, grouping: bool, no_grouping: bool,
                     color: bool | None) -> None:
    """Provide an "at a glance" view of a Cluster API cluster, to see quickly whether there
    are problems and where."""
    from shipyard.apimachinery.errors import NotFound
    from shipyard.describe import TreeOptions, discover, render

    options = TreeOptions(show_conditions=show_conditions, show_machine_sets=show_machinesets,
                          show_templates=show_templates, echo=echo,
                          grouping=grouping and not no_grouping)
    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")

    async def main(client: Client) -> str:
        ns = namespace or client.namespace
        try:
            tree = await discover(client, ns, name, options)
        except NotFound as e:
            raise click.ClickException(
                f'Cluster "{name}" not found in namespace "{ns}"') from e
        return render(tree, color=color)

    click.echo(run(kubeconfig, kubeconfig_context, main), nl=False, color=color)
