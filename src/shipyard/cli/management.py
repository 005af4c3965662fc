"""``shipyard management up|down|status``: the embedded management plane as a background service.

``up`` starts ``shipyard apiserver`` detached (own session, stdin from /dev/null, output appended
to ``DIR/apiserver.log``), records its pid in ``DIR/apiserver.pid`` and returns only once
``/readyz`` answers 200 to the admin token over verified TLS; if the server exits or does not get
ready in time, it is stopped and ``up`` fails with the tail of the log. ``up`` on a running plane
changes nothing. ``down`` sends SIGTERM, waits, then SIGKILLs; data stays. ``status`` exits 0 when
running and 3 when stopped, as ``systemctl status`` does.

The data directory defaults to ``~/.shipyard/management``; ``$SHIPYARD_HOME`` replaces
``~/.shipyard``. A pid counts as ours only if the process is alive, not a zombie and (where /proc
tells) its command line is ``apiserver`` on this data directory, so a recycled pid is "stopped".
"""

from __future__ import annotations

import os
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import click

STATUS_STOPPED = 3
LOG_TAIL_LINES = 20


def default_data_dir() -> Path:
    root = os.environ.get("SHIPYARD_HOME")
    return (Path(root).expanduser() if root else Path.home() / ".shipyard") / "management"


