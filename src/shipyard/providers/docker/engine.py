"""The Docker provider's view of a Docker engine: networks, containers, exec and files.

Why a separate concern: the controllers decide *what* a cluster's containers should be; this
module knows *how* the Engine API (Docker's, or podman's compatible service) is spoken, and
keeps every fact on the engine itself (labels), so a restarted controller finds its containers
again and never mistakes somebody else's container for its own.

Contract:
- `Engine(docker_host=None)` connects lazily through the `docker` package (``DOCKER_HOST`` and
  the ``DOCKER_*`` variables honoured, as the docker CLI does, when ``docker_host`` is None).
  Every method is blocking (call it with `asyncio.to_thread`); an unreachable engine raises
  `EngineUnavailable`, a missing image `ImageNotFound`, anything else the engine refuses
  `EngineError` — each with a message fit for a condition.
- Ownership labels: everything Shipyard creates carries ``io.x-k8s.shipyard.owner =
  <namespace>.<cluster>`` (`owner_key`), plus CAPD's own ``io.x-k8s.kind.cluster`` (the cluster
  name) and ``io.x-k8s.kind.role`` (``control-plane``, ``worker``, ``external-load-balancer``),
  so tools written for CAPD's containers find ours. `container(name, owner)` returns our
  container of that name, None when there is none, and raises `NameConflict` when the name
  belongs to a container that is not ours; nothing is ever done to such a container.
- One private bridge network per cluster, `network_name(namespace, cluster)`, internal (no
  route out of the host): machines reach each other and the host reaches them by address.
- `run(spec)` creates and starts a container from a `ContainerSpec`; `exec(name, argv)`
  runs a command in it and returns (exit code, output); `put_files(name, files)` copies files
  in (path → (bytes, mode)) as one tar archive; `remove(name)` removes a container with its
  anonymous volumes; `remove_network` removes a cluster network when no container uses it.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Final

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

OWNER_LABEL: Final = "io.x-k8s.shipyard.owner"
CLUSTER_LABEL: Final = "io.x-k8s.kind.cluster"
ROLE_LABEL: Final = "io.x-k8s.kind.role"
MACHINE_LABEL: Final = "io.x-k8s.shipyard.machine"
ROLE_CONTROL_PLANE: Final = "control-plane"
ROLE_WORKER: Final = "worker"
ROLE_LOAD_BALANCER: Final = "external-load-balancer"

API_VERSION: Final = "1.41"
"""The Engine API version spoken: podman 4 serves 1.41, Docker serves it among many."""
TIMEOUT: Final = 120


class EngineError(Exception):
    """The engine refused or failed an operation; the message says what and why."""

    reason = "DockerEngineError"


class EngineUnavailable(EngineError):
    reason = "DockerEngineUnreachable"


class ImageNotFound(EngineError):
    reason = "ImageNotFound"


class NameConflict(EngineError):
    reason = "ContainerNameConflict"


def owner_key(namespace: str, cluster: str) -> str:
    return f"{namespace}.{cluster}"


def network_name(namespace: str, cluster: str) -> str:
    return f"shipyard-{namespace}-{cluster}"[:200]


def _own_address(networks: dict[str, Any], labels: dict[str, str]) -> str | None:
    """The container's address on its own cluster's network (a control-plane machine of a
    self-managed cluster is attached to the networks of the clusters it manages as well),
    else its first address."""
    owner = labels.get(OWNER_LABEL) or ""
    if "." in owner:  # namespaces have no dots: the first one separates the cluster name
        own = networks.get(network_name(*owner.split(".", 1))) or {}
        if own.get("IPAddress"):
            return str(own["IPAddress"])
    return next((str(n["IPAddress"]) for n in networks.values() if n.get("IPAddress")), None)


@dataclass
class ContainerSpec:
    name: str
    image: str
    network: str
    labels: dict[str, str]
    command: list[str] | None = None
    hostname: str | None = None
    binds: list[str] = field(default_factory=list)
    """``host:container[:ro]`` bind mounts (DockerMachine ``spec.extraMounts``)."""
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerState:
    name: str
    status: str
    """created, running, exited, ..."""
    exit_code: int
    address: str | None
    labels: dict[str, str]
    image: str
    started_at: str = ""

    @property
    def running(self) -> bool:
        return self.status == "running"


class Engine:
    def __init__(self, docker_host: str | None = None) -> None:
        self.docker_host = docker_host
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- connection

    def describe(self) -> str:
        return self.docker_host or os.environ.get("DOCKER_HOST") or "the default socket"

    @property
    def client(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                socket_path = unix_socket(self.docker_host)
                if socket_path is not None and not os.path.exists(socket_path):
                    # Checked first: docker-py leaks the socket of a failed unix connect.
                    raise EngineUnavailable(f"cannot reach a Docker engine at "
                                            f"{self.describe()}: {socket_path} does not exist")
                client = None
                try:
                    if self.docker_host:
                        client = docker.DockerClient(base_url=self.docker_host,
                                                     version=API_VERSION, timeout=TIMEOUT)
                    else:
                        client = docker.from_env(version=API_VERSION, timeout=TIMEOUT)
                    client.ping()
                except (docker.errors.DockerException, requests.exceptions.RequestException,
                        OSError) as e:
                    if client is not None:
                        client.close()
                    raise EngineUnavailable(
                        f"cannot reach a Docker engine at {self.describe()}: {e}") from e
                self._client = client
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        client = self.client
        try:
            return fn(*args, **kwargs)
        except docker.errors.ImageNotFound as e:
            raise ImageNotFound(f"{what}: {_explain(e)}") from e
        except docker.errors.APIError as e:
            raise EngineError(f"{what}: {_explain(e)}") from e
        except (docker.errors.DockerException, requests.exceptions.RequestException,
                OSError) as e:
            with self._lock:
                if self._client is client:
                    self._client = None
                    client.close()
            raise EngineUnavailable(
                f"cannot reach a Docker engine at {self.describe()}: {e}") from e

    def ping(self) -> None:
        self._call("ping", lambda: self.client.ping())

    # ----------------------------------------------------------------- images

    def image_present(self, ref: str) -> bool:
        try:
            self._call(f"inspect image {ref}", lambda: self.client.images.get(ref))
        except ImageNotFound:
            return False
        except EngineError as e:
            if "no such image" in str(e).lower() or "not found" in str(e).lower():
                return False
            raise
        return True

    # ----------------------------------------------------------------- networks

    def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        def ensure() -> None:
            existing = self.client.networks.list(names=[name])
            for net in existing:
                if net.name != name:
                    continue
                theirs = net.attrs.get("Labels") or {}
                if theirs.get(OWNER_LABEL) != labels.get(OWNER_LABEL):
                    raise NameConflict(f"network {name} exists and does not belong to "
                                       f"cluster {labels.get(OWNER_LABEL)}")
                return
            self.client.networks.create(name, driver="bridge", internal=True,
                                        labels=labels, check_duplicate=True)
        self._call(f"create network {name}", ensure)

    def remove_network(self, name: str, owner: str) -> bool:
        """Remove our network; False while containers are still attached to it."""
        def remove() -> bool:
            for net in self.client.networks.list(names=[name]):
                if net.name != name:
                    continue
                if (net.attrs.get("Labels") or {}).get(OWNER_LABEL) != owner:
                    return True  # not ours: leave it
                if self.client.api.containers(all=True, filters={"network": name}):
                    return False
                try:
                    net.remove()
                except docker.errors.NotFound:
                    pass
            return True
        result: bool = self._call(f"remove network {name}", remove)
        return result

    def attach(self, network: str, container: str) -> None:
        """Connect ``container`` to ``network`` unless it is attached already."""
        def attach() -> None:
            found = self.client.containers.get(container)
            if network in ((found.attrs.get("NetworkSettings") or {}).get("Networks") or {}):
                return
            self.client.networks.get(network).connect(found)
        self._call(f"connect container {container} to network {network}", attach)

    def detach_managers(self, network: str, owner: str) -> None:
        """Disconnect from ``network`` the machines of *other* clusters attached to it: the
        control-plane containers of a self-managed cluster whose controllers manage this one
        (each that led at some point attached itself). Containers that are not Shipyard
        machines are left alone."""
        def detach() -> None:
            attached = self.client.api.containers(all=True, filters={"network": network})
            for summary in attached:
                theirs = (summary.get("Labels") or {}).get(OWNER_LABEL)
                if not theirs or theirs == owner:
                    continue
                try:
                    self.client.networks.get(network).disconnect(summary["Id"])
                except docker.errors.NotFound:
                    pass
        self._call(f"disconnect other clusters' machines from network {network}", detach)

    def networks(self, owner: str) -> list[str]:
        nets = self._call("list networks", lambda: self.client.networks.list(
            filters={"label": f"{OWNER_LABEL}={owner}"}))
        return [str(n.name) for n in nets]

    # ----------------------------------------------------------------- containers

    def _get(self, name: str) -> Container | None:
        def get() -> Container | None:
            try:
                return self.client.containers.get(name)
            except docker.errors.NotFound:
                return None
        container: Container | None = self._call(f"inspect container {name}", get)
        return container

    def container(self, name: str, owner: str) -> ContainerState | None:
        """Our container ``name``; `NameConflict` when the name is somebody else's."""
        found = self._get(name)
        if found is None:
            return None
        labels = dict(found.labels or {})
        if labels.get(OWNER_LABEL) != owner:
            raise NameConflict(
                f"a container named {name} already exists and does not belong to this "
                f"cluster ({OWNER_LABEL}={labels.get(OWNER_LABEL, '<unset>')}); "
                "Shipyard leaves it alone")
        return _state(found)

    def containers(self, owner: str, role: str | None = None) -> list[ContainerState]:
        filters = [f"{OWNER_LABEL}={owner}"]
        if role:
            filters.append(f"{ROLE_LABEL}={role}")
        # The low-level list: summaries in one call. The high-level one inspects each
        # container in turn and fails when one is removed meanwhile.
        found = self._call("list containers", lambda: self.client.api.containers(
            all=True, filters={"label": filters}))
        return [_summary_state(c) for c in found]

    def run(self, spec: ContainerSpec) -> ContainerState:
        """Create and start the container (an existing one of ours is started if needed)."""
        def run() -> ContainerState:
            try:
                container = self.client.containers.get(spec.name)
            except docker.errors.NotFound:
                container = self.client.containers.create(
                    spec.image, command=spec.command, name=spec.name,
                    hostname=spec.hostname or spec.name, labels=spec.labels,
                    network=spec.network, volumes=spec.binds or None,
                    environment=spec.environment or None, detach=True,
                    stdin_open=False, tty=False)
            if container.status != "running":
                container.start()
            container.reload()
            return _state(container)
        state: ContainerState = self._call(f"run container {spec.name}", run)
        return state

    def logs(self, name: str, tail: int = 20) -> str:
        container = self._get(name)
        if container is None:
            return ""
        data = self._call(f"logs of {name}", lambda: container.logs(tail=tail))
        return bytes(data).decode(errors="replace").strip()

    def exec(self, name: str, argv: list[str], *, environment: dict[str, str] | None = None
             ) -> tuple[int, str]:
        container = self._get(name)
        if container is None:
            raise EngineError(f"container {name} is gone")
        result = self._call(f"exec in {name}", lambda: container.exec_run(
            argv, environment=environment, demux=False))
        output = result.output or b""
        return int(result.exit_code if result.exit_code is not None else -1), \
            bytes(output).decode(errors="replace")

    def put_files(self, name: str, files: dict[str, tuple[bytes, int]]) -> None:
        """Copy files into the container (absolute path → (content, mode)), parents made."""
        container = self._get(name)
        if container is None:
            raise EngineError(f"container {name} is gone")
        buffer = io.BytesIO()
        now = time.time()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            made: set[str] = set()
            for path, (content, mode) in sorted(files.items()):
                parts = path.strip("/").split("/")
                for i in range(1, len(parts)):
                    directory = "/".join(parts[:i])
                    if directory not in made:
                        made.add(directory)
                        info = tarfile.TarInfo(directory)
                        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(now)
                        tar.addfile(info)
                info = tarfile.TarInfo("/".join(parts))
                info.size, info.mode, info.mtime = len(content), mode, int(now)
                tar.addfile(info, io.BytesIO(content))
        ok = self._call(f"copy files into {name}",
                        lambda: container.put_archive("/", buffer.getvalue()))
        if not ok:
            raise EngineError(f"copy files into {name}: the engine refused the archive")

    def stop(self, name: str, timeout: int = 10) -> None:
        container = self._get(name)
        if container is not None:
            self._call(f"stop {name}", lambda: container.stop(timeout=timeout))

    def remove(self, name: str, owner: str) -> None:
        """Remove our container and its anonymous volumes; others' are left alone."""
        container = self._get(name)
        if container is None:
            return
        if (container.labels or {}).get(OWNER_LABEL) != owner:
            return

        def remove() -> None:
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        self._call(f"remove container {name}", remove)


