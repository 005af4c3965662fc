"""What `shipyard init` installed, taken away or brought up to date: clusterctl's
`delete --all` (and per provider) and `upgrade plan|apply`, driven by the inventory records.

Contract (as clusterctl):
- delete: for each selected recorded provider, its controllers stop (the embedded plane's
  background process is restarted with the remaining providers, or stopped when none remain;
  on a cluster running the controller Deployment, the Deployment, its RBAC and its conversion
  webhook's Service and certificate Secrets go when the core provider goes, and the CRDs it
  converted go back to conversion `None`) and its Provider record is deleted. Its CRDs (and
  with them every object of those kinds) only with `--include-crd`; its namespace only with
  `--include-namespace`.
- upgrade plan: each recorded provider, its version and the version this Shipyard would
  install. upgrade apply: each CRD replaced by this version's manifest (keeping an existing
  conversion webhook's settings), records updated, controllers restarted; where `init`
  deployed the conversion webhook, its certificates renewed when due and every recorded
  multi-version CRD (new ones included) pointed at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from shipyard import __version__
from shipyard.cli import providers as registry
from shipyard.cli.init import INVENTORY_API, installed, is_shipyard


def selected(records: list[dict[str, Any]], *, everything: bool, core: bool,
             infrastructure: list[str], bootstrap: list[str],
             control_plane: list[str]) -> list[dict[str, Any]]:
    if everything:
        return records
    wanted = {(registry.CORE, "cluster-api")} if core else set()
    for type_, names in ((registry.INFRASTRUCTURE, infrastructure),
                         (registry.BOOTSTRAP, bootstrap),
                         (registry.CONTROL_PLANE, control_plane)):
        wanted |= {(type_, n) for n in names}
    found = [r for r in records if (r.get("type"), r.get("providerName")) in wanted]
    missing = wanted - {(r.get("type"), r.get("providerName")) for r in found}
    if missing:
        listed = ", ".join(f"{registry.TYPE_FLAGS.get(str(t), 'core')} {n!r}"
                           for t, n in sorted(missing))
        raise click.ClickException(f"not installed: {listed}")
    return found


def _provider(record: dict[str, Any]) -> registry.Provider | None:
    return registry.PROVIDERS.get((str(record.get("type")), str(record.get("providerName"))))


async def delete_providers(client: Any, records: list[dict[str, Any]], *, include_crd: bool,
                           include_namespace: bool) -> list[str]:
    """Delete the records (and CRDs/namespaces when asked); returns what was done."""
    from shipyard.apimachinery.errors import NotFound

    if include_crd and any(r.get("type") == registry.CORE for r in records):
        clusters = (await client.list("cluster.x-k8s.io/v1beta2", "Cluster"))["items"]
        if clusters:
            names = ", ".join(f"{c['metadata']['namespace']}/{c['metadata']['name']}"
                              for c in clusters)
            raise click.ClickException(
                f"workload clusters still exist ({names}): delete them first "
                "(shipyard delete cluster NAME --wait); their finalizers would hold the CRDs")
    done: list[str] = []
    for record in records:
        meta = record["metadata"]
        provider = _provider(record)
        if include_crd and provider is not None:
            for crd in provider.manifests():
                try:
                    await client.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                                        crd["metadata"]["name"])
                    done.append(f"Deleting CustomResourceDefinition={crd['metadata']['name']!r}")
                except NotFound:
                    pass
        try:
            await client.delete(INVENTORY_API, "Provider", meta["name"], meta["namespace"])
        except NotFound:
            pass
        done.append(f"Deleting Provider={meta['name']!r} Namespace={meta['namespace']!r}")
        if include_namespace:
            try:
                await client.delete("v1", "Namespace", meta["namespace"])
                done.append(f"Deleting Namespace={meta['namespace']!r}")
            except NotFound:
                pass
    if any(r.get("type") == registry.CORE for r in records):
        done += await _delete_deployment(client)
    return done


async def _delete_deployment(client: Any) -> list[str]:
    from shipyard.cli import deploy

    return await deploy.remove(client)


async def upgrade(client: Any, records: list[dict[str, Any]], *, apply: bool) -> list[str]:
    """The plan (or, with `apply`, the upgrade) of every recorded provider."""
    from shipyard.apimachinery.errors import NotFound

    lines: list[str] = []
    shipyard_server = await is_shipyard(client)
    for record in records:
        provider = _provider(record)
        current, target = record.get("version"), f"v{__version__}"
        if provider is None:
            lines.append(f"{record['metadata']['name']}: {current} (not shipped by this "
                         "version of Shipyard: left alone)")
            continue
        state = "Already up to date" if current == target else f"-> {target}"
        lines.append(f"{provider.key:<32} {record['metadata']['namespace']:<36} "
                     f"{current:<10} {state}")
        if not apply:
            continue
        for manifest in provider.manifests():
            name = manifest["metadata"]["name"]
            try:
                existing = await client.get("apiextensions.k8s.io/v1",
                                            "CustomResourceDefinition", name)
            except NotFound:
                await client.create(_for_server(manifest, None, shipyard_server))
                continue
            existing["spec"] = _for_server(manifest, existing, shipyard_server)["spec"]
            existing["metadata"].setdefault("labels", {}).update(
                manifest["metadata"].get("labels") or {})
            await client.update(existing)
        record["version"] = target
        await client.update(record)
    if apply and not shipyard_server:
        from shipyard.cli import deploy
        from shipyard.cli.init import crd_names

        await deploy.refresh(client, crd_names(records))
    return lines


def _for_server(manifest: dict[str, Any], existing: dict[str, Any] | None,
                shipyard_server: bool) -> dict[str, Any]:
    """The manifest with its conversion as this server can serve it: kept as installed on a
    cluster whose webhook was wired by hand, `None` on a real cluster without one."""
    conversion = (manifest["spec"].get("conversion") or {})
    if conversion.get("strategy") != "Webhook" or shipyard_server:
        return manifest
    if existing is not None and (existing["spec"].get("conversion") or {}).get(
            "strategy") == "Webhook":
        manifest["spec"]["conversion"] = existing["spec"]["conversion"]
    else:
        manifest["spec"]["conversion"] = {"strategy": "None"}
    return manifest


def restart_embedded_controllers(kubeconfig: Path | None, records: list[dict[str, Any]],
                                 *, force: bool = False) -> str | None:
    """On the embedded plane (no kubeconfig given, none in the environment): run the
    controllers for `records`, or stop them when no core provider is left."""
    import os

    from shipyard.cli import management
    from shipyard.cli.init import chosen_flags

    if kubeconfig is not None or os.environ.get("KUBECONFIG"):
        return None
    plane = management.Plane(management.default_data_dir())
    pid = plane.controllers_pid()
    if not any(r.get("type") == registry.CORE for r in records):
        if pid is not None:
            management.stop(pid, timeout=30)
            plane.controllers_pid_file.unlink(missing_ok=True)
            return f"Controllers stopped (pid {pid})."
        return None
    if force and pid is not None:
        management.stop(pid, timeout=30)
    pid = management.ensure_controllers(plane, chosen_flags(records))
    return f"Controllers running (pid {pid})."


async def records_of(client: Any) -> list[dict[str, Any]]:
    records = await installed(client)
    if not records:
        raise click.ClickException("no providers are installed here (run `shipyard init`)")
    return records
