"""``shipyard init``: clusterctl's `init` — install Cluster API and the chosen providers into a
management cluster, record them, and get their controllers running.

Contract:
- Target: `--kubeconfig` (or $KUBECONFIG); without either, the embedded management plane,
  started if it is not running.
- For each provider (the core one always, then `--bootstrap`, `--control-plane`,
  `--infrastructure`; defaults in `shipyard.cli.providers.DEFAULTS`): its namespace, its CRDs
  (on a server that is not Shipyard's, Cluster API's CRDs go in with conversion `None`, as
  `shipyard controllers` does, because their webhook placeholder has no CA) and a
  clusterctl inventory record: a `Provider` (clusterctl.cluster.x-k8s.io/v1alpha3) named by
  clusterctl's provider id in the provider's namespace. A provider already recorded is
  skipped with a message, as clusterctl does, so `init` can add providers later.
- Controllers: on the embedded plane, `shipyard controllers` for the recorded providers as a
  background process beside the API server (`controllers.pid`, `controllers.log`; restarted
  when the provider set grows). On a cluster that runs workloads, the controller Deployment
  with its ServiceAccount and RBAC (`shipyard.cli.deploy`), running the same command with
  leader election, and the conversion webhook beside it: its certificates in Secrets (the CA
  kept across re-runs), its Service, and every recorded provider's multi-version CRD switched
  to conversion `Webhook` with the CA as `caBundle`. On another Shipyard server (no
  Deployments), the command to run them; that server keeps converting in process.
- `upgrade` and `delete --all` read the records (`installed(client)`).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import click

from shipyard import __version__
from shipyard.cli import providers as registry

INVENTORY_GROUP = "clusterctl.cluster.x-k8s.io"
INVENTORY_VERSION = "v1alpha3"
INVENTORY_API = f"{INVENTORY_GROUP}/{INVENTORY_VERSION}"
INVENTORY_LABEL = "clusterctl.cluster.x-k8s.io/core"


def inventory_crd() -> dict[str, Any]:
    """clusterctl's `providers.clusterctl.cluster.x-k8s.io` CRD (the inventory)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"providers.{INVENTORY_GROUP}",
                     "labels": {INVENTORY_LABEL: "inventory",
                                "clusterctl.cluster.x-k8s.io": ""}},
        "spec": {
            "group": INVENTORY_GROUP, "scope": "Namespaced",
            "names": {"kind": "Provider", "listKind": "ProviderList", "plural": "providers",
                      "singular": "provider"},
            "versions": [{
                "name": INVENTORY_VERSION, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "providerName": {"type": "string"},
                    "type": {"type": "string"},
                    "version": {"type": "string"},
                    "watchedNamespace": {"type": "string"}}}},
                "additionalPrinterColumns": [
                    {"name": "Type", "type": "string", "jsonPath": ".type"},
                    {"name": "Provider", "type": "string", "jsonPath": ".providerName"},
                    {"name": "Version", "type": "string", "jsonPath": ".version"}],
            }],
        },
    }


def provider_record(p: registry.Provider) -> dict[str, Any]:
    return {"apiVersion": INVENTORY_API, "kind": "Provider",
            "metadata": {"name": p.key, "namespace": p.namespace,
                         "labels": {"clusterctl.cluster.x-k8s.io": "",
                                    "cluster.x-k8s.io/provider": p.key}},
            "providerName": p.name, "type": p.type, "version": f"v{__version__}"}


async def installed(client: Any) -> list[dict[str, Any]]:
    """The inventory: every Provider record (empty when clusterctl's CRD is absent)."""
    from shipyard.client import NoKindMatchError

    try:
        found = await _patiently(lambda: client.list(INVENTORY_API, "Provider"))
    except NoKindMatchError:
        return []
    return list(found["items"])


