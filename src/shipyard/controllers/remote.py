"""Clients for workload clusters, built from their `<cluster>-kubeconfig` Secret
(upstream's ClusterCache, reduced to what the core controllers need: a client per cluster).

Contract: `await remote.client(namespace, cluster_name)` returns a `ReaderWriter` for the
workload cluster, or raises `RemoteUnavailable` when the Secret is missing or unreadable. Clients
are cached per cluster and rebuilt when the Secret's content changes (rotated credentials, a
restarted endpoint). `aclose()` closes them. A `factory` (kubeconfig text → client) can replace
`shipyard.client.Client`, e.g. for a cluster reachable only through a proxy.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Callable
from typing import Any

from shipyard.api.core.constants import KUBECONFIG_DATA_KEY, kubeconfig_secret_name
from shipyard.apimachinery.errors import NotFound
from shipyard.client import Client
from shipyard.client.interfaces import Reader, ReaderWriter
from shipyard.controllers.kinds import SECRET

Factory = Callable[[str], Any]


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


class RemoteClusters:
    def __init__(self, client: Reader, factory: Factory | None = None) -> None:
        self.management = client
        self.factory: Factory = factory or client_from_kubeconfig
        self._clients: dict[tuple[str, str], tuple[str, Any]] = {}

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

    async def client(self, namespace: str, cluster_name: str) -> ReaderWriter:
        text = await self.kubeconfig(namespace, cluster_name)
        digest = hashlib.sha256(text.encode()).hexdigest()
        key = (namespace, cluster_name)
        cached = self._clients.get(key)
        if cached is not None and cached[0] == digest:
            return cached[1]  # type: ignore[no-any-return]
        if cached is not None:
            await _close(cached[1])
        try:
            remote = self.factory(text)
        except Exception as e:
            raise RemoteUnavailable(f"kubeconfig of cluster {cluster_name}: {e}") from e
        self._clients[key] = (digest, remote)
        return remote  # type: ignore[no-any-return]

    async def forget(self, namespace: str, cluster_name: str) -> None:
        cached = self._clients.pop((namespace, cluster_name), None)
        if cached is not None:
            await _close(cached[1])

    async def aclose(self) -> None:
        for key in list(self._clients):
            await self.forget(*key)


async def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is not None:
        await close()
