"""Smoke test of the real-Kubernetes tier: the upstream control plane starts and answers kubectl.

If this passes, the fixture in `tests.realkube` is a usable judge for the API behaviour suite:
kubectl 1.33 talks to it through the generated kubeconfig, CRDs get Established, custom
resources round-trip, and the controller manager finishes namespace deletion and owner-reference
garbage collection. Skips (with the reason) where ``scripts/build-kube-binaries`` has not run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

from tests.integration.live import crd, gone, install_crd, wait_for
from tests.kube import Client, Server
from tests.realkube import RealKube

pytestmark = pytest.mark.slow


@pytest.mark.kubectl
def test_kubectl_get_namespaces_reports_upstream_version(realkube_server: Server) -> None:
    version = json.loads(realkube_server.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["major"] == "1"
    assert version["serverVersion"]["minor"] == "33"

    # The kubectl on PATH may be a dispatcher that runs the kubectl matching the server's
    # reported minor; the build stamps v1.33.x so that it picks 1.33.
    dispatched = subprocess.run(
        [shutil.which("kubectl") or "kubectl", "version", "-o", "json"], capture_output=True,
        text=True, timeout=60, check=True,
        env={**os.environ, "HOME": str(realkube_server.home),
             "KUBECONFIG": str(realkube_server.kubeconfig)})
    assert json.loads(dispatched.stdout)["clientVersion"]["minor"] == "33"

    names = realkube_server.kubectl(
        "get", "ns", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    assert {"default", "kube-system", "kube-public"} <= set(names)


@pytest.mark.kubectl
def test_crd_installs_and_custom_resource_round_trips(
        realkube_server: Server, realkube_api: Client) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    install_crd(realkube_api, crd(group, "widgets", "Widget", status=True))
    manifest = {"apiVersion": f"{group}/v1", "kind": "Widget",
                "metadata": {"name": "w1", "namespace": "default"},
                "spec": {"size": 3, "labels": ["a", "b"]}}
    realkube_server.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))

    path = f"/apis/{group}/v1/namespaces/default/widgets/w1"
    got = realkube_api.get(path).json()
    assert got["spec"] == manifest["spec"]
    assert got["metadata"]["generation"] == 1

    shown = json.loads(realkube_server.kubectl("get", f"widgets.{group}", "w1", "-o",
                                               "json").stdout)
    assert shown["metadata"]["uid"] == got["metadata"]["uid"]

    realkube_server.kubectl("delete", f"widgets.{group}", "w1")
    assert realkube_api.get(path).status == 404


def test_controller_manager_deletes_namespaces_and_collects_garbage(
        realkube: RealKube, realkube_api: Client) -> None:
    if "kube-controller-manager" not in realkube.processes:
        pytest.skip("started without kube-controller-manager")
    ns = f"t-{uuid.uuid4().hex[:10]}"
    assert realkube_api.post("/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).status == 201
    owner = realkube_api.post(f"/api/v1/namespaces/{ns}/configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}).json()
    dependent = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "dependent", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
            "uid": owner["metadata"]["uid"]}]}}
    assert realkube_api.post(f"/api/v1/namespaces/{ns}/configmaps", dependent).status == 201

    assert realkube_api.delete(f"/api/v1/namespaces/{ns}/configmaps/owner").status == 200
    wait_for(gone(realkube_api, f"/api/v1/namespaces/{ns}/configmaps/dependent"),
             timeout=60, what="garbage collection of the dependent")

    assert realkube_api.delete(f"/api/v1/namespaces/{ns}").status == 200
    wait_for(gone(realkube_api, f"/api/v1/namespaces/{ns}"), timeout=60,
             what="namespace deletion")