async def _patiently(call: Any, attempts: int = 50) -> Any:
    """`call()`, retried while the server answers 429: kube-apiserver does so for a moment
    after a CRD is created ("storage is (re)initializing")."""
    from shipyard.apimachinery.errors import TooManyRequests

    for attempt in range(attempts):
        try:
            return await call()
        except TooManyRequests:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.2)


async def is_shipyard(client: Any) -> bool:
    version = await client.get_json("/version")
    return "shipyard" in str(version.get("gitVersion", ""))


async def _ensure(client: Any, obj: dict[str, Any]) -> bool:
    from shipyard.apimachinery.errors import AlreadyExists

    try:
        await _patiently(lambda: client.create(obj))
        return True
    except AlreadyExists:
        return False


async def _wait_served(client: Any, crds: list[dict[str, Any]], timeout: float = 60.0) -> None:
    from shipyard.client import NoKindMatchError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for crd in crds:
        spec = crd["spec"]
        # The storage version: served by any CRD of this name, whichever manifest created it.
        version = next(v["name"] for v in spec["versions"] if v.get("storage"))
        gv = f"{spec['group']}/{version}"
        while True:
            try:
                await client.mapper.mapping(gv, spec["names"]["kind"])
                break
            except NoKindMatchError:
                if loop.time() > deadline:
                    raise click.ClickException(
                        f"CRD {crd['metadata']['name']} was not served within {timeout:g}s"
                    ) from None
                await asyncio.sleep(0.1)


async def install(client: Any, chosen: list[registry.Provider],
                  echo: Any = click.echo) -> list[registry.Provider]:
    """Install the chosen providers not yet recorded; returns those newly installed."""
    shipyard_server = await is_shipyard(client)
    await _ensure(client, inventory_crd())
    await _wait_served(client, [inventory_crd()])
    recorded = {(r.get("type"), r.get("providerName")) for r in await installed(client)}
    fresh: list[registry.Provider] = []
    for p in chosen:
        if (p.type, p.name) in recorded:
            echo(f"Skipping installing {p.key} as it is already installed")
            continue
        echo(f"Installing provider={p.key!r} version=v{__version__} "
             f"targetNamespace={p.namespace!r}")
        await _ensure(client, {"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": p.namespace}})
        manifests = p.manifests()
        for crd in manifests:
            if not shipyard_server and (crd["spec"].get("conversion") or {}).get(
                    "strategy") == "Webhook":
                crd["spec"]["conversion"] = {"strategy": "None"}
            await _ensure(client, crd)
        await _wait_served(client, manifests)
        await _ensure(client, provider_record(p))
        fresh.append(p)
    return fresh


def chosen_flags(records: list[dict[str, Any]]) -> list[str]:
    """`shipyard controllers` flags for the recorded providers."""
    args: list[str] = []
    for type_, flag in registry.TYPE_FLAGS.items():
        names = sorted(str(r["providerName"]) for r in records if r.get("type") == type_)
        if names:
            args += [f"--{flag}", ",".join(names)]
    return args


def crd_names(records: list[dict[str, Any]]) -> list[str]:
    """The CRDs of the recorded providers this Shipyard ships."""
    names: list[str] = []
    for record in records:
        provider = registry.PROVIDERS.get((str(record.get("type")),
                                           str(record.get("providerName"))))
        if provider is not None:
            names += [crd["metadata"]["name"] for crd in provider.manifests()]
    return names


# ----------------------------------------------------------------------------- command

@click.command("init")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The management cluster (default: $KUBECONFIG, else the embedded "
                   "management plane, started if needed).")
@click.option("-i", "--infrastructure", multiple=True,
              help="Infrastructure providers (comma-separated or repeated).")
@click.option("-b", "--bootstrap", multiple=True, help="Bootstrap providers.")
@click.option("-c", "--control-plane", multiple=True, help="Control-plane providers.")
@click.option("--image", default=f"shipyard:{__version__}", show_default=True,
              help="Controller image for clusters other than the embedded plane.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The embedded management plane's data directory.")
