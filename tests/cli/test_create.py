"""`shipyard create cluster` end to end on the process provider: a throw-away management plane,
the cluster, the pivot; then the cluster manages itself (scales its own MachineDeployment,
creates a second cluster), refuses to be deleted while it manages another one, and its
deletion (moved back to a throw-away plane first) leaves no process, port or file behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.kube import KUBECTL_DIR

pytestmark = pytest.mark.slow
KUBECTL = str(KUBECTL_DIR / "kubectl.1.33")


class Env:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.environ = {**os.environ, "SHIPYARD_HOME": str(home), "HOME": str(home)}
        self.environ.pop("KUBECONFIG", None)

    def shipyard(self, *args: str, kubeconfig: Path | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**self.environ, **({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {})}
        return subprocess.run([sys.executable, "-m", "shipyard.cli", *args], env=env,
                              capture_output=True, text=True, timeout=timeout)

    def kubectl(self, kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], input=stdin,
                             env=self.environ, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def json(self, kubeconfig: Path, *args: str) -> Any:
        return json.loads(self.kubectl(kubeconfig, *args, "-o", "json"))


def until(check: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def leftovers(home: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-af", str(home)], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if "pgrep" not in line]


@pytest.fixture(autouse=True)
def no_machine_outlives_its_test(tmp_path: Path) -> Iterator[None]:
    """A test that fails half-way leaves its machines' processes running, holding addresses
    and ports later tests want: stop whatever still runs from this test's directory."""
    yield
    for line in leftovers(tmp_path):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(line.split()[0]), signal.SIGKILL)


def ready_nodes(env: Env, kubeconfig: Path) -> list[dict[str, Any]]:
    nodes = env.json(kubeconfig, "get", "nodes")["items"]
    # A Node the agent has just registered has no status yet.
    return [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                    for c in (n.get("status") or {}).get("conditions") or [])]


@pytest.mark.timeout(600)
def test_create_pivot_self_management_and_delete(tmp_path: Path) -> None:
    env = Env(tmp_path)
    created = env.shipyard("create", "cluster", "alpha", "--worker-machine-count", "1")
    assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-3000:]
    for step in ("Starting the bootstrap management plane", "Creating cluster default/alpha",
                 "The new cluster's controllers are running", "Moving Cluster API objects",
                 "Deleting the bootstrap management plane", "The cluster manages itself"):
        assert step in created.stdout, step
    kubeconfig = tmp_path / "clusters" / "alpha" / "kubeconfig"
    assert f"export KUBECONFIG={kubeconfig}" in created.stdout
    assert not (tmp_path / "clusters" / "alpha" / "bootstrap").exists()

    # The cluster holds its own Cluster API objects, and its Nodes are its Machines.
    machines = env.json(kubeconfig, "get", "machines", "-n", "default")["items"]
    assert len(machines) == 2
    nodes = {n["spec"]["providerID"] for n in ready_nodes(env, kubeconfig)}
    assert nodes == {m["spec"]["providerID"] for m in machines}
    cluster = env.json(kubeconfig, "get", "cluster", "alpha", "-n", "default")
    assert not cluster["spec"].get("paused")

    # It scales itself.
    env.kubectl(kubeconfig, "scale", "machinedeployment", "alpha-md-0", "-n", "default",
                "--replicas=2")
    until(lambda: len(ready_nodes(env, kubeconfig)) == 3, "a third Ready Node")

    # It creates a second cluster.
    generated = env.shipyard("generate", "cluster", "beta", "-i", "process",
                             "--kubernetes-version", "v1.33.0", "--worker-machine-count", "0")
    assert generated.returncode == 0, generated.stderr
    env.kubectl(kubeconfig, "apply", "-f", "-", stdin=generated.stdout)

    def beta_running() -> bool:
        items = env.json(kubeconfig, "get", "machines", "-n", "default", "-l",
                         "cluster.x-k8s.io/cluster-name=beta")["items"]
        return len(items) == 1 and items[0]["status"].get("phase") == "Running"

    until(beta_running, "beta's control-plane machine Running")

    refused = env.shipyard("delete", "cluster", "alpha", "-n", "default", kubeconfig=kubeconfig)
    assert refused.returncode == 1
    assert "manages itself and default/beta: delete or move those first" in refused.stderr

    again = env.shipyard("create", "cluster", "alpha")
    assert again.returncode == 1 and "a cluster named 'alpha' already exists" in again.stderr

    beta_gone = env.shipyard("delete", "cluster", "beta", "-n", "default", "--wait",
                             "--timeout", "120", kubeconfig=kubeconfig)
    assert beta_gone.returncode == 0, beta_gone.stderr
    alpha_gone = env.shipyard("delete", "cluster", "alpha", "-n", "default",
                              kubeconfig=kubeconfig)
    assert alpha_gone.returncode == 0, alpha_gone.stdout[-3000:] + alpha_gone.stderr[-3000:]
    assert "Cluster default/alpha deleted" in alpha_gone.stdout
    until(lambda: not leftovers(tmp_path), "every machine process gone", timeout=30)
    assert not (tmp_path / "clusters" / "alpha").exists()


