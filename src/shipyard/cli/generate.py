"""``shipyard generate cluster``: clusterctl's `generate cluster`, rendering the cluster
templates Shipyard ships per infrastructure provider and flavor (`shipyard.templates`).

Flags and messages follow clusterctl: the manifest goes to stdout so it can be piped to
`kubectl apply -f -`; `--list-variables` prints the variables instead; a variable without a
value is refused with clusterctl's message and exit status 1, naming every missing one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from shipyard import templates
from shipyard.templates import envsubst

DEFAULT_INFRASTRUCTURE = "in-memory"


@click.group()
def generate() -> None:
    """Generate manifests (clusterctl generate)."""


def _current_namespace(kubeconfig: str | None, context: str | None) -> str:
    from shipyard.client import KubeconfigError, load_kubeconfig

    try:
        return load_kubeconfig(kubeconfig, context).namespace or "default"
    except (KubeconfigError, OSError, ValueError):
        return "default"


@generate.command("cluster")
@click.argument("name")
@click.option("-i", "--infrastructure", default=DEFAULT_INFRASTRUCTURE, show_default=True,
              help="The infrastructure provider whose templates to use.")
@click.option("-f", "--flavor", default="", help="The template variant (cluster-template-<f>).")
@click.option("--from", "from_", type=click.Path(dir_okay=False, path_type=Path),
              help="Render this template file instead of a provider's.")
@click.option("--kubernetes-version", default=None, help="Sets KUBERNETES_VERSION.")
@click.option("--control-plane-machine-count", type=click.IntRange(min=0), default=1,
              show_default=True, help="Sets CONTROL_PLANE_MACHINE_COUNT.")
@click.option("--worker-machine-count", type=click.IntRange(min=0), default=0,
              show_default=True, help="Sets WORKER_MACHINE_COUNT.")
@click.option("-n", "--target-namespace", default=None,
              help="Sets NAMESPACE (default: the kubeconfig context's namespace).")
@click.option("--kubeconfig", default=None, help="Where the default namespace is read from.")
@click.option("--kubeconfig-context", default=None)
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="The clusterctl config file with variable values.")
@click.option("--list-variables", is_flag=True, help="List the template's variables.")
def cluster(name: str, infrastructure: str, flavor: str, from_: Path | None,
            kubernetes_version: str | None, control_plane_machine_count: int,
            worker_machine_count: int, target_namespace: str | None, kubeconfig: str | None,
            kubeconfig_context: str | None, config_file: Path | None,
            list_variables: bool) -> None:
    """Render the cluster template for NAME to stdout."""
    try:
        text = from_.read_text() if from_ is not None else templates.template_text(
            infrastructure, flavor)
        config = templates.load_config(config_file)
    except (templates.TemplateNotFound, OSError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    flags = {"CLUSTER_NAME": name,
             "CONTROL_PLANE_MACHINE_COUNT": str(control_plane_machine_count),
             "WORKER_MACHINE_COUNT": str(worker_machine_count)}
    if kubernetes_version:
        flags["KUBERNETES_VERSION"] = kubernetes_version
    if target_namespace:
        flags["NAMESPACE"] = target_namespace
    try:
        if list_variables:
            click.echo(templates.list_variables(text, templates.Values(flags, os.environ,
                                                                       config)), nl=False)
            return
        if "NAMESPACE" not in flags:
            flags["NAMESPACE"] = _current_namespace(kubeconfig, kubeconfig_context)
        rendered = templates.render(text, templates.Values(flags, os.environ, config))
    except (envsubst.MissingVariables, envsubst.TemplateSyntaxError) as e:
        raise click.ClickException(str(e)) from e
    sys.stdout.write(rendered if rendered.endswith("\n") else rendered + "\n")