@dataclass(frozen=True, slots=True)
class Plane:
    """The files of one management plane's data directory."""

    dir: Path

    @property
    def pid_file(self) -> Path:
        return self.dir / "apiserver.pid"

    @property
    def port_file(self) -> Path:
        return self.dir / "apiserver.port"

    @property
    def log_file(self) -> Path:
        return self.dir / "apiserver.log"

    @property
    def controllers_pid_file(self) -> Path:
        return self.dir / "controllers.pid"

    @property
    def controllers_log(self) -> Path:
        return self.dir / "controllers.log"

    @property
    def controllers_args_file(self) -> Path:
        return self.dir / "controllers.args"

    def controllers_pid(self) -> int | None:
        """The pid of `shipyard controllers` started by `shipyard init`, if it still runs."""
        try:
            pid = int(self.controllers_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return pid
        return pid if b"controllers" in cmdline else None

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def ca_cert(self) -> Path:
        return self.dir / "pki" / "ca.crt"

    @property
    def token_file(self) -> Path:
        return self.dir / "pki" / "tokens.csv"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def url(self) -> str | None:
        port = self.port()
        return f"https://127.0.0.1:{port}" if port else None

    def running_pid(self) -> int | None:
        pid = self.pid()
        if pid is not None and alive(pid) and self._is_ours(pid):
            return pid
        return None

    def _is_ours(self, pid: int) -> bool:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # no /proc: trust the pid file
        return b"apiserver" in argv and os.fsencode(self.dir) in argv

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def alive(pid: int) -> bool:
    """Whether ``pid`` runs; reaps it if it is our exited child (``up`` in the same process)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def ready(plane: Plane, timeout: float = 2.0) -> bool:
    """Whether ``/readyz`` answers 200 to the admin token over TLS verified by our CA."""
    url = plane.url()
    if url is None:
        return False
    try:
        token = plane.token_file.read_text().split(",", 1)[0]
        ctx = ssl.create_default_context(cafile=plane.ca_cert)
    except (OSError, ssl.SSLError):
        return False
    request = urllib.request.Request(f"{url}/readyz", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=ctx) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def spawn_apiserver(plane: Plane, port: int) -> int:
    """Start ``shipyard apiserver`` detached from this terminal; returns its pid."""
    return _spawn_detached(["apiserver", "--data-dir", os.fspath(plane.dir), "--port", str(port),
                            "--port-file", os.fspath(plane.port_file)], plane.log_file,
                           "shipyard management up")


def _spawn_detached(args: list[str], log_file: Path, by: str) -> int:
    """`python -m shipyard.cli ARGS` in its own session, stdin from /dev/null, stdout and
    stderr appended to `log_file`; returns its pid."""
    argv = [sys.executable, "-m", "shipyard.cli", *args]
    file_actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.fspath(log_file),
         os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as log:
        log.write(f"--- {by}: {' '.join(args)}\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return os.posix_spawn(sys.executable, argv, env, file_actions=file_actions, setsid=True)


def ensure_controllers(plane: Plane, provider_args: list[str]) -> int:
    """`shipyard controllers` for these providers beside the plane's API server: kept when it
    already runs with the same providers, restarted when they changed; returns its pid."""
    args = ["controllers", "--kubeconfig", os.fspath(plane.kubeconfig),
            "--metrics-bind-address", "0", "--workload-dir", os.fspath(plane.dir / "workloads"),
            *provider_args]
    pid = plane.controllers_pid()
    if pid is not None:
        try:
            same = plane.controllers_args_file.read_text() == "\0".join(args)
        except OSError:
            same = False
        if same:
            return pid
        stop(pid, timeout=30)
    pid = _spawn_detached(args, plane.controllers_log, "shipyard init")
    plane.controllers_pid_file.write_text(f"{pid}\n")
    plane.controllers_args_file.write_text("\0".join(args))
    time.sleep(0.5)
    if not alive(pid):
        raise click.ClickException(
            f"the controllers exited at start. Last lines of {plane.controllers_log}:\n"
            + "\n".join(plane.controllers_log.read_text(errors="replace").splitlines()[
                -LOG_TAIL_LINES:]))
    return pid


def stop(pid: int, timeout: float) -> bool:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; True if it ended before the SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    while alive(pid):
        time.sleep(0.05)
    return False


def _usage(plane: Plane, pid: int) -> str:
    return (
        f"Management plane is running (pid {pid}) at {plane.url() or 'an unknown URL'}\n"
        f"Data: {plane.dir}\nLog:  {plane.log_file}\n\n"
        "To use it with kubectl:\n"
        f"  export KUBECONFIG={plane.kubeconfig}\n"
        "  kubectl get namespaces"
    )


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Data directory [default: $SHIPYARD_HOME/management or ~/.shipyard/management].",
)


def _plane(data_dir: Path | None) -> Plane:
    return Plane((data_dir or default_data_dir()).expanduser().resolve())


@click.group("management")
def management() -> None:
    """Start, stop and inspect the embedded management plane."""


@management.command()
@data_dir_option
@click.option("--port", type=click.IntRange(0, 65535), default=6443, show_default=True,
              help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--timeout", type=click.FloatRange(0), default=60.0, show_default=True,
              help="Seconds to wait for the server to become ready.")
def up(data_dir: Path | None, port: int, timeout: float) -> None:
    """Start the management plane in the background and wait until it is ready."""
    plane = _plane(data_dir)
    pid = plane.running_pid()
    if pid is not None:
        click.echo("Already running.")
        click.echo(_usage(plane, pid))
        return
    pid = _start(plane, port, timeout)
    click.echo(_usage(plane, pid))


def ensure_up(data_dir: Path | None = None, port: int = 6443, timeout: float = 60.0) -> Plane:
    """The management plane, started (and waited for) unless it already runs."""
    plane = _plane(data_dir)
    if plane.running_pid() is None:
        _start(plane, port, timeout)
    return plane


def _start(plane: Plane, port: int, timeout: float) -> int:
    plane.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    plane.pid_file.unlink(missing_ok=True)
    plane.port_file.unlink(missing_ok=True)
    pid = spawn_apiserver(plane, port)
    plane.pid_file.write_text(f"{pid}\n")
    deadline = time.monotonic() + timeout
    while not ready(plane):
        if not alive(pid):
            plane.pid_file.unlink(missing_ok=True)
            raise click.ClickException(
                f"the API server exited during startup. Last lines of {plane.log_file}:\n"
                f"{plane.log_tail()}"
            )
        if time.monotonic() > deadline:
            stop(pid, timeout=10)
            plane.pid_file.unlink(missing_ok=True)
            plane.port_file.unlink(missing_ok=True)
            raise click.ClickException(
                f"the API server did not become ready within {timeout:g}s and was stopped. "
                f"Last lines of {plane.log_file}:\n{plane.log_tail()}"
            )
        time.sleep(0.1)
    return pid


@management.command()
@data_dir_option
@click.option("--timeout", type=click.FloatRange(0), default=30.0, show_default=True,
              help="Seconds to wait after SIGTERM before SIGKILL.")
def down(data_dir: Path | None, timeout: float) -> None:
    """Stop the management plane; its data stays for the next `up`."""
    plane = _plane(data_dir)
    controllers = plane.controllers_pid()
    if controllers is not None:
        stop(controllers, timeout)
        click.echo(f"Controllers stopped (pid {controllers}).")
    plane.controllers_pid_file.unlink(missing_ok=True)
    pid = plane.running_pid()
    if pid is None:
        click.echo("Management plane is not running.")
    elif stop(pid, timeout):
        click.echo(f"Management plane stopped (pid {pid}).")
    else:
        click.echo(f"Management plane (pid {pid}) did not stop within {timeout:g}s; killed.")
    plane.pid_file.unlink(missing_ok=True)
    plane.port_file.unlink(missing_ok=True)


@management.command()
@data_dir_option
@click.pass_context
def status(ctx: click.Context, data_dir: Path | None) -> None:
    """Report whether the management plane runs: exit 0 if running, 3 if stopped."""
    plane = _plane(data_dir)
    pid = plane.running_pid()
    if pid is None:
        click.echo(f"Management plane: stopped\nData:       {plane.dir}")
        ctx.exit(STATUS_STOPPED)
    click.echo(
        f"Management plane: running ({'ready' if ready(plane) else 'not ready'})\n"
        f"PID:        {pid}\n"
        f"URL:        {plane.url() or 'unknown (starting)'}\n"
        f"Kubeconfig: {plane.kubeconfig}\n"
        f"Data:       {plane.dir}"
    )
    controllers = plane.controllers_pid()
    click.echo(f"Controllers: running (pid {controllers})" if controllers is not None
               else "Controllers: not running (`shipyard init` starts them)")
