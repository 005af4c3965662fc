"""``shipyard node``: the agent inside a Shipyard-native (process) machine.

- ``shipyard node run --root DIR --user-data FILE --provider-id ID --address A --hostname H``
  is the machine's first process: it records who the machine is, applies the cloud-init
  user-data (`shipyard.node.cloudinit`; the outcome in ``DIR/run/shipyard/status.json``) with
  a ``kubeadm`` on PATH that is this agent's, then stays up as the machine's init until SIGTERM
  (or SIGINT), when it stops every process of the machine (its process group) and exits 0. A
  failed boot stays up too, as a broken VM stays on: the provider reads the status file.
- ``shipyard node kubeadm --root DIR init|join|reset ...``: kubeadm-compatible commands
  (`shipyard.node.kubeadm`); errors are printed as kubeadm prints them and exit 1.
- ``shipyard node kubelet --root DIR``: the machine's kubelet daemon (`shipyard.node.kubelet`).

In a container machine (the Docker provider) the root is ``/`` and the provider drives the boot
from outside, as CAPD does: the container's first process is ``shipyard node init`` (an init:
reaps orphans, and on SIGTERM stops every process of the container); the provider executes
``shipyard node prepare`` (records who the machine is), copies the user-data's files in and
executes its commands. The cluster's load-balancer container runs ``shipyard node
loadbalancer``, whose backends file the provider rewrites as control-plane machines come and go.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from pathlib import Path

import click

_root_option = click.option("--root", type=click.Path(file_okay=False, path_type=Path),
                            required=True, help="The machine's filesystem root.")


def _logging(level: str = "info") -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.group("node")
def node() -> None:
    """The node agent of a Shipyard-native machine."""


@node.command("run")
@_root_option
@click.option("--user-data", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--provider-id", required=True)
@click.option("--address", required=True, help="The machine's (loopback) IP address.")
@click.option("--hostname", required=True)
@click.option("--timeout", type=float, default=600.0, show_default=True,
              help="Seconds bootcmd and runcmd may each take.")
@click.option("--exit-after-boot", is_flag=True, help="Exit once user-data is applied "
              "(status 1 on failure) instead of staying up as the machine's init.")
def run(root: Path, user_data: Path, provider_id: str, address: str, hostname: str,
        timeout: float, exit_after_boot: bool) -> None:
    """Boot the machine from cloud-init user-data and keep it running."""
    from shipyard.node import cloudinit, machine

    _logging()
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    info: machine.MachineInfo = {"root": str(root), "providerID": provider_id,
                                 "address": address, "hostname": hostname}
    machine.save(info)
    if os.getpid() == os.getpgid(0):
        os.environ["SHIPYARD_MACHINE_PGID"] = str(os.getpgid(0))
    bin_dir = machine.rooted(root, "/usr/local/shipyard/bin")
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "kubeadm"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m shipyard.cli node kubeadm "
                    f"--root '{root}' \"$@\"\n")
    shim.chmod(0o755)
    stopping = False

    def terminate(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    ok = cloudinit.apply(user_data.read_text(), info, bin_dir=bin_dir, timeout=timeout)
    if exit_after_boot:
        sys.exit(0 if ok else 1)
    while not stopping:
        signal.pause()
    _stop_machine()


def _stop_machine() -> None:
    """SIGTERM every other process of the machine's group, then SIGKILL what is left."""
    import time

    pgid = os.getpgid(0)
    if pgid != os.getpid():
        return  # not the machine's leader (run by hand): leave the caller's group alone
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)
    if _others_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)


def _others_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            return True
    return False


@node.command("init")
@click.option("--grace", type=float, default=5.0, show_default=True,
              help="Seconds processes get between SIGTERM and SIGKILL at shutdown.")
def init(grace: float) -> None:
    """A container machine's first process: reap orphans; on SIGTERM stop everything."""
    import time

    stopping = False

    def terminate(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    while not stopping:
        _reap_all()
        signal.pause()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGTERM)  # every process of the container but this one
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _reap_all():
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)
    while _reap_all():
        time.sleep(0.01)