def test_bad_input_is_refused_before_anything_starts(tmp_path: Path) -> None:
    env = Env(tmp_path)
    even = env.shipyard("create", "cluster", "x", "--control-plane-machine-count", "2")
    assert even.returncode == 2 and "cannot be an even number when etcd is stacked" in \
        even.stderr
    unknown = env.shipyard("create", "cluster", "x", "-i", "nope")
    assert unknown.returncode == 2 and "unknown infrastructure provider 'nope'" in unknown.stderr
    simulated = env.shipyard("create", "cluster", "x", "-i", "in-memory")
    assert simulated.returncode == 2 and "which 'in-memory' machines cannot run" in \
        simulated.stderr
    flavor = env.shipyard("create", "cluster", "x", "--flavor", "gpu")
    assert flavor.returncode == 2 and "has no flavor 'gpu'" in flavor.stderr
    assert not (tmp_path / "clusters").exists()


@pytest.mark.timeout(300)
def test_interrupted_self_managed_deletion_goes_on_when_run_again(tmp_path: Path) -> None:
    """Deleting a self-managed cluster moves its objects into a throw-away plane first. If
    the deletion then stops (here: no time at all to wait), the plane and the objects are
    kept, and running the command again finishes the job from there, even though the
    cluster's own API is gone by then."""
    env = Env(tmp_path)
    created = env.shipyard("create", "cluster", "gamma", "--worker-machine-count", "0")
    assert created.returncode == 0, created.stdout[-3000:] + created.stderr[-3000:]
    kubeconfig = tmp_path / "clusters" / "gamma" / "kubeconfig"

    stopped = env.shipyard("delete", "cluster", "gamma", "-n", "default", "--timeout", "0",
                           kubeconfig=kubeconfig)
    assert stopped.returncode == 1, stopped.stdout[-3000:]
    assert "step 'delete' failed" in stopped.stderr
    assert "run `shipyard delete cluster gamma -n default` again" in stopped.stderr
    kept = list((tmp_path / "clusters").glob(".gamma-delete-*"))
    assert len(kept) == 1 and (kept[0] / "bootstrap").is_dir()

    again = env.shipyard("delete", "cluster", "gamma", "-n", "default", kubeconfig=kubeconfig)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "Going on deleting default/gamma" in again.stdout
    assert "Cluster default/gamma deleted" in again.stdout
    until(lambda: not leftovers(tmp_path), "every machine process gone", timeout=30)
    assert not list((tmp_path / "clusters").glob(".gamma-delete-*"))
    assert not (tmp_path / "clusters" / "gamma").exists()


@pytest.mark.timeout(300)
def test_a_failed_create_names_its_step_and_removes_what_it_made(tmp_path: Path) -> None:
    """No time to wait for the machines: the wait step fails, and the command deletes the
    cluster from its bootstrap plane (whose controllers remove the machines) and tears the
    plane down, leaving no process and no file."""
    env = Env(tmp_path)
    failed = env.shipyard("create", "cluster", "delta", "--worker-machine-count", "1",
                          "--timeout", "1")
    assert failed.returncode == 1, failed.stdout[-3000:]
    assert "step 'wait' failed: TimeoutError: not Running after 1s" in failed.stderr
    assert "Deleting cluster delta from the bootstrap plane" in failed.stdout
    assert "Left behind" not in failed.stderr
    until(lambda: not leftovers(tmp_path), "every machine process gone", timeout=30)
    assert not (tmp_path / "clusters" / "delta").exists()
