"""Bootstrap data applied to a container the way CAPD applies it: cloud-init translated into
commands the engine executes in the container.

Why: a container has no cloud-init and no metadata service. As upstream's Docker provider does,
the controller reads the Machine's cloud-config itself and performs its actions from outside:
the files are copied in, the commands are executed one by one, and success is judged by the
sentinel file the kubeadm bootstrap provider's last command writes
(``/run/cluster-api/bootstrap-success.complete``).

Contract: `plan(user_data, machine)` turns user-data into `Step`s, in cloud-init's order:
1. ``shipyard node prepare``: records who the machine is (address, hostname, providerID) for
   the node agent (``/etc/shipyard/machine.json``), as cloud-init's datasource would;
2. ``write_files``: one copy of every file (``encoding`` b64/gzip decoded, ``permissions``
   honoured, ``owner`` applied with ``chown``, ``append`` by a copy and a ``cat >>``);
3. ``bootcmd`` then ``runcmd``: one exec per entry (a string through ``/bin/sh -c``, a list as
   argv), stopping at the first non-zero exit.
``## template: jinja`` user-data is rendered first with the machine's instance data (CAPD's
own images run cloud-init's jinja; the kubeadm bootstrap provider relies on
``{{ ds.meta_data.local_hostname }}``). Modules a container has no use for (users, ntp,
disk_setup, mounts...) are listed in `Plan.ignored`. `apply(engine, container, plan)` runs it
and raises `BootstrapError(reason, message)` with the failing command and its output's tail.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Final

from shipyard.node.cloudinit import UserDataError, decode_content, parse
from shipyard.node.machine import MachineInfo
from shipyard.providers.docker.engine import Engine

SENTINEL: Final = "/run/cluster-api/bootstrap-success.complete"
STARTED: Final = "/run/cluster-api/bootstrap-started"
HANDLED: Final = frozenset({"write_files", "bootcmd", "runcmd"})
OUTPUT_TAIL: Final = 2000


class BootstrapError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Step:
    description: str
    argv: list[str] | None = None
    files: dict[str, tuple[bytes, int]] | None = None


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _mode(entry: dict[str, Any]) -> int:
    permissions = entry.get("permissions")
    if permissions is None:
        return 0o644
    try:
        return int(str(permissions), 8)
    except ValueError as e:
        raise BootstrapError("InvalidUserData",
                             f"write_files {entry.get('path')}: bad permissions "
                             f"{permissions!r}") from e


def _command(entry: Any) -> list[str]:
    if isinstance(entry, list):
        return [str(word) for word in entry]
    return ["/bin/sh", "-c", str(entry)]


def plan(user_data: str, machine: MachineInfo) -> Plan:
    try:
        doc = parse(user_data, machine)
    except UserDataError as e:
        raise BootstrapError(e.reason, str(e)) from e
    result = Plan()
    result.steps.append(Step("record the machine's identity", argv=[
        "shipyard", "node", "prepare", "--address", machine["address"],
        "--hostname", machine["hostname"], "--provider-id", machine["providerID"]]))
    result.steps.append(Step("mark the bootstrap as started", argv=[
        "/bin/sh", "-c", f"mkdir -p {shlex.quote(STARTED.rsplit('/', 1)[0])} && "
                         f"touch {shlex.quote(STARTED)}"]))
    files: dict[str, tuple[bytes, int]] = {}
    after: list[Step] = []
    for i, entry in enumerate(doc.get("write_files") or []):
        if not isinstance(entry, dict) or not entry.get("path"):
            raise BootstrapError("InvalidUserData", f"write_files entry {i} has no path")
        path = str(entry["path"])
        content = decode_content(str(entry.get("content") or ""),
                                 str(entry.get("encoding") or "text/plain"))
        mode = _mode(entry)
        if entry.get("append"):
            staged = f"/run/shipyard/append/{i}"
            files[staged] = (content, 0o600)
            after.append(Step(f"append to {path}", argv=[
                "/bin/sh", "-c", f"mkdir -p \"$(dirname {shlex.quote(path)})\" && "
                                 f"cat {staged} >> {shlex.quote(path)} && rm -f {staged}"]))
        else:
            files[path] = (content, mode)
        owner = str(entry.get("owner") or "root:root")
        if owner not in ("root", "root:root"):
            after.append(Step(f"chown {path}", argv=["chown", owner, path]))
    if files:
        result.steps.append(Step(f"write {len(files)} file(s)", files=files))
    result.steps.extend(after)
    for module in ("bootcmd", "runcmd"):
        commands = doc.get(module) or []
        if isinstance(commands, str):
            commands = [commands]
        for entry in commands:
            argv = _command(entry)
            result.steps.append(Step(f"{module}: {shlex.join(argv)}"[:200], argv=argv))
    result.ignored = sorted(k for k in doc if k not in HANDLED)
    return result


def apply(engine: Engine, container: str, bootstrap: Plan) -> None:
    """Run the plan in the container (blocking); raises `BootstrapError` on the first failure."""
    for step in bootstrap.steps:
        if step.files is not None:
            engine.put_files(container, step.files)
            continue
        assert step.argv is not None
        code, output = engine.exec(container, step.argv)
        if code != 0:
            raise BootstrapError("BootstrapFailed",
                                 f"{step.description} exited with status {code}: "
                                 f"{output[-OUTPUT_TAIL:].strip()}")
    code, _ = engine.exec(container, ["test", "-f", SENTINEL])
    if code != 0:
        raise BootstrapError("BootstrapFailed",
                             f"the bootstrap data ran but did not write {SENTINEL}")


def state(engine: Engine, container: str) -> str:
    """``Succeeded``, ``Started`` (begun, not finished) or ``NotStarted``, from the files."""
    code, output = engine.exec(container, [
        "/bin/sh", "-c", f"if [ -f {SENTINEL} ]; then echo Succeeded; "
                         f"elif [ -f {STARTED} ]; then echo Started; else echo NotStarted; fi"])
    return output.strip() if code == 0 else "NotStarted"
