"""Process machines on this host: their directories, loopback addresses and process trees.

Why a separate concern: the controller decides *when* a machine exists; this module decides
*how*, and keeps every fact on disk so a restarted controller finds its machines again.

Layout under the provider's data directory, per machine ``machines/<namespace>/<name>/``:
- ``address``: the machine's loopback address, unique among the directories present
  (``<prefix>.<x>.<y>``, e.g. ``127.77.0.5``; allocation is under a process-wide lock and
  the directory is the reservation, so deleting it frees the address). A candidate whose
  well-known ports (`MACHINE_PORTS`: API server, etcd) something on the host already listens
  on is skipped, so machines of another data directory or provider are never collided with;
- ``user-data``: the bootstrap data the machine booted from;
- ``root/``: the machine's filesystem (``root/run/shipyard/status.json`` is the node agent's
  boot outcome);
- ``pid``: the pid of ``shipyard node run``, started detached in a new session (so its pid is
  also the process group of everything the machine runs), with output in ``agent.log``.

A machine whose process is gone stays gone (`alive` is False): as upstream's infrastructure
providers never resurrect a dead VM, so MachineHealthCheck can remediate it. `stop` sends
SIGTERM to the machine's process group, SIGKILL after a grace period, and waits until no
process of the group is left; `remove` then deletes the directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Final

STOP_GRACE: Final = 10.0
MACHINE_PORTS: Final = (6443, 2379, 2380)
STATUS_FILE: Final = "root/run/shipyard/status.json"

_allocation = threading.Lock()
_children: dict[int, subprocess.Popen[bytes]] = {}
"""Machines this process started, by pid, until reaped: process-wide, so a Supervisor made
after another one (a restarted manager in the same process) still reaps them."""


class Supervisor:
    def __init__(self, data_dir: Path, address_prefix: str = "127.77") -> None:
        self.data_dir = Path(data_dir)
        self.address_prefix = address_prefix

    def machine_dir(self, namespace: str, name: str) -> Path:
        return self.data_dir / "machines" / namespace / name

    # ----------------------------------------------------------------- addresses

    def _addresses_in_use(self) -> set[str]:
        used = set()
        for path in (self.data_dir / "machines").glob("*/*/address"):
            with contextlib.suppress(OSError):
                used.add(path.read_text().strip())
        return used

    def address(self, namespace: str, name: str) -> str:
        """The machine's address, allocating one on first call."""
        directory = self.machine_dir(namespace, name)
        path = directory / "address"
        with _allocation:
            if path.exists():
                return path.read_text().strip()
            used = self._addresses_in_use()
            for x in range(256):
                for y in range(1, 255):
                    candidate = f"{self.address_prefix}.{x}.{y}"
                    if candidate not in used and _ports_free(candidate):
                        directory.mkdir(parents=True, exist_ok=True)
                        path.write_text(candidate)
                        return candidate
        raise RuntimeError(f"no free address left in {self.address_prefix}.0.0/16")

    # ----------------------------------------------------------------- processes

    def pid(self, namespace: str, name: str) -> int | None:
        try:
            return int((self.machine_dir(namespace, name) / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def started(self, namespace: str, name: str) -> bool:
        return self.pid(namespace, name) is not None

    def start(self, namespace: str, name: str, *, user_data: bytes, provider_id: str,
              hostname: str) -> int:
        directory = self.machine_dir(namespace, name)
        address = self.address(namespace, name)
        root = directory / "root"
        root.mkdir(parents=True, exist_ok=True)
        (directory / "user-data").write_bytes(user_data)
        argv = [sys.executable, "-m", "shipyard.cli", "node", "run", "--root", str(root),
                "--user-data", str(directory / "user-data"), "--provider-id", provider_id,
                "--address", address, "--hostname", hostname]
        with (directory / "agent.log").open("ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=directory,
                                    start_new_session=True)
        _children[proc.pid] = proc
        (directory / "pid").write_text(str(proc.pid))
        return proc.pid

    def _reap(self) -> None:
        for pid, proc in list(_children.items()):
            if proc.poll() is not None:
                del _children[pid]

    def alive(self, namespace: str, name: str) -> bool:
        """Whether the machine's agent process still runs."""
        pid = self.pid(namespace, name)
        if pid is None:
            return False
        self._reap()
        return _running(pid, str(self.machine_dir(namespace, name) / "root"))

    def status(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The node agent's boot outcome (phase, reason, message), if written yet."""
        try:
            status: dict[str, Any] = json.loads(
                (self.machine_dir(namespace, name) / STATUS_FILE).read_text())
        except (OSError, ValueError):
            return None
        return status

    def stop(self, namespace: str, name: str, grace: float = STOP_GRACE) -> None:
        """Stop every process of the machine (blocking; call it in a thread)."""
        pid = self.pid(namespace, name)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _group_alive(pid) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.05)
        if _group_alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            while _group_alive(pid):
                self._reap()
                time.sleep(0.05)
        self._reap()
        with contextlib.suppress(OSError):
            (self.machine_dir(namespace, name) / "pid").unlink()

    def remove(self, namespace: str, name: str) -> None:
        """Stop the machine and delete its files (which frees its address)."""
        self.stop(namespace, name)
        directory = self.machine_dir(namespace, name)
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            directory.parent.rmdir()

    def close(self) -> None:
        """Forget (do not stop) the machines: they survive the controller."""
        self._reap()


def _ports_free(address: str) -> bool:
    for port in MACHINE_PORTS:
        with socket.socket() as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _running(pid: int, root: str) -> bool:
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return root.encode() in cmdline  # not a recycled pid


def _group_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat(int(entry))
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            return True
    return False
