"""Simulated workload clusters: one real Shipyard API server subprocess per Cluster.

Why a subprocess per cluster: the provider may not import the API server (import-linter), and a
separate `python -m shipyard.cli apiserver` per cluster is the simplest thing that is really a
Kubernetes API: each cluster has its own SQLite store, PKI, admin kubeconfig and port, so
deleting a cluster is "stop its process, remove its directory", one crashing cluster cannot
disturb another, and the Machine controller reaches it exactly as it would a real cluster
(through the `<cluster>-kubeconfig` Secret and `shipyard.client`). The cost is one Python
process (~60 MB) per cluster: fine for tests and a handful of clusters; scale tests with
hundreds of clusters want one shared host multiplexing clusters instead (not built yet).

Contract:
- `ensure(key, port=0)` starts the server of `key` (idempotent) and returns its `Workload`
  (url, port, admin kubeconfig text). A restarted provider re-uses the directory (state
  survives) and asks for the previous port so the control-plane endpoint stays valid.
- `client(key)` is a `shipyard.client.Client` for that server (cached; closed by `stop`).
- `stop(key)` terminates the process; `delete(key)` also removes its directory.
- `aclose()` stops every process this object started.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from shipyard.client import Client

STARTUP_TIMEOUT = 30.0


class WorkloadStartError(RuntimeError):
    """The workload API server did not come up."""


@dataclass
class Workload:
    key: str
    data_dir: Path
    port: int
    kubeconfig: str
    process: asyncio.subprocess.Process
    client: Client | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.data_dir / "kubeconfig"


class WorkloadClusters:
    def __init__(self, root: Path | None = None) -> None:
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="shipyard-inmemory-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        self._running: dict[str, Workload] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._exited: list[Workload] = []
        """Workloads whose server exited on its own; their clients still hold a pool."""

    def dir_of(self, key: str) -> Path:
        return self.root / key.replace("/", "_")

    def get(self, key: str) -> Workload | None:
        workload = self._running.get(key)
        if workload is not None and workload.process.returncode is not None:
            self._running.pop(key, None)
            self._exited.append(workload)
            return None
        return workload

    async def ensure(self, key: str, port: int = 0) -> Workload:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            await self._release_exited()
            running = self.get(key)
            if running is not None:
                return running
            try:
                workload = await self._start(key, port)
            except WorkloadStartError:
                if port == 0:
                    raise
                workload = await self._start(key, 0)  # the old port is taken: take any
            self._running[key] = workload
            return workload

    async def _start(self, key: str, port: int) -> Workload:
        data_dir = self.dir_of(key)
        data_dir.mkdir(parents=True, exist_ok=True)
        port_file = data_dir / "port"
        port_file.unlink(missing_ok=True)
        log = (data_dir / "apiserver.log").open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shipyard.cli", "apiserver", "--data-dir", str(data_dir),
                "--port", str(port), "--port-file", str(port_file), "--key-type", "ecdsa",
                "--shutdown-timeout", "0", "--log-level", "warning",
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )
        finally:
            log.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.returncode is not None or loop.time() > deadline:
                await _terminate(process)
                raise WorkloadStartError(
                    f"workload API server for {key} did not start (see {data_dir}/apiserver.log)")
            await asyncio.sleep(0.02)
        bound = int(port_file.read_text().strip())
        kubeconfig = (data_dir / "kubeconfig").read_text()
        return Workload(key, data_dir, bound, kubeconfig, process)

    async def client(self, key: str) -> Client:
        workload = self.get(key)
        if workload is None:
            raise WorkloadStartError(f"workload cluster {key} is not running")
        if workload.client is None:
            workload.client = Client.from_kubeconfig(workload.kubeconfig_path)
        return workload.client

    async def stop(self, key: str) -> None:
        workload = self._running.pop(key, None)
        if workload is None:
            return
        if workload.client is not None:
            await workload.client.close()
        await _terminate(workload.process)

    async def delete(self, key: str) -> None:
        async with self._locks.setdefault(key, asyncio.Lock()):
            await self.stop(key)
            shutil.rmtree(self.dir_of(key), ignore_errors=True)

    def exists(self, key: str) -> bool:
        return self.dir_of(key).exists()

    async def _release_exited(self) -> None:
        while self._exited:
            workload = self._exited.pop()
            if workload.client is not None:
                await workload.client.close()

    async def aclose(self) -> None:
        for key in list(self._running):
            await self.stop(key)
        await self._release_exited()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)


def kubeconfig_for(workload: Workload, cluster_name: str) -> str:
    """The admin kubeconfig renamed after the cluster (`<cluster>-admin@<cluster>`), as upstream
    names the contexts of a `<cluster>-kubeconfig` Secret."""
    doc = yaml.safe_load(workload.kubeconfig)
    user = f"{cluster_name}-admin"
    context = f"{user}@{cluster_name}"
    doc["clusters"] = [{"name": cluster_name, "cluster": doc["clusters"][0]["cluster"]}]
    doc["users"] = [{"name": user, "user": doc["users"][0]["user"]}]
    doc["contexts"] = [{"name": context, "context": {"cluster": cluster_name, "user": user}}]
    doc["current-context"] = context
    return str(yaml.safe_dump(doc, sort_keys=False))


async def _terminate(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
