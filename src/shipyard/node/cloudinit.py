"""Applying cloud-init user-data inside a Shipyard-native machine, as cloud-init would on a VM.

Why: bootstrap providers (kubeadm's CABPK above all) speak cloud-init. A process machine has no
cloud-init, so the node agent plays its part for the modules bootstrap data uses, on a machine
whose filesystem is the directory ``root``: every absolute path in the user-data means
``root/<path>``.

Contract (`apply(user_data, machine, ...)`):
- The ``## template: jinja`` first line makes the rest a template: ``{{ a.b.c }}`` expressions are
  looked up in cloud-init's instance data (`instance_data`: ``ds.meta_data.local_hostname``,
  ``ds.meta_data.hostname``, ``v1.local_hostname``, ``v1.instance_id``, ...). An unknown
  variable renders as cloud-init renders it, ``CI_MISSING_JINJA_VAR/<name>``. Only variable
  substitution is supported (no ``{% %}`` blocks).
- ``write_files``: path re-rooted under ``root``, parent directories created, ``encoding``
  (``b64``/``base64``, ``gz``/``gzip``, ``gz+b64``/``gzip+base64``, text otherwise),
  ``permissions`` (octal string, default 0644), ``append``, ``owner`` (``user:group``: applied
  only when running as root and the names resolve; otherwise recorded and ignored, as a process
  machine runs as one user).
- ``bootcmd`` then ``runcmd``: each becomes a ``sh`` script, one line per entry (a string as is,
  a list as its shell-quoted words), run like cloud-init runs it: without ``-e``, cwd ``root``,
  ``PATH`` starting with ``bin_dir`` (where the agent puts its ``kubeadm``), stdout and stderr
  appended to ``root/var/log/cloud-init-output.log``. Absolute paths in the scripts under the
  machine's own trees (``/run``, ``/etc``, ``/var``, ``/root``, ``/home``, ``/opt``, ``/srv``,
  ``/mnt``) are re-rooted too (`reroot_commands`), so upstream's
  ``echo success > /run/cluster-api/bootstrap-success.complete`` lands in the machine; system
  paths (``/usr``, ``/bin``, ``/tmp``, ``/dev``) are the host's. A script exiting non-zero, or
  running longer than ``timeout`` seconds (then its process group is killed), fails the boot.
- Other modules (``users``, ``ntp``, ``disk_setup``, ``fs_setup``, ``mounts``) are ignored and
  logged: a process machine has none of those to configure.
- The outcome goes to ``root/run/shipyard/status.json`` (`write_status`): ``phase`` is
  ``Booting`` while applying, then ``Running`` (every script exited 0) or ``Failed`` with a
  ``reason`` (``InvalidUserData``, ``WriteFilesFailed``, ``BootcmdFailed``, ``RuncmdFailed``) and a
  ``message`` ending with the tail of the script's output. Nothing here waits without a bound.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import json
import logging
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TypedDict

import yaml

from shipyard.node.machine import MachineInfo, rooted

log = logging.getLogger(__name__)

JINJA_HEADER: Final = "## template: jinja"
STATUS_PATH: Final = "/run/shipyard/status.json"
OUTPUT_LOG: Final = "/var/log/cloud-init-output.log"
DEFAULT_TIMEOUT: Final = 600.0
_EXPRESSION = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")
_MACHINE_PATH = re.compile(r"(?<![\w/.~$-])/(?:run|etc|var|root|home|opt|srv|mnt)(?=/|\b)")
_IGNORED = ("users", "ntp", "disk_setup", "fs_setup", "mounts")
_TAIL_LINES = 20


class Status(TypedDict, total=False):
    phase: str
    reason: str
    message: str
    time: str


class UserDataError(Exception):
    """The boot failed; ``reason`` is a CamelCase word for the status file."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def instance_data(machine: MachineInfo) -> dict[str, Any]:
    """The subset of cloud-init's instance-data.json templates refer to."""
    meta = {"local_hostname": machine["hostname"], "hostname": machine["hostname"],
            "instance_id": machine["hostname"], "local_ipv4": machine["address"],
            "provider_id": machine["providerID"]}
    v1 = {"local_hostname": machine["hostname"], "hostname": machine["hostname"],
          "instance_id": machine["hostname"], "cloud_name": "shipyard-process",
          "platform": "shipyard-process", "region": "", "availability_zone": ""}
    return {"ds": {"meta_data": meta}, "v1": v1, **{f"v1.{k}": v for k, v in v1.items()}}


def render_template(text: str, variables: Mapping[str, Any]) -> str:
    """Expand ``{{ dotted.name }}`` from ``variables`` (see the module doc)."""

    def value(m: re.Match[str]) -> str:
        node: Any = variables
        for part in m[1].split("."):
            if not isinstance(node, Mapping) or part not in node:
                return f"CI_MISSING_JINJA_VAR/{m[1]}"
            node = node[part]
        return str(node)

    return _EXPRESSION.sub(value, text)


def parse(user_data: str, machine: MachineInfo) -> dict[str, Any]:
    """The cloud-config document, templates expanded."""
    text = user_data
    first, _, rest = text.partition("\n")
    if first.strip() == JINJA_HEADER:
        text = render_template(rest, instance_data(machine))
    if not text.lstrip().startswith("#cloud-config"):
        raise UserDataError("InvalidUserData", "user-data is not a #cloud-config document")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserDataError("InvalidUserData", f"user-data is not valid YAML: {e}") from e
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UserDataError("InvalidUserData", "user-data is not a YAML mapping")
    return doc


