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
"""

from __future__ import annotations

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
