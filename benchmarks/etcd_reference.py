"""The reference system, when installed: raw etcd 3.x puts through its JSON gateway.

kube-apiserver's own write path ends in an etcd put, so the throughput of bare etcd puts of the
same 1 KB value, from the same client code at the same concurrency, bounds what a real cluster
could do on this machine. It is only a reference: no TLS, no admission, no JSON validation, no
watch cache. Debian ships it (``apt-get install etcd-server``); when the binary is missing the
column is left out.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.server import Target


def etcd_binary() -> str | None:
    return shutil.which("etcd")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EtcdProcess:
    """A single-member etcd on free loopback ports and a temporary data directory."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.target: Target | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> EtcdProcess:
        self._tmp = tempfile.TemporaryDirectory(prefix="shipyard-bench-etcd-")
        client, peer = _free_port(), _free_port()
        client_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        self.proc = subprocess.Popen(
            [self.binary, "--name", "bench", "--data-dir", str(Path(self._tmp.name) / "data"),
             "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", f"bench={peer_url}", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(client_url + "/health", timeout=1) as resp:
                    if b"true" in resp.read():
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("etcd did not become healthy")
            time.sleep(0.1)
        self.target = Target(url=client_url, token="", ca_pem="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