def decode_content(content: str, encoding: str) -> bytes:
    enc = encoding.lower()
    if enc in ("b64", "base64"):
        return base64.b64decode(content)
    if enc in ("gz", "gzip"):
        return gzip.decompress(content.encode("latin-1"))
    if enc in ("gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
        return gzip.decompress(base64.b64decode(content))
    return content.encode()


def _chown(path: Path, owner: str) -> None:
    if os.geteuid() != 0:
        return
    import grp
    import pwd

    user, _, group = owner.partition(":")
    try:
        uid = pwd.getpwnam(user).pw_uid if user else -1
        gid = grp.getgrnam(group).gr_gid if group else -1
    except KeyError:
        log.info("owner %s of %s does not exist on this host; left as is", owner, path)
        return
    os.chown(path, uid, gid)


def write_files(root: Path, files: list[dict[str, Any]]) -> list[Path]:
    """cloud-init's write_files under ``root``; returns the paths written."""
    written = []
    for entry in files:
        if not isinstance(entry, dict) or not entry.get("path"):
            raise UserDataError("WriteFilesFailed", f"write_files entry without a path: {entry}")
        target = rooted(root, str(entry["path"]))
        try:
            data = decode_content(str(entry.get("content") or ""),
                                  str(entry.get("encoding") or "text/plain"))
            mode = int(str(entry.get("permissions") or "0644"), 8)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("ab" if entry.get("append") else "wb") as f:
                f.write(data)
            target.chmod(mode)
            if entry.get("owner"):
                _chown(target, str(entry["owner"]))
        except (OSError, ValueError) as e:
            raise UserDataError("WriteFilesFailed", f"writing {entry['path']}: {e}") from e
        written.append(target)
    return written


def reroot_commands(text: str, root: Path) -> str:
    """Prefix the machine's absolute paths in shell text with ``root`` (see the module doc)."""
    prefix = str(root).rstrip("/")
    return _MACHINE_PATH.sub(lambda m: prefix + m[0], text)


def script(commands: list[Any] | str) -> str:
    """A module's commands as the shell script cloud-init would run."""
    if isinstance(commands, str):
        return "#!/bin/sh\n" + commands + "\n"
    lines = []
    for command in commands:
        if isinstance(command, list):
            lines.append(" ".join(shlex.quote(str(word)) for word in command))
        else:
            lines.append(str(command))
    return "#!/bin/sh\n" + "\n".join(lines) + "\n"


def _tail(path: Path, start: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-_TAIL_LINES:])


def run_script(root: Path, name: str, commands: list[Any] | str, *, env: Mapping[str, str],
               timeout: float) -> None:
    """Run one module's script; raises `UserDataError` unless it exits 0 in time."""
    reason = f"{name.capitalize()}Failed"
    scripts = rooted(root, "/var/lib/cloud/instance/scripts")
    scripts.mkdir(parents=True, exist_ok=True)
    path = scripts / name
    path.write_text(reroot_commands(script(commands), root))
    path.chmod(0o700)
    output = rooted(root, OUTPUT_LOG)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = output.stat().st_size if output.exists() else 0
    with output.open("ab") as out:
        # Its own process group, so a timeout kills whatever the script started in the
        # foreground; daemons it starts (kubeadm's etcd, API server, kubelet) join the
        # machine's group by calling `services.start`.
        proc = subprocess.Popen(["/bin/sh", str(path)], cwd=root, env=dict(env), stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                process_group=0)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise UserDataError(reason, f"{name} did not finish within {timeout:.0f} s: "
                                        f"{_tail(output, start)}") from None
    if code != 0:
        raise UserDataError(reason, f"{name} exited with status {code}: {_tail(output, start)}")


def write_status(root: Path, phase: str, reason: str = "", message: str = "") -> None:
    status: Status = {"phase": phase, "time": datetime.datetime.now(datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    path = rooted(root, STATUS_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(path)


def read_status(root: Path) -> Status | None:
    try:
        status: Status = json.loads(rooted(root, STATUS_PATH).read_text())
    except (OSError, ValueError):
        return None
    return status


def apply(user_data: str, machine: MachineInfo, *, bin_dir: Path | None = None,
          timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Apply ``user_data`` to the machine; the outcome is in the status file. True on success."""
    root = Path(machine["root"])
    write_status(root, "Booting")
    env = dict(os.environ)
    path = env.get("PATH", "/usr/bin:/bin")
    env["PATH"] = f"{bin_dir}:{path}" if bin_dir else path
    env["SHIPYARD_NODE_ROOT"] = str(root)
    env["HOME"] = str(rooted(root, "/root"))
    try:
        doc = parse(user_data, machine)
        for module in _IGNORED:
            if doc.get(module):
                log.info("cloud-init module %s is not applicable to a process machine", module)
        write_files(root, list(doc.get("write_files") or []))
        for name in ("bootcmd", "runcmd"):
            if doc.get(name):
                run_script(root, name, doc[name], env=env, timeout=timeout)
    except UserDataError as e:
        log.error("boot failed: %s: %s", e.reason, e)
        write_status(root, "Failed", e.reason, str(e))
        return False
    write_status(root, "Running")
    return True
