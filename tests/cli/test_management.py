"""`shipyard management up|status|down` against the real API server in a real background process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from shipyard.cli.main import main
from shipyard.cli.management import STATUS_STOPPED, Plane, default_data_dir


def shipyard(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_default_data_dir_honours_shipyard_home(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "management"
    monkeypatch.delenv("SHIPYARD_HOME")
    assert default_data_dir() == Path.home() / ".shipyard" / "management"


def test_status_of_a_fresh_directory_is_stopped(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    result = shipyard("management", "status")
    assert result.exit_code == STATUS_STOPPED
    assert "stopped" in result.output
    assert str(tmp_path / "management") in result.output


def test_stale_or_foreign_pid_counts_as_stopped(tmp_path: Path) -> None:
    plane = Plane(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for pid in (dead.pid, os.getpid()):  # exited; alive but not an apiserver on this dir
        plane.pid_file.write_text(f"{pid}\n")
        assert shipyard("management", "status", "--data-dir", str(tmp_path)).exit_code == 3
    result = shipyard("management", "down", "--data-dir", str(tmp_path))
    assert result.exit_code == 0
    assert "not running" in result.output
    assert not plane.pid_file.exists()


# The round trip needs the real API server.

def _require_app() -> None:
    pytest.importorskip("shipyard.apiserver.app")


def get(plane: Plane, path: str, *, token: str | None) -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=plane.ca_cert)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{plane.url()}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=ctx) as response:
            code, body = response.status, response.read()
    except urllib.error.HTTPError as e:
        code, body = e.code, e.read()
    try:
        return code, json.loads(body)
    except ValueError:
        return code, body.decode()


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    _require_app()
    plane = Plane(tmp_path / "management")
    yield plane
    shipyard("management", "down", "--data-dir", str(plane.dir), "--timeout", "5")


def test_up_status_down_round_trip(plane: Plane) -> None:
    data_dir = str(plane.dir)
    assert shipyard("management", "status", "--data-dir", data_dir).exit_code == 3

    up = shipyard("management", "up", "--data-dir", data_dir, "--port", "0")
    assert up.exit_code == 0, up.output
    assert f"export KUBECONFIG={plane.kubeconfig}" in up.output
    assert "kubectl get namespaces" in up.output
    pid = plane.running_pid()
    assert pid is not None

    status = shipyard("management", "status", "--data-dir", data_dir)
    assert status.exit_code == 0
    assert "running (ready)" in status.output
    assert f"PID:        {pid}" in status.output
    url = plane.url()
    assert url is not None and url in status.output

    again = shipyard("management", "up", "--data-dir", data_dir, "--port", "0")
    assert again.exit_code == 0
    assert "Already running" in again.output
    assert plane.running_pid() == pid

    # The kubeconfig's credentials work and nothing else does.
    kubeconfig = yaml.safe_load(plane.kubeconfig.read_text())
    token = kubeconfig["users"][0]["user"]["token"]
    assert kubeconfig["clusters"][0]["cluster"]["server"] == plane.url()
    assert get(plane, "/api/v1/namespaces", token=token)[0] == 200
    code, body = get(plane, "/api/v1/namespaces", token=None)
    assert (code, body["reason"]) == (401, "Unauthorized")
    assert get(plane, "/api/v1/namespaces", token="wrong")[0] == 401

    down = shipyard("management", "down", "--data-dir", data_dir)
    assert down.exit_code == 0
    assert f"stopped (pid {pid})" in down.output
    assert shipyard("management", "status", "--data-dir", data_dir).exit_code == 3
    assert not plane.pid_file.exists()
    assert (plane.dir / "state.db").exists()
    assert plane.kubeconfig.exists()


def test_restart_keeps_ca_and_token(plane: Plane) -> None:
    data_dir = str(plane.dir)
    assert shipyard("management", "up", "--data-dir", data_dir, "--port", "0").exit_code == 0
    ca, tokens = plane.ca_cert.read_bytes(), plane.token_file.read_bytes()
    assert shipyard("management", "down", "--data-dir", data_dir).exit_code == 0
    assert shipyard("management", "up", "--data-dir", data_dir, "--port", "0").exit_code == 0
    assert (plane.ca_cert.read_bytes(), plane.token_file.read_bytes()) == (ca, tokens)
    token = tokens.decode().split(",", 1)[0]
    assert get(plane, "/readyz", token=token) == (200, "ok")


def test_up_fails_with_the_log_tail_when_the_port_is_taken(plane: Plane) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = shipyard("management", "up", "--data-dir", str(plane.dir), "--port", str(port))
    assert result.exit_code == 1
    assert "exited during startup" in result.output
    assert "address already in use" in result.output
    assert not plane.pid_file.exists()


@pytest.mark.kubectl
def test_kubectl_reaches_the_plane_with_the_kubeconfig(plane: Plane) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    assert shipyard("management", "up", "--data-dir", str(plane.dir), "--port", "0").exit_code == 0
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "HOME": str(plane.dir)}
    out = subprocess.run([kubectl, "version", "-o", "json"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["serverVersion"]["gitVersion"]
    raw = subprocess.run([kubectl, "get", "--raw", "/api/v1/namespaces"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert raw.returncode == 0, raw.stderr
    assert json.loads(raw.stdout)["kind"] == "NamespaceList"
