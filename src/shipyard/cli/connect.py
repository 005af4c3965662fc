"""How the clusterctl-style day-2 commands reach the management cluster.

Why one module: ``describe``, ``get kubeconfig``, ``delete cluster`` and ``rollout`` share the
same contract as clusterctl: ``--kubeconfig`` (default ``$KUBECONFIG``, else the embedded
management plane's kubeconfig), ``--kubeconfig-context``, and ``-n`` defaulting to the
context's namespace. Every failure ends as one line on stderr and exit status 1 (click's
`ClickException`): a kubeconfig that is missing or unreadable, a server that does not answer,
an API error.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from shipyard.cli.management import default_data_dir

if TYPE_CHECKING:
    from shipyard.client import Client

T = TypeVar("T")


def default_kubeconfig() -> Path:
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(env) if env else default_data_dir() / "kubeconfig"


def open_client(kubeconfig: Path | None, context: str | None) -> Client:
    from shipyard.client import Client, KubeconfigError

    path = kubeconfig or default_kubeconfig()
    if not path.exists():
        raise click.ClickException(f"kubeconfig {path} does not exist")
    try:
        return Client.from_kubeconfig(path, context)
    except (KubeconfigError, KeyError, ValueError, OSError) as e:
        raise click.ClickException(f"kubeconfig {path}: {e}") from e


def run(kubeconfig: Path | None, context: str | None,
        main: Callable[[Client], Awaitable[T]]) -> T:
    """Open the management cluster's client, run ``main`` with it, close it; API and
    connection errors become `ClickException`s (``main`` raises its own for the cases it
    words better)."""
    client = open_client(kubeconfig, context)

    async def go() -> T:
        import aiohttp

        from shipyard.apimachinery.errors import StatusError
        from shipyard.client import NoKindMatchError

        try:
            return await main(client)
        except NoKindMatchError as e:
            raise click.ClickException(str(e)) from e
        except StatusError as e:
            raise click.ClickException(f"API request failed: {e}") from e
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            url = client.config.server
            raise click.ClickException(
                f"cannot reach the management cluster {url}: {e or type(e).__name__}") from e
        finally:
            await client.close()

    return asyncio.run(go())


kubeconfig_option = click.option(
    "--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
    help="The management cluster's kubeconfig. Default: $KUBECONFIG, else the embedded "
         "management plane's.")
context_option = click.option("--kubeconfig-context",
                              help="Context of --kubeconfig (default: its current context).")
namespace_option = click.option(
    "-n", "--namespace", help="The namespace of the objects. Default: the kubeconfig "
                              "context's namespace.")
