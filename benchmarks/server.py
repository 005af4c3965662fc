"""The server under test: `shipyard apiserver` as a child process, and how to reach and meter it.

Why a subprocess: load generator and server must not share a GIL, or the figures measure
the client. `ServerProcess` starts ``python -m shipyard.cli apiserver`` on a free loopback port
with its own data directory, waits for the port file, and reads the admin kubeconfig it wrote
(server URL, CA, bearer token). `Target` is the picklable part a client process needs.
`CpuMeter` and `rss_bytes` read /proc, so the server's own CPU and memory are reported next to
the client-side figures. `MeasuredServer` is what a measurement needs from any server under test
(this one, or kube-apiserver + etcd in `benchmarks.kube_reference`): a `Target` and the process
ids whose CPU and memory count as "the server".
"""

from __future__ import annotations

import base64
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to reach a server: enough for a client in another process."""

    url: str
    token: str
    ca_pem: str

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.ca_pem)
        return ctx

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}


def target_from_kubeconfig(path: Path) -> Target:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode("ascii")
    return Target(url=cluster["server"], token=user["token"], ca_pem=ca)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc/PID/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident set size of the processes together, from /proc/PID/status."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                break
        else:
            raise RuntimeError(f"no VmRSS for pid {pid}")
    return total


class MeasuredServer(Protocol):
    """A running server under test: how clients reach it, which processes are "the server"."""

    @property
    def target(self) -> Target | None: ...

    @property
    def pids(self) -> list[int]: ...


def host_cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole host, to report how loaded the machine was."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return float(total - idle), float(total)


class CpuMeter:
    """CPU used by processes between `start` and `stop`, in cores (1.0 = one core busy)."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self._cpu = 0.0
        self._wall = 0.0
        self.cores = 0.0

    def start(self) -> None:
        self._cpu = sum(cpu_seconds(pid) for pid in self.pids)
        self._wall = time.perf_counter()

    def stop(self) -> float:
        wall = time.perf_counter() - self._wall
        used = sum(cpu_seconds(pid) for pid in self.pids) - self._cpu
        self.cores = used / wall if wall > 0 else 0.0
        return self.cores


class ServerProcess:
    """`shipyard apiserver` in a child process, for the length of a ``with`` block."""

    def __init__(
        self, *, log_level: str = "warning", startup_timeout: float = 30.0,
        command: list[str] | None = None,
    ) -> None:
        # ``command`` replaces ``python -m shipyard.cli`` (to try a patched server, say).
        self.command = command or [sys.executable, "-m", "shipyard.cli"]
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.target: Target | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def pids(self) -> list[int]:
        return [self.pid]

    def __enter__(self) -> ServerProcess:
        self._tmp = tempfile.TemporaryDirectory(prefix="shipyard-bench-")
        data_dir = Path(self._tmp.name) / "data"
        port_file = Path(self._tmp.name) / "port"
        self._log = open(Path(self._tmp.name) / "server.log", "wb")
        self.proc = subprocess.Popen(
            [*self.command, "apiserver", "--data-dir", str(data_dir),
             "--port", "0", "--port-file", str(port_file), "--key-type", "ecdsa",
             "--log-level", self.log_level, "--shutdown-timeout", "1"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.startup_timeout
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the API server did not start: {self.log_tail()}")
            time.sleep(0.05)
        self.target = target_from_kubeconfig(data_dir / "kubeconfig")
        return self

    def log_tail(self, lines: int = 20) -> str:
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._tmp is not None:
            self._log.close()
            self._tmp.cleanup()
            self._tmp = None
