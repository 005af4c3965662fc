"""The reference system: upstream kube-apiserver 1.33 on a durable etcd 3.5, as child processes.

Why: a figure for Shipyard's API server means little alone; the same measurements against the
real thing, on the same machine in the same run, say whether it is fast *enough*. This starts
what ``scripts/build-kube-binaries`` built (``${SHIPYARD_KUBE_BIN:-~/.cache/shipyard/kube-bin}/
v<KUBE_VERSION>/``): a single-member etcd with its defaults (every commit fsynced to the WAL
before it is acknowledged, as Shipyard's SQLite with ``synchronous=FULL``; no
``--unsafe-no-fsync``, unlike the test tier in ``tests/realkube.py``) and kube-apiserver with TLS
(an ECDSA serving certificate from `shipyard.apiserver.certs`, as the Shipyard server uses), a
static bearer token for an admin in ``system:masters`` and RBAC on. No controller manager: the
benchmark needs none. Everything lives in a temporary directory removed on exit.

Contract: `kube_binaries()` returns the binaries or None; `KubeProcesses` is a context manager
satisfying `benchmarks.server.MeasuredServer` once ``/readyz`` answers: ``target`` for clients,
``pids`` = [kube-apiserver, etcd], so CPU and RSS figures are the two together. Start-up
failure raises `RuntimeError` with the tail of the failing component's log. On exit each process
gets SIGTERM, then SIGKILL after ten seconds.

This module does not import ``tests/realkube.py``: that one pulls pytest in and runs etcd without
fsync, which would flatter kube's write figures.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks.server import Target
from shipyard.apiserver import certs

KUBE_VERSION = "1.33.13"  # keep in step with scripts/build-kube-binaries
START_TIMEOUT = 90.0
STOP_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class KubeBinaries:
    etcd: Path
    kube_apiserver: Path


def kube_binaries() -> KubeBinaries | None:
    """The built kube-apiserver and etcd, or None when ``build-kube-binaries`` has not run."""
    root = os.environ.get("SHIPYARD_KUBE_BIN") or str(Path.home() / ".cache/shipyard/kube-bin")
    directory = Path(root) / f"v{KUBE_VERSION}"
    found = KubeBinaries(directory / "etcd", directory / "kube-apiserver")
    if all(p.is_file() and os.access(p, os.X_OK) for p in (found.etcd, found.kube_apiserver)):
        return found
    return None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _http_ok(url: str, token: str = "", ca_file: Path | None = None) -> bool:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class KubeProcesses:
    """etcd + kube-apiserver for the length of a ``with`` block."""

    def __init__(self, binaries: KubeBinaries) -> None:
        self.binaries = binaries
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.target: Target | None = None

    @property
    def pids(self) -> list[int]:
        return [self._procs["kube-apiserver"].pid, self._procs["etcd"].pid]

    def _root(self) -> Path:
        assert self._tmp is not None
        return Path(self._tmp.name)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self._root() / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _spawn(self, name: str, argv: list[str]) -> None:
        with (self._root() / f"{name}.log").open("wb") as log:
            self._procs[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self._root(), start_new_session=True)

    def _wait(self, name: str, ready_url: str, token: str = "",
              ca_file: Path | None = None) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not _http_ok(ready_url, token, ca_file):
            if self._procs[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready:\n{self.log_tail(name)}")
            time.sleep(0.1)

    def __enter__(self) -> KubeProcesses:
        self._tmp = tempfile.TemporaryDirectory(prefix="shipyard-bench-kube-")
        root = self._root()
        try:
            self._start(root)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, root: Path) -> None:
        pki = certs.ensure_pki(root / "pki", key_type="ecdsa")
        sa_key = root / "pki" / "service-account.key"
        certs.write_key(sa_key, certs.generate_key("rsa"))
        client_port, peer_port, secure_port = _free_ports(3)
        etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        # etcd defaults otherwise: WAL fsync on every commit, bbolt backend synced.
        self._spawn("etcd", [
            str(self.binaries.etcd), "--name=bench", f"--data-dir={root / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=bench={peer_url}", "--initial-cluster-state=new",
            "--log-level=warn",
        ])
        self._wait("etcd", f"{etcd_url}/health")
        url = f"https://127.0.0.1:{secure_port}"
        self._spawn("kube-apiserver", [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={secure_port}", f"--cert-dir={root / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}", f"--token-auth-file={pki.token_file}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.0.0.0/24",
            # A loopback address may not be an Endpoints address, so the "kubernetes"
            # Service's reconciler would fail in a loop; nothing here uses that Service.
            "--endpoint-reconciler-type=none",
            "--v=1",
        ])
        self._wait("kube-apiserver", f"{url}/readyz", pki.admin_token, pki.ca_cert)
        self.target = Target(url=url, token=pki.admin_token,
                             ca_pem=pki.ca_cert.read_text(encoding="ascii"))

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(list(self._procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._procs.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
