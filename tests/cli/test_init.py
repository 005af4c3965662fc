"""`shipyard init`: providers installed and recorded in clusterctl's inventory, re-runs skip
what is there, unknown providers are refused; on the embedded plane the controllers start in
the background and a generated cluster converges; on a real kube-apiserver the controllers'
Deployment and RBAC are applied."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.kube import Server

from shipyard import __version__
from shipyard.cli import deploy
from shipyard.cli.main import main
from shipyard.cli.management import Plane


def shipyard(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env)


def records(server: Server) -> dict[str, dict[str, Any]]:
    out = server.kubectl("get", "providers.clusterctl.cluster.x-k8s.io", "-A", "-o", "json")
    return {f"{i['metadata']['namespace']}/{i['metadata']['name']}": i
            for i in json.loads(out.stdout)["items"]}


def test_unknown_provider_is_a_usage_error() -> None:
    result = shipyard("init", "--infrastructure", "nope", "--kubeconfig", "/nonexistent")
    assert result.exit_code == 2
    assert "unknown infrastructure provider 'nope'; available: docker, in-memory, process" \
        in result.output


def test_init_records_providers_and_skips_them_the_second_time(server: Server) -> None:
    first = shipyard("init", "--kubeconfig", str(server.kubeconfig), "-i", "in-memory",
                     "-b", "in-memory,kubeadm")
    assert first.exit_code == 0, first.output
    found = records(server)
    assert {"capi-system/cluster-api", "capim-system/infrastructure-in-memory",
            "capim-bootstrap-system/bootstrap-in-memory",
            "capi-kubeadm-bootstrap-system/bootstrap-kubeadm"} <= set(found)
    core = found["capi-system/cluster-api"]
    assert (core["type"], core["providerName"], core["version"]) == (
        "CoreProvider", "cluster-api", f"v{__version__}")
    crds = server.kubectl("get", "crd", "-o", "name").stdout
    for name in ("machines.cluster.x-k8s.io", "inmemoryclusters.infrastructure.cluster.x-k8s.io",
                 "kubeadmconfigs.bootstrap.cluster.x-k8s.io"):
        assert f"customresourcedefinition.apiextensions.k8s.io/{name}" in crds
    # A Shipyard server runs no Deployments: init says how to run the controllers.
    assert "shipyard controllers --kubeconfig" in first.output
    assert "--infrastructure in-memory" in first.output

    again = shipyard("init", "--kubeconfig", str(server.kubeconfig), "-i", "in-memory")
    assert again.exit_code == 0, again.output
    assert "Skipping installing cluster-api as it is already installed" in again.output
    assert "Skipping installing infrastructure-in-memory" in again.output


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_init_on_the_embedded_plane_runs_the_controllers(tmp_path: Path) -> None:
    env = {"SHIPYARD_HOME": str(tmp_path), "KUBECONFIG": ""}
    plane = Plane(tmp_path / "management")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "shipyard.cli", "init", "-i", "in-memory"],
            capture_output=True, text=True, timeout=90, env={**os.environ, **env})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Using the embedded management plane" in result.stdout
        assert "initialized successfully" in result.stdout
        assert plane.running_pid() is not None and plane.controllers_pid() is not None
        server = Server(url=plane.url() or "", token="", ca_file=plane.ca_cert,
                        kubeconfig=plane.kubeconfig, home=tmp_path)
        namespace = f"init-{uuid.uuid4().hex[:6]}"
        server.kubectl("create", "namespace", namespace)
        generated = subprocess.run(
            [sys.executable, "-m", "shipyard.cli", "generate", "cluster", "first",
             "--kubernetes-version", "v1.33.0", "--worker-machine-count", "2",
             "-n", namespace], capture_output=True, text=True, check=True,
            env={**os.environ, **env})
        server.kubectl("apply", "-f", "-", stdin=generated.stdout)
        deadline = time.monotonic() + 60
        phases: list[str | None] = []
        while time.monotonic() < deadline:
            items = json.loads(server.kubectl("get", "machines", "-n", namespace,
                                              "-o", "json").stdout)["items"]
            phases = [(m.get("status") or {}).get("phase") for m in items]
            if phases.count("Running") == 2:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"machines not Running: {phases}\n"
                                 f"{plane.controllers_log.read_text()[-3000:]}")

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "shipyard.cli", *args],
                                  capture_output=True, text=True, timeout=90,
                                  env={**os.environ, **env})

        plan = cli("upgrade", "plan")
        assert plan.returncode == 0, plan.stderr
        assert "infrastructure-in-memory" in plan.stdout and "Already up to date" in plan.stdout
        applied = cli("upgrade", "apply")
        assert applied.returncode == 0 and "Controllers running" in applied.stdout, applied.stderr
        # Deleting one provider keeps the others running; --all --include-crd empties it.
        refused = cli("delete", "-i", "docker")
        assert refused.returncode == 1 and "not installed: infrastructure 'docker'" in \
            refused.stderr
        one = cli("delete", "-b", "in-memory")
        assert one.returncode == 0, one.stderr
        assert "Deleting Provider='bootstrap-in-memory'" in one.stdout
        assert "--bootstrap" in plane.controllers_args_file.read_text()
        assert "in-memory" not in plane.controllers_args_file.read_text().split(
            "--bootstrap")[1].split("\0")[1]
        assert plane.controllers_pid() is not None
        held = cli("delete", "--all", "--include-crd")
        assert held.returncode == 1 and f"workload clusters still exist ({namespace}/first)" \
            in held.stderr
        gone = cli("delete", "cluster", "first", "-n", namespace, "--wait", "--timeout", "60")
        assert gone.returncode == 0, gone.stderr
        everything = cli("delete", "--all", "--include-crd")
        assert everything.returncode == 0, everything.stderr
        assert "Deleting CustomResourceDefinition='machines.cluster.x-k8s.io'" in \
            everything.stdout
        assert "Controllers stopped" in everything.stdout
        crds = set(server.kubectl("get", "crd", "-o", "name").stdout.split())
        prefix = "customresourcedefinition.apiextensions.k8s.io/"
        assert f"{prefix}machines.cluster.x-k8s.io" not in crds
        assert f"{prefix}inmemoryclusters.infrastructure.cluster.x-k8s.io" not in crds
        # A provider deleted earlier without --include-crd kept its CRDs, as in clusterctl.
        assert f"{prefix}inmemorybootstrapconfigs.bootstrap.cluster.x-k8s.io" in crds
        assert cli("upgrade", "plan").returncode == 1
    finally:
        shipyard("management", "down", "--data-dir", str(plane.dir), "--timeout", "10")
    assert plane.controllers_pid() is None and plane.running_pid() is None


def test_init_with_the_embedded_planes_own_kubeconfig_runs_the_controllers_too(
        tmp_path: Path) -> None:
    """`export KUBECONFIG=~/.shipyard/management/kubeconfig` then `init` (as the README shows)
    is the embedded plane, not some other Shipyard server: its controllers start beside it,
    and choosing the Docker provider says whether its node image is there."""
    plane = Plane(tmp_path / "management")
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path), "KUBECONFIG": str(plane.kubeconfig),
           "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    try:
        up = subprocess.run([sys.executable, "-m", "shipyard.cli", "management", "up"],
                            capture_output=True, text=True, timeout=90, env=env)
        assert up.returncode == 0, up.stderr
        result = subprocess.run(
            [sys.executable, "-m", "shipyard.cli", "init", "-i", "docker"],
            capture_output=True, text=True, timeout=90, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Using the embedded management plane" in result.stdout
        assert "Controllers running" in result.stdout
        assert "run the controllers yourself" not in result.stdout
        assert "cannot reach a Docker engine at unix:///nonexistent/docker.sock" in \
            result.stdout
        assert "--infrastructure\0docker" in plane.controllers_args_file.read_text()
    finally:
        shipyard("management", "down", "--data-dir", str(plane.dir), "--timeout", "10")
    assert plane.controllers_pid() is None and plane.running_pid() is None


def test_init_on_real_kubernetes_applies_the_controller_deployment(
        realkube_server: Server) -> None:
    result = shipyard("init", "--kubeconfig", str(realkube_server.kubeconfig),
                      "-i", "in-memory", "--image", "example.com/shipyard:test")
    assert result.exit_code == 0, result.output
    assert "capi-system/cluster-api" in records(realkube_server)
    got = json.loads(realkube_server.kubectl(
        "get", "deployment", deploy.NAME, "-n", deploy.NAMESPACE, "-o", "json").stdout)
    container = got["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "example.com/shipyard:test"
    assert container["command"][:3] == ["shipyard", "controllers", "--leader-elect"]
    assert "--infrastructure" in container["command"]
    # The ServiceAccount may do what the controllers do, and no more than that.
    sa = f"system:serviceaccount:{deploy.NAMESPACE}:{deploy.NAME}"
    for verb, resource, want in (("create", "machines.cluster.x-k8s.io", "yes"),
                                 ("watch", "secrets", "yes"),
                                 ("create", "pods", "no")):
        out = realkube_server.kubectl("auth", "can-i", verb, resource, "--as", sa, "-A",
                                      check=False)
        assert out.stdout.strip() == want, (verb, resource, out.stdout, out.stderr)
    # Re-running converges instead of failing on existing objects.
    assert shipyard("init", "--kubeconfig", str(realkube_server.kubeconfig),
                    "--image", "example.com/shipyard:test2").exit_code == 0
    got = json.loads(realkube_server.kubectl(
        "get", "deployment", deploy.NAME, "-n", deploy.NAMESPACE, "-o", "json").stdout)
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "example.com/shipyard:test2"
    # Leave the shared cluster as found: the CRDs init wired to its (unreachable, no kubelet
    # here) webhook Service go back to conversion None with the providers.
    removed = shipyard("delete", "--all", "--kubeconfig", str(realkube_server.kubeconfig))
    assert removed.exit_code == 0, removed.output
    crd = json.loads(realkube_server.kubectl(
        "get", "crd", "machines.cluster.x-k8s.io", "-o", "json").stdout)
    assert crd["spec"]["conversion"]["strategy"] == "None"
