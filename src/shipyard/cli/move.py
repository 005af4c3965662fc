"""``shipyard move``: clusterctl's `move` verb and flags, over `shipyard.clusterctl.Mover`.

Modes (exactly as clusterctl combines its flags):
- ``--to-kubeconfig K``: move the Cluster API objects of the namespace from the source
  (``--kubeconfig``, default ``$KUBECONFIG`` or the embedded management plane) to ``K``;
- ``--dry-run``: print the plan (the objects, owner-first, in groups) and change nothing;
- ``--to-directory D``: write the objects to ``D`` (backup); the source keeps them;
- ``--from-directory D``: recreate the objects of ``D`` on ``--to-kubeconfig`` (default the
  source kubeconfig), then unpause them.

The namespace is ``-n/--namespace``, else the source kubeconfig context's namespace. Every
failure is one line on stderr and exit status 1 (click's `ClickException`).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from shipyard.cli.management import default_data_dir

if TYPE_CHECKING:
    from shipyard.client import Client


def _default_kubeconfig() -> Path:
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(env) if env else default_data_dir() / "kubeconfig"


def _client(path: Path, context: str | None, what: str) -> Client:
    from shipyard.client import Client, KubeconfigError

    if not path.exists():
        raise click.ClickException(f"{what} kubeconfig {path} does not exist")
    try:
        return Client.from_kubeconfig(path, context)
    except (KubeconfigError, KeyError, ValueError, OSError) as e:
        raise click.ClickException(f"{what} kubeconfig {path}: {e}") from e


async def _run(*, kubeconfig: Path, context: str | None, to_kubeconfig: Path | None,
               to_context: str | None, namespace: str | None, dry_run: bool,
               to_directory: Path | None, from_directory: Path | None) -> None:
    import aiohttp

    from shipyard.apimachinery.errors import StatusError
    from shipyard.clusterctl import MoveError, Mover

    opened: list[Client] = []

    def client(path: Path, ctx: str | None, what: str) -> Client:
        c = _client(path, ctx, what)
        opened.append(c)
        return c

    try:
        if from_directory is not None:
            target = client(to_kubeconfig or kubeconfig,
                            to_context if to_kubeconfig else context, "target")
            await Mover(None, log=click.echo).from_directory(target, from_directory)
            return
        source = client(kubeconfig, context, "source")
        ns = namespace or source.namespace
        mover = Mover(source, log=click.echo)
        if to_directory is not None:
            await mover.to_directory(ns, to_directory)
            return
        await mover.move(client(to_kubeconfig, to_context, "target")
                         if to_kubeconfig is not None else None, ns, dry_run=dry_run)
    except MoveError as e:
        raise click.ClickException(str(e)) from e
    except StatusError as e:
        raise click.ClickException(f"API request failed: {e}") from e
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise click.ClickException(f"cannot reach the API server: {e}") from e
    finally:
        for c in opened:
            await c.close()


@click.command("move")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
              help="The source management cluster. Default: $KUBECONFIG, else the embedded "
                   "management plane's kubeconfig.")
@click.option("--kubeconfig-context", help="Context of --kubeconfig (default: its current).")
@click.option("--to-kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
              help="The destination management cluster.")
@click.option("--to-kubeconfig-context", help="Context of --to-kubeconfig.")
@click.option("-n", "--namespace", help="The namespace of the workload clusters. Default: the "
                                        "source kubeconfig context's namespace.")
@click.option("--dry-run", is_flag=True, help="Print the objects to move; change nothing.")
@click.option("--to-directory", type=click.Path(file_okay=False, path_type=Path),
              help="Write the objects to this directory instead of another cluster.")
@click.option("--from-directory", type=click.Path(file_okay=False, path_type=Path),
              help="Create the objects read from this directory on the target cluster.")
def move(kubeconfig: Path | None, kubeconfig_context: str | None, to_kubeconfig: Path | None,
         to_kubeconfig_context: str | None, namespace: str | None, dry_run: bool,
         to_directory: Path | None, from_directory: Path | None) -> None:
    """Move Cluster API objects and all dependencies between management clusters.

    The destination must have the same providers installed (`shipyard controllers` installs
    them on the embedded management plane).
    """
    if to_directory is not None and from_directory is not None:
        raise click.UsageError("can not specify both --to-directory and --from-directory")
    if to_directory is not None and to_kubeconfig is not None:
        raise click.UsageError("can not specify both --to-directory and --to-kubeconfig")
    if (dry_run and (to_directory or from_directory)):
        raise click.UsageError("--dry-run applies to a move between clusters only")
    if to_kubeconfig is None and to_directory is None and from_directory is None \
            and not dry_run:
        raise click.UsageError(
            "please specify a target cluster using the --to-kubeconfig flag when not using "
            "--dry-run, --to-directory or --from-directory")
    asyncio.run(_run(kubeconfig=kubeconfig or _default_kubeconfig(),
                     context=kubeconfig_context, to_kubeconfig=to_kubeconfig,
                     to_context=to_kubeconfig_context, namespace=namespace, dry_run=dry_run,
                     to_directory=to_directory, from_directory=from_directory))
