"""Cluster certificates and the admin kubeconfig: real keys, checked with `cryptography`."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shipyard.bootstrap.kubeadm import certs, kubeconfig


def test_ca_is_a_ten_year_self_signed_ca() -> None:
    pair = certs.generate_ca()
    cert = x509.load_pem_x509_certificate(pair.cert)
    assert cert.subject.rfc4514_string() == "CN=kubernetes" == cert.issuer.rfc4514_string()
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3649) < life < timedelta(days=3651)
    assert pair.key.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert certs.load_private_key(pair.key).key_size == 2048


def test_service_account_pair_is_public_and_private_key() -> None:
    pair = certs.generate_service_account_key()
    public = serialization.load_pem_public_key(pair.cert)
    assert pair.cert.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert public.public_numbers() == certs.load_private_key(  # type: ignore[union-attr]
        pair.key).public_key().public_numbers()


def test_ca_cert_hash_is_sha256_of_spki() -> None:
    pair = certs.generate_ca()
    spki = x509.load_pem_x509_certificate(pair.cert).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert certs.ca_cert_hash(pair.cert) == "sha256:" + hashlib.sha256(spki).hexdigest()


def test_secret_shape_round_trips() -> None:
    pair = certs.generate_service_account_key()
    owner = {"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfig",
             "name": "cfg", "uid": "u1", "controller": True}
    secret = certs.secret_for("c1", "ns", certs.SERVICE_ACCOUNT, pair, owner)  # type: ignore[arg-type]
    assert secret["metadata"]["name"] == "c1-sa"
    assert secret["type"] == "cluster.x-k8s.io/secret"
    assert secret["metadata"]["labels"] == {"cluster.x-k8s.io/cluster-name": "c1"}
    assert secret["metadata"]["ownerReferences"] == [owner]
    assert set(secret["data"]) == {"tls.crt", "tls.key"}
    assert certs.keypair_from_secret(secret) == pair


def test_certificate_files_use_kubeadm_paths() -> None:
    pairs = {p: certs.KeyPair(b"c", b"k") for p in certs.CONTROL_PLANE_PURPOSES}
    files = certs.as_files(pairs, "/custom/pki/")
    assert [f["path"] for f in files] == [
        "/custom/pki/ca.crt", "/custom/pki/ca.key", "/custom/pki/etcd/ca.crt",
        "/custom/pki/etcd/ca.key", "/custom/pki/front-proxy-ca.crt",
        "/custom/pki/front-proxy-ca.key", "/custom/pki/sa.pub", "/custom/pki/sa.key"]
    assert {f["permissions"] for f in files[1::2]} == {"0600"}


def test_kubeconfig_has_an_admin_cert_signed_by_the_cluster_ca() -> None:
    ca = certs.generate_ca()
    text = kubeconfig.generate("c1", "https://10.0.0.1:6443", ca)
    doc = yaml.safe_load(text)
    assert doc["current-context"] == "c1-admin@c1"
    assert doc["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    assert base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]) \
        == ca.cert
    client = x509.load_pem_x509_certificate(
        base64.b64decode(doc["users"][0]["user"]["client-certificate-data"]))
    assert client.subject.rfc4514_string() == "CN=kubernetes-admin,O=system:masters"
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    client.verify_directly_issued_by(ca_cert)
    assert not kubeconfig.needs_client_cert_rotation(text)
    assert kubeconfig.needs_client_cert_rotation(
        text, now=datetime.now(UTC) + timedelta(days=200))
    rotated = kubeconfig.regenerate(text, ca)
    assert kubeconfig.client_cert_expiry(rotated) >= kubeconfig.client_cert_expiry(text)
    assert yaml.safe_load(rotated)["users"][0]["user"] != doc["users"][0]["user"]
    secret = kubeconfig.secret("c1", "ns", text)
    assert secret["metadata"]["name"] == "c1-kubeconfig"
    assert base64.b64decode(secret["data"]["value"]).decode() == text
