"""v1beta1 served by a real Shipyard API server with `KubeadmConverter` registered for the
group (as `shipyard apiserver` registers Cluster API's core converter): a v1beta1 manifest is
stored as v1beta2 and reads back unchanged at v1beta1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shipyard.apiserver import authn, certs
from shipyard.apiserver.app import APIServer
from shipyard.apiserver.serving import ServingOptions, serve_in_thread
from shipyard.bootstrap.kubeadm import conversion, types
from shipyard.storage import SQLiteStore
from tests.kube import Client
from tests.providers.harness import install_crd

MANIFEST = """
apiVersion: bootstrap.cluster.x-k8s.io/v1beta1
kind: KubeadmConfigTemplate
metadata: {name: md-0, namespace: default}
spec:
  template:
    spec:
      joinConfiguration:
        discovery: {timeout: 5m0s}
        nodeRegistration:
          kubeletExtraArgs: {eviction-hard: "nodefs.available<0%", cloud-provider: external}
      useExperimentalRetryJoin: true
"""
BASE = "/apis/bootstrap.cluster.x-k8s.io"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Client]:
    pki = certs.ensure_pki(tmp_path / "pki", key_type="ecdsa")
    app = APIServer(SQLiteStore(tmp_path / "state.db"),
                    converters={types.GROUP: conversion.KubeadmConverter()})
    secured = authn.Authenticator(app, tokens=authn.load_token_file(pki.token_file),
                                  client_ca=certs.load_cert(pki.ca_cert))
    options = ServingOptions(port=0, cert_file=pki.serving_cert, key_file=pki.serving_key,
                             client_ca_file=pki.ca_cert, shutdown_timeout=1)
    with serve_in_thread(secured, options) as running:
        client = Client(f"https://127.0.0.1:{running.bound_port}", pki.admin_token, pki.ca_cert)
        for manifest in types.crd_manifests(serve_v1beta1=True):
            install_crd(client, manifest)
        yield client
        client.pool.clear()


def test_v1beta1_manifest_is_stored_as_v1beta2_and_reads_back(api: Client) -> None:
    manifest = yaml.safe_load(MANIFEST)
    resp = api.post(f"{BASE}/v1beta1/namespaces/default/kubeadmconfigtemplates", manifest)
    assert resp.status == 201, resp.body
    v2 = api.get(f"{BASE}/v1beta2/namespaces/default/kubeadmconfigtemplates/md-0").json()
    join = v2["spec"]["template"]["spec"]["joinConfiguration"]
    assert join["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "cloud-provider", "value": "external"},
        {"name": "eviction-hard", "value": "nodefs.available<0%"}]
    assert join["timeouts"] == {"tlsBootstrapSeconds": 300}
    v1 = api.get(f"{BASE}/v1beta1/namespaces/default/kubeadmconfigtemplates/md-0").json()
    assert v1["spec"] == manifest["spec"]
    assert "annotations" not in v1["metadata"]