def _state(container: Container) -> ContainerState:
    attrs = container.attrs
    state = attrs.get("State") or {}
    networks = ((attrs.get("NetworkSettings") or {}).get("Networks") or {})
    address = _own_address(networks, dict(container.labels or {}))
    image = str((attrs.get("Config") or {}).get("Image") or "")
    return ContainerState(name=str(container.name), status=str(state.get("Status") or ""),
                          exit_code=int(state.get("ExitCode") or 0), address=address,
                          labels=dict(container.labels or {}), image=image,
                          started_at=str(state.get("StartedAt") or ""))


def unix_socket(docker_host: str | None) -> str | None:
    """The engine's unix socket path (``docker_host``, else ``DOCKER_HOST``, else docker's
    default), or None for an engine reached over TCP."""
    url = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if url.startswith("unix://"):
        return url.removeprefix("unix://")
    return None


def _summary_state(summary: dict[str, Any]) -> ContainerState:
    networks = ((summary.get("NetworkSettings") or {}).get("Networks") or {})
    address = _own_address(networks, dict(summary.get("Labels") or {}))
    names = summary.get("Names") or [""]
    status = str(summary.get("State") or "")
    return ContainerState(name=str(names[0]).lstrip("/"), status=status, exit_code=0,
                          address=address if status == "running" else None,
                          labels=dict(summary.get("Labels") or {}),
                          image=str(summary.get("Image") or ""))


def _explain(error: docker.errors.APIError) -> str:
    explanation = error.explanation
    if isinstance(explanation, bytes):
        explanation = explanation.decode(errors="replace")
    return str(explanation or error)
