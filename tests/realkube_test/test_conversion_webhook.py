"""Upstream kube-apiserver serving Cluster API v1beta1 and v1beta2 through our webhook.

`shipyard conversion-webhook` runs as a process; the checked-in CRDs are installed on the real
kube-apiserver with their webhook pointed at it, so every read at the other version is a real
ConversionReview round trip.
"""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.api import crdgen
from tests.api import examples as ex
from tests.kube import Client, Server

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, bytes]]:
    root = tmp_path_factory.mktemp("webhook")
    port_file = root / "port"
    with open(root / "webhook.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli", "conversion-webhook", "--cert-dir",
             str(root / "pki"), "--port", "0", "--port-file", str(port_file)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert proc.poll() is None, (root / "webhook.log").read_text()
            assert time.monotonic() < deadline, "conversion webhook did not start"
            time.sleep(0.05)
        url = f"https://127.0.0.1:{port_file.read_text().strip()}/convert"
        yield url, (root / "pki" / "ca.crt").read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _established(api: Client, name: str) -> bool:
    crd = api.get(f"{CRD_PATH}/{name}").json()
    return any(c["type"] == "Established" and c["status"] == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def _install(api: Client, manifest: dict[str, Any]) -> None:
    name = manifest["metadata"]["name"]
    current = api.get(f"{CRD_PATH}/{name}")
    if current.status == 404:
        assert api.post(CRD_PATH, manifest).status == 201
    else:
        body = copy.deepcopy(manifest)
        body["metadata"]["resourceVersion"] = current.json()["metadata"]["resourceVersion"]
        resp = api.put(f"{CRD_PATH}/{name}", body)
        assert resp.status == 200, resp.body
    deadline = time.monotonic() + 30
    while not _established(api, name):
        assert time.monotonic() < deadline, f"{name} not Established"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def capi(realkube_server: Server, webhook: tuple[str, bytes]) -> Iterator[Client]:
    realkube_api = realkube_server.client()
    url, ca = webhook
    manifests = [yaml.safe_load(p.read_text()) for p in sorted(crdgen.CRDS_DIR.glob("*.yaml"))]
    for manifest in manifests:
        wired = copy.deepcopy(manifest)
        wired["spec"]["conversion"]["webhook"]["clientConfig"] = {
            "url": url, "caBundle": base64.b64encode(ca).decode()}
        _install(realkube_api, wired)
    yield realkube_api
    # Leave the CRDs servable without the webhook for whatever runs after this module.
    for manifest in manifests:
        plain = copy.deepcopy(manifest)
        plain["spec"]["conversion"] = {"strategy": "None"}
        _install(realkube_api, plain)


def test_kube_apiserver_converts_through_the_webhook(capi: Client) -> None:
    md = ex.machine_deployment_v1beta1()
    name = md["metadata"]["name"]
    base = "/apis/cluster.x-k8s.io/{}/namespaces/default/machinedeployments"
    created = capi.post(base.format("v1beta1"), md)
    assert created.status == 201, created.body
    try:
        v2 = capi.get(f"{base.format('v1beta2')}/{name}")
        assert v2.status == 200, v2.body
        spec = v2.json()["spec"]
        assert spec["rollout"]["strategy"]["rollingUpdate"] == {"maxSurge": 1,
                                                               "maxUnavailable": "25%"}
        assert spec["template"]["spec"]["deletion"]["nodeDrainTimeoutSeconds"] == 300
        v1 = capi.get(f"{base.format('v1beta1')}/{name}").json()
        assert v1["spec"]["strategy"] == md["spec"]["strategy"]
        assert v1["spec"]["template"]["spec"]["nodeDrainTimeout"] == "5m0s"
    finally:
        capi.delete(f"{base.format('v1beta1')}/{name}")


def test_the_command_needs_a_cert_dir(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "shipyard.cli", "conversion-webhook"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "--cert-dir" in out.stderr
