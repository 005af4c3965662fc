"""``shipyard rollout restart|pause|resume <kind>/<name>``: clusterctl's ``alpha rollout``.

Contract, as upstream clusterctl for v1beta2 objects:
- kinds: ``machinedeployment`` (also ``machinedeployments``, ``md``) and
  ``kubeadmcontrolplane`` (``kcp``, only where its CRD is installed); anything else is
  "Invalid resource type".
- ``restart``: sets ``spec.rollout.after`` to now, so every Machine created before it is
  replaced (a new MachineSet for a MachineDeployment). Refused on a paused object, and while a
  ``spec.rollout.after`` in the future is pending.
- ``pause`` / ``resume``: a MachineDeployment's ``spec.paused`` (its controller keeps status
  but stops rolling out); a KubeadmControlPlane's ``cluster.x-k8s.io/paused`` annotation.
  Pausing what is paused, or resuming what is not, is an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from shipyard.cli.connect import context_option, kubeconfig_option, namespace_option, run

if TYPE_CHECKING:
    from shipyard.client import Client, Object

MD = ("cluster.x-k8s.io/v1beta2", "MachineDeployment")
KCP = ("controlplane.cluster.x-k8s.io/v1beta2", "KubeadmControlPlane")
PAUSED_ANNOTATION = "cluster.x-k8s.io/paused"
KINDS = {"machinedeployment": MD, "machinedeployments": MD, "md": MD,
         "kubeadmcontrolplane": KCP, "kubeadmcontrolplanes": KCP, "kcp": KCP}
VALID = "[machinedeployment kubeadmcontrolplane]"
Action = Literal["restart", "pause", "resume"]


def _parse(resource: str) -> tuple[str, str, str]:
    kind, slash, name = resource.partition("/")
    if not slash or not name or not kind:
        raise click.BadParameter(f"{resource!r}: expected <kind>/<name>, e.g. "
                                 "machinedeployment/md-0", param_hint="RESOURCE")
    if kind.lower() not in KINDS:
        raise click.ClickException(
            f'Invalid resource type "{kind}", valid values are {VALID}')
    api_version, real_kind = KINDS[kind.lower()]
    return api_version, real_kind, name


def _rollout_after(obj: Object) -> datetime | None:
    raw = ((obj.get("spec") or {}).get("rollout") or {}).get("after")
    if not raw:
        return None
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None


def _is_paused(obj: Object, kind: str) -> bool:
    if kind == "MachineDeployment":
        return bool((obj.get("spec") or {}).get("paused"))
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return PAUSED_ANNOTATION in annotations


async def act(client: Client, action: Action, resource: str, namespace: str) -> str:
    """Do ``action`` on ``resource`` (``kind/name``); returns what to print."""
    from shipyard.apimachinery.errors import NotFound
    from shipyard.client import NoKindMatchError

    api_version, kind, name = _parse(resource)
    ref = f"{kind.lower()}/{name}"
    try:
        await client.mapper.mapping(api_version, kind)
        obj = await client.get(api_version, kind, name, namespace)
    except NoKindMatchError as e:
        raise click.ClickException(
            f"{kind} is not served by this management cluster (is its provider "
            "installed?)") from e
    except NotFound as e:
        raise click.ClickException(
            f'failed to fetch {ref}: {kind} "{name}" not found in namespace '
            f'"{namespace}"') from e
    paused = _is_paused(obj, kind)
    patch: dict[str, Any]
    if action == "restart":
        if paused:
            raise click.ClickException(
                f"can't restart paused {kind} (run rollout resume first): {ref}")
        after = _rollout_after(obj)
        now = datetime.now(UTC)
        if after is not None and after > now:
            raise click.ClickException(
                f"can't update {kind} (remove 'spec.rollout.after' first): {ref}")
        patch = {"spec": {"rollout": {"after": now.strftime("%Y-%m-%dT%H:%M:%SZ")}}}
        done = "restarted"
    elif action == "pause":
        if paused:
            raise click.ClickException(f"{kind} is already paused: {ref}")
        patch = ({"spec": {"paused": True}} if kind == "MachineDeployment"
                 else {"metadata": {"annotations": {PAUSED_ANNOTATION: "true"}}})
        done = "paused"
    else:
        if not paused:
            raise click.ClickException(f"{kind} is not currently paused: {ref}")
        patch = ({"spec": {"paused": False}} if kind == "MachineDeployment"
                 else {"metadata": {"annotations": {PAUSED_ANNOTATION: None}}})
        done = "resumed"
    await client.patch(api_version, kind, name, patch, namespace)
    return f"{ref} {done}"


@click.group("rollout")
def rollout() -> None:
    """Manage the rollout of a Cluster API resource (MachineDeployment,
    KubeadmControlPlane)."""


def _command(action: Action, help_text: str) -> click.Command:
    @click.argument("resources", metavar="RESOURCE...", nargs=-1, required=True)
    @kubeconfig_option
    @context_option
    @namespace_option
    def command(resources: tuple[str, ...], kubeconfig: Path | None,
                kubeconfig_context: str | None, namespace: str | None) -> None:
        for resource in resources:
            _parse(resource)  # every argument is checked before anything changes

        async def main(client: Client) -> list[str]:
            ns = namespace or client.namespace
            return [await act(client, action, r, ns) for r in resources]

        for line in run(kubeconfig, kubeconfig_context, main):
            click.echo(line)

    command.__doc__ = help_text
    return rollout.command(action)(command)


restart = _command("restart", "Restart RESOURCE: replace all its Machines "
                              "(e.g. machinedeployment/md-0).")
pause = _command("pause", "Pause RESOURCE: hold its rollouts until resumed.")
resume = _command("resume", "Resume a paused RESOURCE.")