def _reap_all() -> bool:
    """Reap finished children; True while some child is still alive."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


@node.command("prepare")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/"),
              show_default=True, help="The machine's filesystem root.")
@click.option("--provider-id", required=True)
@click.option("--address", required=True, help="The machine's IP address.")
@click.option("--hostname", required=True)
def prepare(root: Path, provider_id: str, address: str, hostname: str) -> None:
    """Record who this machine is (as cloud-init's datasource would) for kubeadm and kubelet."""
    from shipyard.node import machine

    machine.save({"root": str(root.resolve()), "providerID": provider_id,
                  "address": address, "hostname": hostname})


@node.command("loadbalancer")
@click.option("--port", type=int, default=6443, show_default=True)
@click.option("--backends-file", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("/etc/shipyard/backends.json"), show_default=True,
              help='JSON list of "host:port" backends, re-read whenever it changes.')
def loadbalancer(port: int, backends_file: Path) -> None:
    """A TCP load balancer in front of the control-plane machines (the cluster's endpoint)."""
    import asyncio
    import json

    from shipyard.providers.process.loadbalancer import LoadBalancer

    _logging()
    seen: tuple[float, list[tuple[str, int]]] = (-1.0, [])

    def backends() -> list[tuple[str, int]]:
        nonlocal seen
        try:
            mtime = backends_file.stat().st_mtime
            if mtime != seen[0]:
                entries = json.loads(backends_file.read_text())
                parsed = []
                for entry in entries:
                    host, _, number = str(entry).rpartition(":")
                    parsed.append((host, int(number)))
                seen = (mtime, parsed)
        except (OSError, ValueError):
            pass
        return seen[1]

    async def serve() -> None:
        balancer = LoadBalancer(port, backends, host="0.0.0.0")
        await balancer.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await balancer.close()

    asyncio.run(serve())


@node.group("kubeadm", context_settings={"ignore_unknown_options": True})
@_root_option
@click.pass_context
def kubeadm(ctx: click.Context, root: Path) -> None:
    """kubeadm-compatible init and join for this machine."""
    ctx.obj = root.resolve()


def _fail(error: Exception) -> None:
    click.echo(f"error execution phase: {error}", err=True)
    sys.exit(1)


@kubeadm.command("init", context_settings={"ignore_unknown_options": True})
@click.option("--config", required=True)
@click.option("--v", "verbosity", default="0")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def kubeadm_init(root: Path, config: str, verbosity: str, extra: tuple[str, ...]) -> None:
    """kubeadm init --config FILE."""
    from shipyard.node import kubeadm as impl

    _logging("debug" if verbosity not in ("", "0") else "warning")
    try:
        impl.init(root, config)
    except impl.KubeadmError as e:
        _fail(e)
    click.echo("Your Kubernetes control-plane has initialized successfully!")


@kubeadm.command("join", context_settings={"ignore_unknown_options": True})
@click.argument("endpoint", required=False)
@click.option("--config", default="")
@click.option("--control-plane", is_flag=True)
@click.option("--token", "--discovery-token", "token", default=None)
@click.option("--discovery-token-ca-cert-hash", "ca_hashes", multiple=True)
@click.option("--v", "verbosity", default="0")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def kubeadm_join(root: Path, endpoint: str | None, config: str, control_plane: bool,
                 token: str | None, ca_hashes: tuple[str, ...], verbosity: str,
                 extra: tuple[str, ...]) -> None:
    """kubeadm join --config FILE [--control-plane]."""
    from shipyard.node import kubeadm as impl

    _logging("debug" if verbosity not in ("", "0") else "warning")
    try:
        impl.join(root, config, control_plane, token=token, ca_hashes=list(ca_hashes),
                  endpoint=endpoint)
    except impl.KubeadmError as e:
        _fail(e)
    click.echo("This node has joined the cluster.")


@kubeadm.command("reset", context_settings={"ignore_unknown_options": True})
@click.argument("extra", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def kubeadm_reset(root: Path, extra: tuple[str, ...]) -> None:
    """kubeadm reset: stop the machine's services and remove their state."""
    from shipyard.node import kubeadm as impl

    impl.reset(root)


@node.command("kubelet")
@_root_option
def kubelet(root: Path) -> None:
    """The machine's kubelet: registers its Node and keeps it Ready."""
    import asyncio

    from shipyard.node import kubelet as impl

    _logging("warning")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    asyncio.run(impl.run(root.resolve()))
