"""Starting the machine's long-running processes (etcd, API server, kubelet) as systemd would.

Why: ``kubeadm init`` must leave etcd, the API server and the kubelet running after it exits,
and all of them belong to the machine: killing the machine (its process group) must kill them,
and nothing may outlive it. ``shipyard node run`` is the machine's first process and leads a
session and process group; it exports that group as ``SHIPYARD_MACHINE_PGID``, and `start`
puts every service into it (whatever group the caller, a runcmd script, is in).

Each service logs to ``root/var/log/<name>.log`` and records its pid in
``root/run/shipyard/<name>.pid``. `stop` ends one with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from shipyard.node.machine import rooted

PGID_ENV: Final = "SHIPYARD_MACHINE_PGID"


def python_argv(*args: str) -> list[str]:
    """argv running the ``shipyard`` CLI with this interpreter."""
    return [sys.executable, "-m", "shipyard.cli", *args]


def log_path(root: Path, name: str) -> Path:
    return rooted(root, f"/var/log/{name}.log")


def pid_path(root: Path, name: str) -> Path:
    return rooted(root, f"/run/shipyard/{name}.pid")


def start(root: Path, name: str, argv: Sequence[str],
          env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    log = log_path(root, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    pgid = os.environ.get(PGID_ENV)
    group = int(pgid) if pgid else 0
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=root,
                                    env=dict(env if env is not None else os.environ),
                                    process_group=group)
        except PermissionError:
            # The machine's group is gone or in another session (kubeadm run by hand).
            proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=root,
                                    env=dict(env if env is not None else os.environ))
    pid_file = pid_path(root, name)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(proc.pid))
    return proc


def running(root: Path, name: str) -> int | None:
    """The service's pid if it is alive."""
    try:
        pid = int(pid_path(root, name).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def stop(root: Path, name: str, grace: float = 5.0) -> None:
    pid = running(root, name)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if running(root, name) is None:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
