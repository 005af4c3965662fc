"""Static pods on a process machine: Pod manifests in the machine's
/etc/kubernetes/manifests run as processes, with volume paths mapped into the machine's root,
restarted when they exit, restarted on a changed manifest and stopped when it goes."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.node.staticpods import StaticPods

SCRIPT = ("import json, os, sys, time; "
          "open(os.environ['OUT'], 'a').write(json.dumps(sys.argv[1:]) + '\\n'); "
          "time.sleep(float(os.environ.get('SLEEP', '60')))")


def pod(name: str, args: list[str], *, sleep: str = "60", restart: str = "Always",
        out: Path) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 2,
                     "volumes": [{"name": "k8s", "hostPath": {"path": "/etc/kubernetes"}}],
                     "containers": [{
                         "name": "main", "command": [sys.executable, "-c", SCRIPT],
                         "args": args,
                         "env": [{"name": "OUT", "value": str(out)},
                                 {"name": "SLEEP", "value": sleep}],
                         "volumeMounts": [{"name": "k8s", "mountPath": "/etc/kubernetes"}]}]}}


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[tuple[StaticPods, Path]]:
    pods = StaticPods(tmp_path / "root")
    pods.manifests.mkdir(parents=True)
    yield pods, tmp_path
    pods.stop()


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def lines(path: Path) -> list[list[str]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_runs_manifests_with_paths_mapped_into_the_machine(
        machine: tuple[StaticPods, Path]) -> None:
    pods, tmp = machine
    out = tmp / "out.txt"
    (pods.manifests / "ctl.yaml").write_text(yaml.safe_dump(pod(
        "ctl", ["--kubeconfig=/etc/kubernetes/admin.conf", "/etc/kubernetes/pki/ca.crt",
                "/var/other"], out=out)))
    pods.sync()
    (argv,) = until(lambda: lines(out))
    root = tmp / "root"
    assert argv == [f"--kubeconfig={root}/etc/kubernetes/admin.conf",
                    f"{root}/etc/kubernetes/pki/ca.crt", "/var/other"]
    assert list(pods.running()) == ["kube-system_ctl"]
    assert (root / "var/log/pods/kube-system_ctl/main.log").exists()


def test_exited_containers_restart_changed_manifests_restart_removed_ones_stop(
        machine: tuple[StaticPods, Path]) -> None:
    pods, tmp = machine
    out = tmp / "out.txt"
    manifest = pods.manifests / "p.yaml"
    manifest.write_text(yaml.safe_dump(pod("p", ["one"], sleep="0", out=out)))

    def restarted() -> bool:
        pods.sync()
        return len(lines(out)) >= 2

    until(restarted)  # exits at once: started again after the back-off
    manifest.write_text(yaml.safe_dump(pod("p", ["two"], out=out)))
    pods.sync()
    until(lambda: lines(out)[-1] == ["two"])
    (pid,) = pods.running()["kube-system_p"]
    manifest.unlink()
    pods.sync()
    assert pods.running() == {}
    with pytest.raises(ProcessLookupError):
        import os
        os.kill(pid, 0)


def test_never_runs_once_and_shipyard_commands_run_this_shipyard(
        machine: tuple[StaticPods, Path]) -> None:
    pods, tmp = machine
    (pods.manifests / "v.json").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "version"},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "v", "command": ["shipyard", "--version"]}]}}))
    log = tmp / "root/var/log/pods/kube-system_version/v.log"

    def finished() -> bool:
        pods.sync()
        return "shipyard, version" in (log.read_text() if log.exists() else "") and \
            pods.running() == {"kube-system_version": []}

    until(finished, timeout=30)
    pods.sync()
    assert log.read_text().count("--- starting") == 1


def test_a_bad_manifest_is_reported_and_the_others_still_run(
        machine: tuple[StaticPods, Path]) -> None:
    pods, tmp = machine
    (pods.manifests / "bad.yaml").write_text("kind: Deployment\napiVersion: apps/v1\n")
    (pods.manifests / "nocmd.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "c", "command": ["no-such-binary-here"]}]}}))
    out = tmp / "out.txt"
    (pods.manifests / "good.yaml").write_text(yaml.safe_dump(pod("good", ["ok"], out=out)))
    pods.sync()
    assert until(lambda: lines(out)) == [["ok"]]
    assert pods.errors["bad.yaml"] == "bad.yaml: not a v1 Pod"
    assert "'no-such-binary-here' not found" in pods.errors["nocmd.yaml"]


def test_downward_api_env_and_var_expansion(tmp_path: Path) -> None:
    pods = StaticPods(tmp_path / "root", node_name="cp-0", host_ip="127.77.0.5")
    pods.manifests.mkdir(parents=True)
    out = tmp_path / "out.txt"
    manifest = pod("ctl", ["--master=https://$(HOST_IP):6443", "$(NODE)", "$$(HOST_IP)",
                           "$(UNKNOWN)"], out=out)
    manifest["spec"]["containers"][0]["env"] += [
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    (pods.manifests / "ctl.yaml").write_text(yaml.safe_dump(manifest))
    try:
        pods.sync()
        (argv,) = until(lambda: lines(out))
    finally:
        pods.stop()
    assert argv == ["--master=https://127.77.0.5:6443", "cp-0", "$(HOST_IP)", "$(UNKNOWN)"]
