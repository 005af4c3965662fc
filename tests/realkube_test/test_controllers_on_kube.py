"""The same controllers on upstream kube-apiserver: `shipyard controllers` against a real
cluster (etcd + kube-apiserver 1.33 + kube-controller-manager), driven by kubectl."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_controllers_command import run_example_cluster
from tests.kube import Server


def test_the_example_cluster_on_real_kubernetes(realkube_server: Server, tmp_path: Path) -> None:
    run_example_cluster(realkube_server, tmp_path)
