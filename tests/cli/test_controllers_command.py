"""`shipyard controllers` as a user runs it: a process against a kubeconfig, driven by kubectl."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.kube import Server

from shipyard.cli.main import main

EXAMPLE = Path(__file__).parents[2] / "examples" / "inmemory-cluster.yaml"


def test_refuses_without_a_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    result = CliRunner().invoke(main, ["controllers"])
    assert result.exit_code != 0
    assert "no kubeconfig at" in result.output and "shipyard management up" in result.output


def _machines(server: Server, namespace: str) -> list[dict[str, object]]:
    out = server.kubectl("get", "machines.cluster.x-k8s.io", "-n", namespace, "-o", "json")
    items: list[dict[str, object]] = json.loads(out.stdout)["items"]
    return items


def test_the_example_cluster_comes_up_and_goes_away(server: Server, tmp_path: Path) -> None:
    run_example_cluster(server, tmp_path)


def run_example_cluster(server: Server, tmp_path: Path) -> None:
    """Run `shipyard controllers` against ``server``, apply the example, wait for three
    Running Machines and a Provisioned Cluster, delete it, and stop the process cleanly."""
    namespace = f"demo-{uuid.uuid4().hex[:8]}"
    server.kubectl("create", "namespace", namespace)
    with open(tmp_path / "controllers.log", "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli", "controllers", "--kubeconfig",
             str(server.kubeconfig), "--namespace", namespace, "--metrics-bind-address", "0",
             "--workload-dir", str(tmp_path / "workloads")],
            stdout=subprocess.DEVNULL, stderr=log_file,
        )
    try:
        manifest = EXAMPLE.read_text().replace("namespace: default", f"namespace: {namespace}")
        deadline = time.monotonic() + 30
        while True:  # the controllers install the CRDs; apply once they are served
            applied = server.kubectl("apply", "-f", "-", stdin=manifest, check=False)
            if applied.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert applied.returncode == 0, applied.stderr
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            machines = _machines(server, namespace)
            phases = [m.get("status", {}).get("phase") for m in machines]  # type: ignore[union-attr]
            if phases.count("Running") == 3:
                break
            time.sleep(0.3)
        else:
            log = (tmp_path / "controllers.log").read_text()[-3000:]
            raise AssertionError(f"machines not Running: {phases}\n{log}")
        cluster = json.loads(server.kubectl("get", "cluster", "demo", "-n", namespace,
                                            "-o", "json").stdout)
        assert cluster["status"]["phase"] == "Provisioned"

        server.kubectl("delete", "cluster", "demo", "-n", namespace, timeout=60)
        assert _machines(server, namespace) == []
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "controllers.log").read_text()[-3000:]
    server.kubectl("delete", "namespace", namespace, "--wait=false")