def init(kubeconfig: Path | None, infrastructure: tuple[str, ...], bootstrap: tuple[str, ...],
         control_plane: tuple[str, ...], image: str, data_dir: Path | None) -> None:
    """Install Cluster API and providers into a management cluster and run the controllers."""
    try:
        chosen = registry.select(
            registry.split(infrastructure) if infrastructure else None,
            registry.split(bootstrap) if bootstrap else None,
            registry.split(control_plane) if control_plane else None)
    except registry.UnknownProvider as e:
        raise click.UsageError(str(e)) from e
    from shipyard.cli import management

    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    target = kubeconfig or (Path(env) if env else None)
    own = management.Plane((data_dir or management.default_data_dir()).expanduser().resolve())
    # The embedded plane's own kubeconfig (as its README usage exports it) is the embedded
    # plane: its controllers run beside it, as without any kubeconfig.
    embedded = target is None or target.expanduser().resolve() == own.kubeconfig
    plane = None
    if embedded:
        plane = management.ensure_up(data_dir)
        kubeconfig = plane.kubeconfig
        click.echo(f"Using the embedded management plane at {plane.url()}")
    elif kubeconfig is None:
        kubeconfig = Path(env)
    if not kubeconfig.exists():
        raise click.ClickException(f"no kubeconfig at {kubeconfig}")
    records = asyncio.run(_install_and_deploy(kubeconfig, chosen, embedded, image))
    if plane is not None:
        pid = management.ensure_controllers(plane, chosen_flags(records))
        click.echo(f"Controllers running (pid {pid}); log: {plane.controllers_log}")
    if any(p.key == "infrastructure-docker" for p in chosen):
        _check_node_image()
    click.echo("\nYour management cluster has been initialized successfully!\n\n"
               "You can now create your first workload cluster by running the following:\n\n"
               "  shipyard generate cluster [name] --kubernetes-version [version] | "
               "kubectl apply -f -\n")


def _check_node_image() -> None:
    """The Docker provider's machines need the node image in the engine: say so now."""
    from shipyard.providers.docker import image
    from shipyard.providers.docker.engine import Engine, EngineError

    engine = Engine()
    ref = image.default_node_image()
    try:
        present = engine.image_present(ref)
    except EngineError as e:
        click.echo(f"Warning: {e}; the Docker provider's machines need one (DOCKER_HOST).")
        return
    finally:
        engine.close()
    if not present:
        click.echo(f"Note: the node image {ref} is not in the Docker engine yet; "
                   "build it with `shipyard build node-image`.")


async def _install_and_deploy(kubeconfig: Path, chosen: list[registry.Provider],
                              embedded: bool, image: str) -> list[dict[str, Any]]:
    from shipyard.client import Client

    async with Client.from_kubeconfig(kubeconfig) as client:
        try:
            await install(client, chosen)
        except (OSError, TimeoutError) as e:
            raise click.ClickException(f"cannot reach the management cluster: {e}") from e
        records = await installed(client)
        if embedded:
            return records
        if await _serves_deployments(client):
            from shipyard.cli import deploy

            await deploy.deploy(client, image, chosen_flags(records), crd_names(records))
            click.echo(f"Deployment {deploy.NAMESPACE}/{deploy.NAME} applied (image {image}), "
                       f"conversion webhook at Service {deploy.NAMESPACE}/"
                       f"{deploy.WEBHOOK_SERVICE}.")
        else:
            click.echo("This cluster runs no workloads (no apps/v1 Deployments); run the "
                       "controllers yourself:\n  shipyard controllers --kubeconfig "
                       f"{kubeconfig} {' '.join(chosen_flags(records))}")
        return records


async def _serves_deployments(client: Any) -> bool:
    from shipyard.client import NoKindMatchError

    try:
        await client.mapper.mapping("apps/v1", "Deployment")
        return True
    except NoKindMatchError:
        return False
