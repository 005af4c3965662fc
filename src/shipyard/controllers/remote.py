"""Workload clusters as the core controllers reach them, built from each cluster's
`<cluster>-kubeconfig` Secret (upstream's ClusterCache, reduced to what we need).

Contract:
- `await remote.client(namespace, cluster)` returns a `ReaderWriter` for the workload cluster,
  or raises `RemoteUnavailable` when the Secret is missing or unusable. Clients are cached per
  cluster and rebuilt when the Secret's content changes (rotated credentials, a moved endpoint).
- `await remote.nodes(namespace, cluster)` returns a started Node `Informer` on that cluster,
  indexed by `spec.providerID` (`PROVIDER_ID_INDEX`), with the handlers from `node_handlers`
  attached, so a Node appearing, changing or going wakes the Machines it belongs to (upstream
  watches Nodes through the ClusterCache the same way). Raises `RemoteUnavailable` if it has
  not synced within `sync_timeout` seconds.
- `forget(namespace, cluster)` stops and drops both; `aclose()` forgets every cluster.
A `factory` (kubeconfig text → client) can replace `shipyard.client.Client`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.api.core.constants import KUBECONFIG_DATA_KEY, kubeconfig_secret_name
from shipyard.apimachinery.errors import NotFound
from shipyard.client import Client
from shipyard.client.interfaces import Object, Reader, ReaderWriter
from shipyard.controllers.kinds import NODE, SECRET
from shipyard.runtime import EventHandler, Informer

Factory = Callable[[str], Any]
NodeHandlerFactory = Callable[[str, str], EventHandler]
"""(namespace, cluster name) → the handler told of that cluster's Node events."""

PROVIDER_ID_INDEX = "providerID"


class RemoteUnavailable(Exception):
    """The workload cluster cannot be reached (no kubeconfig Secret yet, or a bad one)."""


def client_from_kubeconfig(text: str) -> Client:
    fd, path = tempfile.mkstemp(prefix="kubeconfig-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return Client.from_kubeconfig(path)
    finally:
        os.unlink(path)


def _provider_id(node: Object) -> list[str]:
    pid = (node.get("spec") or {}).get("providerID")
    return [str(pid)] if pid else []


@dataclass
class _Remote:
    digest: str
    client: Any
    nodes: Informer | None = None


class RemoteClusters:
    def __init__(self, client: Reader, factory: Factory | None = None, *,
                 node_handlers: NodeHandlerFactory | None = None, sync_timeout: float = 5.0,
                 informer_options: dict[str, Any] | None = None) -> None:
        self.management = client
        self.factory: Factory = factory or client_from_kubeconfig
        self.node_handlers = node_handlers
        self.sync_timeout = sync_timeout
        self.informer_options = informer_options or {"backoff_initial": 0.2,
                                                     "backoff_max": 10.0}
        self._remotes: dict[tuple[str, str], _Remote] = {}

    async def kubeconfig(self, namespace: str, cluster_name: str) -> str:
        try:
            secret = await self.management.get(*SECRET, kubeconfig_secret_name(cluster_name),
                                               namespace)
        except NotFound as e:
            raise RemoteUnavailable(
                f"Secret {kubeconfig_secret_name(cluster_name)} does not exist") from e
        data = (secret.get("data") or {}).get(KUBECONFIG_DATA_KEY)
        if not data:
            raise RemoteUnavailable(f"Secret {kubeconfig_secret_name(cluster_name)} has no "
                                    f"{KUBECONFIG_DATA_KEY!r} key")
        return base64.b64decode(data).decode()

    async def _remote(self, namespace: str, cluster_name: str) -> _Remote:
        text = await self.kubeconfig(namespace, cluster_name)
        digest = hashlib.sha256(text.encode()).hexdigest()
        key = (namespace, cluster_name)
        cached = self._remotes.get(key)
        if cached is not None and cached.digest == digest:
            return cached
        # Replace the entry before awaiting anything, so a concurrent caller finds the new
        # client instead of building (and leaking) one of its own.
        try:
            client = self.factory(text)
        except Exception as e:
            raise RemoteUnavailable(f"kubeconfig of cluster {cluster_name}: {e}") from e
        remote = _Remote(digest, client)
        self._remotes[key] = remote
        if cached is not None:
            await _release(cached)
        return remote

    async def client(self, namespace: str, cluster_name: str) -> ReaderWriter:
        remote = await self._remote(namespace, cluster_name)
        return remote.client  # type: ignore[no-any-return]

    async def nodes(self, namespace: str, cluster_name: str) -> Informer:
        remote = await self._remote(namespace, cluster_name)
        if remote.nodes is None:
            informer = Informer(remote.client, *NODE, **self.informer_options)
            informer.add_indexer(PROVIDER_ID_INDEX, _provider_id)
            if self.node_handlers is not None:
                informer.add_event_handler(self.node_handlers(namespace, cluster_name))
            informer.start()
            remote.nodes = informer
        if not await remote.nodes.wait_for_sync(self.sync_timeout):
            raise RemoteUnavailable(f"Nodes of cluster {cluster_name} did not sync in "
                                    f"{self.sync_timeout}s")
        return remote.nodes

    async def forget(self, namespace: str, cluster_name: str) -> None:
        remote = self._remotes.pop((namespace, cluster_name), None)
        if remote is not None:
            await _release(remote)

    def known(self) -> list[tuple[str, str]]:
        return list(self._remotes)

    async def aclose(self) -> None:
        for key in list(self._remotes):
            await self.forget(*key)


async def _release(remote: _Remote) -> None:
    if remote.nodes is not None:
        await remote.nodes.stop()
    close = getattr(remote.client, "close", None)
    if close is not None:
        await close()
