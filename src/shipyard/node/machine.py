"""Who this machine is, and where its filesystem lives.

Why: a process machine is a directory (its root filesystem) plus a loopback address. Every
part of the agent (cloud-init, kubeadm, kubelet) needs the same facts, written once by
``shipyard node run`` to ``root/etc/shipyard/machine.json`` (`save`) and read back (`load`).

`rooted(root, path)` maps a machine path to the host path: ``/etc/x`` → ``root/etc/x``; a path
already inside ``root`` is returned as is (commands may have been re-rooted before).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final, TypedDict

MACHINE_FILE: Final = "/etc/shipyard/machine.json"


class MachineInfo(TypedDict):
    root: str
    providerID: str
    address: str
    hostname: str


def rooted(root: Path, path: str) -> Path:
    host = Path(path)
    root = Path(root)
    if host.is_absolute() and (host == root or root in host.parents):
        return host
    return root / path.lstrip("/")


def save(info: MachineInfo) -> Path:
    path = rooted(Path(info["root"]), MACHINE_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info))
    return path


def load(root: Path) -> MachineInfo:
    info: MachineInfo = json.loads(rooted(root, MACHINE_FILE).read_text())
    return info


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by the owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)
