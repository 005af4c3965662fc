"""`shipyard init` on upstream kube-apiserver deploys the conversion webhook, and what it deploys
works: kube-apiserver trusts it and converts through it.

The test cluster runs no Pods (no kubelet, no kube-proxy), so the controller Deployment never
starts and the ClusterIP Service leads nowhere. Hence two halves:

* structure: the Secrets, Service, Deployment container and volume, and every multi-version CRD
  switched to conversion `Webhook` with a ``caBundle`` that verifies the serving certificate for
  the Service's DNS names; a second `init` keeps the CA and the certificate;
* function: the Secret's files are written to a directory laid out as the Pod's mount, and
  `shipyard conversion-webhook` serves them from there on loopback. The Service is replaced by
  an ExternalName Service (`localhost`), which kube-apiserver resolves to that host at the
  CRD's ``service.port`` while still verifying the certificate against
  ``capi-webhook-service.capi-system.svc``; so the very certificate, CA bundle and service
  reference `init` wrote are what the real apiserver checks (a certificate from the same CA
  naming only `localhost` is refused). Only the Service's type and the port differ from a
  cluster that runs the Pod.

`upgrade apply` keeps it all, and `shipyard controllers` creates a missing multi-version CRD
already pointing at the webhook. `shipyard delete --all` then removes the webhook's objects and
puts the CRDs back to conversion ``None``, which leaves the session's cluster as the other
real-Kubernetes tests expect it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shipyard.apiserver import certs
from shipyard.cli import deploy
from shipyard.cli.controllers import install_crds
from shipyard.cli.main import main
from shipyard.cli.providers import BOOTSTRAP, PROVIDERS
from shipyard.client import Client
from tests.api import examples as ex
from tests.kube import Server

CORE_CRDS = ["clusters", "machinedeployments", "machinehealthchecks", "machines", "machinesets"]
WIRED = [f"{n}.cluster.x-k8s.io" for n in CORE_CRDS] + [
    f"{n}.bootstrap.cluster.x-k8s.io" for n in ("kubeadmconfigs", "kubeadmconfigtemplates")]
SINGLE_VERSION = "inmemoryclusters.infrastructure.cluster.x-k8s.io"
KUBEADM_TEMPLATE = {
    "apiVersion": "bootstrap.cluster.x-k8s.io/v1beta1", "kind": "KubeadmConfigTemplate",
    "metadata": {"name": "webhook-md-0", "namespace": "default"},
    "spec": {"template": {"spec": {"joinConfiguration": {"nodeRegistration": {
        "kubeletExtraArgs": {"cloud-provider": "external"}}}}}},
}


def shipyard(server: Server, *args: str) -> Any:
    result = CliRunner().invoke(main, [*args, "--kubeconfig", str(server.kubeconfig)])
    assert result.exit_code == 0, result.output
    return result


def get(server: Server, *args: str) -> Any:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def secret_files(server: Server) -> dict[str, bytes]:
    secret = get(server, "secret", deploy.WEBHOOK_CERT_SECRET, "-n", deploy.NAMESPACE)
    assert secret["type"] == "kubernetes.io/tls"
    return {k: base64.b64decode(v) for k, v in secret["data"].items()}


def crd(server: Server, name: str) -> dict[str, Any]:
    return get(server, "crd", name)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def initialized(realkube_server: Server) -> Iterator[Server]:
    shipyard(realkube_server, "init", "--image", "example.com/shipyard:webhook")
    try:
        yield realkube_server
    finally:
        out = shipyard(realkube_server, "delete", "--all")
        assert "Service='capi-webhook-service'" in out.output
        for name in WIRED:
            assert crd(realkube_server, name)["spec"]["conversion"] == {"strategy": "None"}
        assert realkube_server.kubectl("get", "secret", deploy.WEBHOOK_CERT_SECRET, "-n",
                                       deploy.NAMESPACE, check=False).returncode != 0


def test_init_deploys_the_webhook_and_points_the_crds_at_it(initialized: Server) -> None:
    files = secret_files(initialized)
    assert set(files) == {"tls.crt", "tls.key", "ca.crt"}
    ca = x509.load_pem_x509_certificate(files["ca.crt"])
    serving = x509.load_pem_x509_certificate(files["tls.crt"])
    serving.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {
        "capi-webhook-service.capi-system.svc",
        "capi-webhook-service.capi-system.svc.cluster.local"}

    service = get(initialized, "service", deploy.WEBHOOK_SERVICE, "-n", deploy.NAMESPACE)
    assert service["spec"]["ports"][0]["port"] == 443
    assert service["spec"]["ports"][0]["targetPort"] == "webhook-server"
    deployment = get(initialized, "deployment", deploy.NAME, "-n", deploy.NAMESPACE)
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    # A re-issued certificate changes the template, so the pods roll onto it.
    assert pod["metadata"]["annotations"][deploy.SERVING_CERT_ANNOTATION] == \
        hashlib.sha256(files["tls.crt"]).hexdigest()[:32]
    webhook = next(c for c in pod["spec"]["containers"] if c["name"] == "webhook")
    assert webhook["image"] == "example.com/shipyard:webhook"
    assert webhook["command"][:4] == ["shipyard", "conversion-webhook", "--cert-dir",
                                      "/tmp/k8s-webhook-server/serving-certs"]
    assert {"name": "webhook-server", "containerPort": 9443, "protocol": "TCP"} in \
        webhook["ports"]
    assert webhook["volumeMounts"] == [{"name": "cert", "readOnly": True,
                                        "mountPath": "/tmp/k8s-webhook-server/serving-certs"}]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "cert")
    assert volume["secret"]["secretName"] == "capi-webhook-service-cert"

    for name in WIRED:
        conversion = crd(initialized, name)["spec"]["conversion"]
        assert conversion["strategy"] == "Webhook", name
        assert conversion["webhook"]["conversionReviewVersions"] == ["v1", "v1beta1"]
        client_config = conversion["webhook"]["clientConfig"]
        assert client_config["service"] == {"namespace": "capi-system",
                                            "name": "capi-webhook-service",
                                            "path": "/convert", "port": 443}
        assert base64.b64decode(client_config["caBundle"]) == files["ca.crt"]
    assert crd(initialized, SINGLE_VERSION)["spec"]["conversion"] == {"strategy": "None"}


def test_init_again_keeps_the_ca_and_the_certificate(initialized: Server) -> None:
    before = secret_files(initialized)
    bundle = crd(initialized, WIRED[0])["spec"]["conversion"]["webhook"]["clientConfig"]
    shipyard(initialized, "init", "--image", "example.com/shipyard:webhook")
    assert secret_files(initialized) == before
    assert crd(initialized, WIRED[0])["spec"]["conversion"]["webhook"]["clientConfig"] == bundle


def test_upgrade_apply_keeps_the_webhook_wired(initialized: Server) -> None:
    before = secret_files(initialized)
    shipyard(initialized, "upgrade", "apply")
    assert secret_files(initialized) == before
    for name in WIRED:
        conversion = crd(initialized, name)["spec"]["conversion"]
        assert conversion == deploy.conversion(base64.b64encode(before["ca.crt"]).decode())


def test_controllers_create_a_missing_crd_pointing_at_the_webhook(initialized: Server) -> None:
    name = "kubeadmconfigtemplates.bootstrap.cluster.x-k8s.io"
    initialized.kubectl("delete", "crd", name, "--wait=true")

    async def install() -> None:
        async with Client.from_kubeconfig(initialized.kubeconfig) as client:
            await install_crds(client, [PROVIDERS[(BOOTSTRAP, "kubeadm")]])

    asyncio.run(install())
    ca = secret_files(initialized)["ca.crt"]
    assert crd(initialized, name)["spec"]["conversion"] == deploy.conversion(
        base64.b64encode(ca).decode())


@contextmanager
def _serving(files: dict[str, bytes], root: Path) -> Iterator[int]:
    """`shipyard conversion-webhook` serving ``files`` laid out as the Pod's Secret mount;
    yields its port."""
    root.mkdir()
    cert_dir = root / "serving-certs"
    cert_dir.mkdir()
    for name, data in files.items():
        (cert_dir / name).write_bytes(data)
    port_file = root / "port"
    log_path = root / "webhook.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli", "conversion-webhook", "--cert-dir",
             str(cert_dir), "--port", "0", "--port-file", str(port_file)],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "conversion webhook did not start"
            time.sleep(0.05)
        # No file was written: the Secret's layout is served as it is.
        assert sorted(p.name for p in cert_dir.iterdir()) == sorted(files)
        yield int(port_file.read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _point(server: Server, names: list[str], port: int) -> None:
    for name in names:
        server.kubectl("patch", "crd", name, "--type", "json", "-p", json.dumps([{
            "op": "replace", "path": "/spec/conversion/webhook/clientConfig/service/port",
            "value": port}]))


@pytest.fixture
def webhook_on_loopback(initialized: Server, tmp_path: Path) -> Iterator[Server]:
    """The deployed Secret served by `shipyard conversion-webhook`, reached by kube-apiserver
    through an ExternalName `capi-webhook-service` (see the module doc)."""
    with _serving(secret_files(initialized), tmp_path / "deployed") as port:
        initialized.kubectl("delete", "service", deploy.WEBHOOK_SERVICE, "-n", deploy.NAMESPACE)
        initialized.kubectl("create", "service", "externalname", deploy.WEBHOOK_SERVICE, "-n",
                            deploy.NAMESPACE, "--external-name", "localhost")
        _point(initialized, WIRED, port)
        yield initialized


def _kubectl(server: Server, *args: str, stdin: str | None = None) -> str:
    """kubectl, retried while the apiserver still converts with the CRD's previous conversion
    settings (it picks up a changed CRD asynchronously)."""
    for _ in range(50):
        out = server.kubectl(*args, stdin=stdin, check=False)
        if out.returncode == 0:
            return out.stdout
        time.sleep(0.2)
    raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")


def _read(server: Server, resource: str, name: str) -> dict[str, Any]:
    out = _kubectl(server, "get", resource, name, "-n", "default", "-o", "json")
    return json.loads(out)  # type: ignore[no-any-return]


def test_kube_apiserver_converts_through_the_deployed_certificate(
        webhook_on_loopback: Server) -> None:
    server = webhook_on_loopback
    mhc = ex.mhc_v1beta2()
    mhc["metadata"]["name"] = "webhook-mhc"
    server.kubectl("create", "-f", "-", stdin=json.dumps(mhc))
    _kubectl(server, "create", "-f", "-", stdin=json.dumps(KUBEADM_TEMPLATE))
    try:
        v1 = _read(server, "machinehealthchecks.v1beta1.cluster.x-k8s.io", "webhook-mhc")
        assert v1["apiVersion"] == "cluster.x-k8s.io/v1beta1"
        assert v1["spec"]["maxUnhealthy"] == "40%"
        assert v1["spec"]["nodeStartupTimeout"] == "10m0s"
        # Another group through the same endpoint: written as v1beta1, stored as v1beta2.
        v2 = _read(server, "kubeadmconfigtemplates.v1beta2.bootstrap.cluster.x-k8s.io",
                   "webhook-md-0")
        registration = v2["spec"]["template"]["spec"]["joinConfiguration"]["nodeRegistration"]
        assert registration["kubeletExtraArgs"] == [{"name": "cloud-provider",
                                                     "value": "external"}]
    finally:
        server.kubectl("delete", "machinehealthchecks.v1beta2.cluster.x-k8s.io", "webhook-mhc",
                       "-n", "default", "--wait=false")
        server.kubectl("delete", "kubeadmconfigtemplates.v1beta2.bootstrap.cluster.x-k8s.io",
                       "webhook-md-0", "-n", "default", "--wait=false")


def test_kube_apiserver_checks_the_service_name_not_the_host_it_dials(
        webhook_on_loopback: Server, tmp_path: Path) -> None:
    """A certificate from the same CA naming only the host dialled (`localhost`) is refused:
    the name checked is the Service's, which the deployed certificate carries."""
    server = webhook_on_loopback
    ca = x509.load_pem_x509_certificate(secret_files(server)["ca.crt"])
    ca_secret = get(server, "secret", deploy.WEBHOOK_CA_SECRET, "-n", deploy.NAMESPACE)
    ca_key = serialization.load_pem_private_key(
        base64.b64decode(ca_secret["data"]["tls.key"]), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    key = certs.generate_key("ecdsa")
    leaf = certs.issue_certificate(ca, ca_key, key, common_name="localhost",
                                   sans=["localhost", "127.0.0.1"], server=True)
    files = {"tls.crt": leaf.public_bytes(serialization.Encoding.PEM),
             "tls.key": key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())}
    mhc = ex.mhc_v1beta2()
    mhc["metadata"]["name"] = "webhook-mhc-name"
    server.kubectl("create", "-f", "-", stdin=json.dumps(mhc))
    resource = "machinehealthchecks.v1beta1.cluster.x-k8s.io"
    try:
        with _serving(files, tmp_path / "localhost") as port:
            _point(server, ["machinehealthchecks.cluster.x-k8s.io"], port)
            for _ in range(50):  # until the apiserver converts with the changed CRD
                out = server.kubectl("get", resource, "webhook-mhc-name", "-n", "default",
                                     check=False)
                if out.returncode != 0:
                    break
                time.sleep(0.2)
            assert out.returncode != 0
            assert "x509" in out.stderr
            assert "capi-webhook-service.capi-system.svc" in out.stderr, out.stderr
    finally:
        server.kubectl("delete", "machinehealthchecks.v1beta2.cluster.x-k8s.io",
                       "webhook-mhc-name", "-n", "default", "--wait=false")
