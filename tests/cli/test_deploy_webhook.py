"""The conversion webhook's pieces that need no cluster: the certificates `init` deploys (kept
while usable, replaced when not), the manifests that carry them, and `shipyard
conversion-webhook` serving a mounted Secret's files and every multi-version group."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from tests.api import examples as ex

from shipyard.api.webhook import ConversionWebhookApp, review
from shipyard.apiserver import certs
from shipyard.cli import deploy
from shipyard.cli.webhook import converters, serving_files

NAMES = ["capi-webhook-service.capi-system.svc",
         "capi-webhook-service.capi-system.svc.cluster.local"]


def pairs(pki: deploy.WebhookPKI) -> tuple[tuple[bytes, bytes], tuple[bytes, bytes]]:
    return (pki.ca_cert, pki.ca_key), (pki.tls_cert, pki.tls_key)


def test_first_pki_is_a_ca_and_a_serving_certificate_for_the_service() -> None:
    pki = deploy.webhook_pki(None, None)
    ca = x509.load_pem_x509_certificate(pki.ca_cert)
    serving = x509.load_pem_x509_certificate(pki.tls_cert)
    serving.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == NAMES
    key = serialization.load_pem_private_key(pki.tls_key, password=None)
    assert key.public_key() == serving.public_key()
    assert base64.b64decode(pki.ca_bundle) == pki.ca_cert


def test_usable_pki_is_kept_as_it_is() -> None:
    pki = deploy.webhook_pki(None, None)
    assert deploy.webhook_pki(*pairs(pki)) == pki


def test_serving_certificate_is_reissued_by_the_same_ca_when_it_no_longer_fits() -> None:
    pki = deploy.webhook_pki(None, None)
    ca_pair, serving_pair = pairs(pki)
    renamed = deploy.webhook_pki(ca_pair, serving_pair,
                                 deploy.service_names("other-ns", "other-svc"))
    assert renamed.ca_cert == pki.ca_cert and renamed.tls_cert != pki.tls_cert
    other = deploy.webhook_pki(None, None)
    foreign = deploy.webhook_pki(ca_pair, (other.tls_cert, other.tls_key))
    assert foreign.ca_cert == pki.ca_cert
    x509.load_pem_x509_certificate(foreign.tls_cert).verify_directly_issued_by(
        x509.load_pem_x509_certificate(pki.ca_cert))
    mismatched = deploy.webhook_pki(ca_pair, (pki.tls_cert, other.tls_key))
    assert mismatched.tls_cert != pki.tls_cert


def _ca_expiring_in(days: int) -> tuple[bytes, bytes]:
    key = certs.generate_key("ecdsa")
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "old-ca")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=3000))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def test_an_expiring_ca_is_replaced_and_a_garbled_one_too() -> None:
    old = _ca_expiring_in(10)
    renewed = deploy.webhook_pki(old, None)
    assert renewed.ca_cert != old[0]
    x509.load_pem_x509_certificate(renewed.tls_cert).verify_directly_issued_by(
        x509.load_pem_x509_certificate(renewed.ca_cert))
    fine = _ca_expiring_in(400)
    assert deploy.webhook_pki(fine, None).ca_cert == fine[0]
    assert deploy.webhook_pki((b"garbage", b"garbage"), None).ca_cert != b"garbage"


def test_manifests_carry_the_secrets_the_service_and_the_webhook_container() -> None:
    pki = deploy.webhook_pki(None, None)
    objects = {(o["kind"], o["metadata"]["name"]): o
               for o in deploy.manifests("img", ["--infrastructure", "in-memory"], pki)}
    served = objects[("Secret", "capi-webhook-service-cert")]
    assert served["type"] == "kubernetes.io/tls"
    assert {k: base64.b64decode(v) for k, v in served["data"].items()} == {
        "tls.crt": pki.tls_cert, "tls.key": pki.tls_key, "ca.crt": pki.ca_cert}
    assert base64.b64decode(objects[("Secret", "capi-webhook-ca")]["data"]["tls.key"]) == \
        pki.ca_key
    template = objects[("Deployment", deploy.NAME)]["spec"]["template"]
    assert objects[("Service", "capi-webhook-service")]["spec"]["selector"] == \
        template["metadata"]["labels"]
    assert template["metadata"]["annotations"][deploy.SERVING_CERT_ANNOTATION] == pki.digest
    assert [c["name"] for c in template["spec"]["containers"]] == ["manager", "webhook"]
    # Without certificates (a Shipyard server keeps converting in process), no webhook parts.
    plain = deploy.manifests("img", [])
    assert {o["kind"] for o in plain} == {"Namespace", "ServiceAccount", "ClusterRole",
                                          "ClusterRoleBinding", "Deployment"}


def test_only_multi_version_crds_of_converted_groups_want_the_webhook() -> None:
    groups = list(converters())
    assert {"cluster.x-k8s.io", "bootstrap.cluster.x-k8s.io",
            "infrastructure.cluster.x-k8s.io"} <= set(groups)

    def crd(group: str, *versions: str) -> dict[str, Any]:
        return {"spec": {"group": group,
                         "versions": [{"name": v, "served": True} for v in versions]}}

    assert deploy.wants_webhook(crd("cluster.x-k8s.io", "v1beta1", "v1beta2"), groups)
    assert not deploy.wants_webhook(crd("infrastructure.cluster.x-k8s.io", "v1beta1"), groups)
    assert not deploy.wants_webhook(crd("example.com", "v1", "v2"), groups)


def test_a_mounted_tls_secret_is_served_as_it_is(tmp_path: Path) -> None:
    pki = deploy.webhook_pki(None, None)
    for name, data in (("tls.crt", pki.tls_cert), ("tls.key", pki.tls_key),
                       ("ca.crt", pki.ca_cert)):
        (tmp_path / name).write_bytes(data)
    assert serving_files(tmp_path, "0.0.0.0", ()) == (tmp_path / "tls.crt",
                                                     tmp_path / "tls.key")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    own = tmp_path / "own"
    cert, _ = serving_files(own, "127.0.0.1", ())
    assert cert == own / "apiserver.crt" and (own / "ca.crt").exists()


def _review(objects: list[dict[str, Any]], desired: str) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "1", "desiredAPIVersion": desired, "objects": objects}}


async def _post(app: ConversionWebhookApp, payload: dict[str, Any]) -> dict[str, Any]:
    sent: list[dict[str, Any]] = []
    chunks = [{"type": "http.request", "body": json.dumps(payload).encode(),
               "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "http", "method": "POST", "path": "/convert"}, receive, send)
    assert sent[0]["status"] == 200
    return json.loads(sent[1]["body"])["response"]  # type: ignore[no-any-return]


async def test_one_endpoint_converts_every_group() -> None:
    app = ConversionWebhookApp(converters())
    template = {"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta1",
                "kind": "KubeadmConfigTemplate",
                "metadata": {"name": "md-0", "namespace": "default"},
                "spec": {"template": {"spec": {"joinConfiguration": {"nodeRegistration": {
                    "kubeletExtraArgs": {"cloud-provider": "external"}}}}}}}
    kubeadm = await _post(app, _review([template], "bootstrap.cluster.x-k8s.io/v1beta2"))
    mhc = await _post(app, _review([ex.mhc_v1beta1()], ex.V2))
    assert kubeadm["result"] == {"status": "Success"}
    spec = kubeadm["convertedObjects"][0]["spec"]["template"]["spec"]
    assert spec["joinConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "cloud-provider", "value": "external"}]
    assert mhc["convertedObjects"][0]["spec"]["checks"]["nodeStartupTimeoutSeconds"] == 600
    unknown = review(_review([{"apiVersion": "example.com/v1", "kind": "X"}], "example.com/v2"),
                     converters())["response"]
    assert unknown["result"]["status"] == "Failure"
    assert "example.com" in unknown["result"]["message"]
