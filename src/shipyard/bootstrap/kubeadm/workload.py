"""Clients for workload clusters, built from each cluster's `<cluster>-kubeconfig` Secret.

Why its own: bootstrap tokens live in the workload cluster, and the bootstrap provider may not
depend on the core controllers' internals; this is the small part of upstream's ClusterCache it
needs. Contract: `await clients.get(namespace, cluster)` returns a cached `ReaderWriter`,
rebuilt when the Secret's content changes; raises `WorkloadUnavailable` when the Secret is
missing or unusable. `aclose()` closes every client. `factory` (kubeconfig text → client) can
replace `shipyard.client.Client`.
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


class WorkloadUnavailable(Exception):
    """The workload cluster cannot be reached (no kubeconfig Secret yet, or a bad one)."""


def client_from_kubeconfig(text: str) -> Client:
    fd, path = tempfile.mkstemp(prefix="kubeconfig-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return Client.from_kubeconfig(path)
    finally:
        os.unlink(path)


class WorkloadClients:
    def __init__(self, management: Reader,
                 factory: Callable[[str], Any] | None = None) -> None:
        self.management = management
        self.factory = factory or client_from_kubeconfig
        self._clients: dict[tuple[str, str], tuple[str, Any]] = {}

    async def get(self, namespace: str, cluster_name: str) -> ReaderWriter:
        name = kubeconfig_secret_name(cluster_name)
        try:
            secret = await self.management.get("v1", "Secret", name, namespace)
        except NotFound as e:
            raise WorkloadUnavailable(f"Secret {name} does not exist") from e
        data = (secret.get("data") or {}).get(KUBECONFIG_DATA_KEY)
        if not data:
            raise WorkloadUnavailable(f"Secret {name} has no {KUBECONFIG_DATA_KEY!r} key")
        text = base64.b64decode(data).decode()
        digest = hashlib.sha256(text.encode()).hexdigest()
        key = (namespace, cluster_name)
        cached = self._clients.get(key)
        if cached is not None and cached[0] == digest:
            return cached[1]  # type: ignore[no-any-return]
        try:
            client = self.factory(text)
        except Exception as e:
            raise WorkloadUnavailable(f"kubeconfig of cluster {cluster_name}: {e}") from e
        self._clients[key] = (digest, client)
        if cached is not None:
            await _close(cached[1])
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for _, client in clients.values():
            await _close(client)


async def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if close is not None:
        await close()
