"""The cluster's certificate authorities, kept as Secrets in the management cluster.

Why: every control-plane machine of a cluster must boot with the same CAs (cluster, etcd,
front-proxy) and service-account key pair, or kubeadm on a joining machine would mint a second
PKI. As upstream's `util/secret` package, the first KubeadmConfig that needs them generates
them once and every later machine reads them back; they are never regenerated.

Contract (upstream's names, `util/secret/consts.go`):
- Secrets `<cluster>-ca`, `<cluster>-etcd`, `<cluster>-proxy`, `<cluster>-sa`, type
  `cluster.x-k8s.io/secret`, label `cluster.x-k8s.io/cluster-name`, keys `tls.crt`/`tls.key`
  (PEM). For `sa`, `tls.crt` holds the public key (`PUBLIC KEY`) and `tls.key` the private key.
- Keys are RSA 2048 (`RSA PRIVATE KEY`, PKCS#1); CAs are self-signed, CN `kubernetes`,
  valid 10 years (or `caCertificateValidityPeriodDays`).
- `lookup_or_generate(client, namespace, cluster, owner)` reads each Secret, creating only the
  missing ones (controller-owned by `owner`, as upstream owns them by the KubeadmConfig that
  generated them); a concurrent creator wins and its Secret is read back.
- `as_files(certificates)` gives the cloud-init `write_files` entries kubeadm expects under
  `/etc/kubernetes/pki`; `ca_cert_hash` is kubeadm's `sha256:<hex of SubjectPublicKeyInfo>`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import AlreadyExists, NotFound
from shipyard.client.interfaces import Object, OwnerReference, ReaderWriter

CA: Final = c.CA_SECRET_PURPOSE
ETCD_CA: Final = c.ETCD_CA_SECRET_PURPOSE
FRONT_PROXY_CA: Final = c.FRONT_PROXY_CA_SECRET_PURPOSE
SERVICE_ACCOUNT: Final = c.SERVICE_ACCOUNT_SECRET_PURPOSE
CONTROL_PLANE_PURPOSES: Final = (CA, ETCD_CA, FRONT_PROXY_CA, SERVICE_ACCOUNT)
TLS_CRT: Final = "tls.crt"
TLS_KEY: Final = "tls.key"
DEFAULT_CERTIFICATES_DIR: Final = "/etc/kubernetes/pki"
DEFAULT_CA_VALIDITY_DAYS: Final = 3650
RSA_KEY_SIZE: Final = 2048

_FILES: Final = {CA: ("ca.crt", "ca.key"), ETCD_CA: ("etcd/ca.crt", "etcd/ca.key"),
                 FRONT_PROXY_CA: ("front-proxy-ca.crt", "front-proxy-ca.key"),
                 SERVICE_ACCOUNT: ("sa.pub", "sa.key")}


class MissingCertificate(LookupError):
    """A certificate Secret the caller needs does not exist (yet)."""


@dataclass(frozen=True)
class KeyPair:
    cert: bytes
    """PEM certificate (for `sa`: the PEM public key)."""
    key: bytes
    """PEM private key."""


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)


def encode_private_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("only RSA private keys are supported")
    return key


def _serial() -> int:
    return secrets.randbits(63) + 1


def generate_ca(common_name: str = "kubernetes",
                validity_days: int = DEFAULT_CA_VALIDITY_DAYS) -> KeyPair:
    key = new_private_key()
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(_serial())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=True, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), encode_private_key(key))


def generate_service_account_key() -> KeyPair:
    key = new_private_key()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair(public, encode_private_key(key))


def generate(purpose: str, ca_validity_days: int = DEFAULT_CA_VALIDITY_DAYS) -> KeyPair:
    if purpose == SERVICE_ACCOUNT:
        return generate_service_account_key()
    if purpose in (CA, ETCD_CA, FRONT_PROXY_CA):
        return generate_ca(validity_days=ca_validity_days)
    raise ValueError(f"unknown certificate purpose {purpose!r}")


def issue(ca: KeyPair, common_name: str, *, organizations: tuple[str, ...] = (),
          sans: tuple[str, ...] = (), server: bool = False, client: bool = False,
          validity: timedelta = timedelta(days=365)) -> KeyPair:
    """A leaf certificate signed by ``ca``, with a fresh RSA key: ``server``/``client`` pick
    the extended key usages, ``sans`` are IP addresses or DNS names (kubeadm's etcd server,
    peer and client certificates, the admin kubeconfig's client certificate)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    key = new_private_key()
    now = datetime.now(UTC)
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([*attributes,
                                 x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=True, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if sans:
        names: list[x509.GeneralName] = []
        for san in dict.fromkeys(sans):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(load_private_key(ca.key), hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), encode_private_key(key))


def ca_cert_hash(cert_pem: bytes) -> str:
    """kubeadm's CA pin: `sha256:` + hex SHA-256 of the certificate's SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def as_files(certificates: dict[str, KeyPair],
             certificates_dir: str = DEFAULT_CERTIFICATES_DIR) -> list[dict[str, Any]]:
    """cloud-init `write_files` entries (cert 0640, key 0600, owner root:root), in upstream's
    order: cluster CA, etcd CA, front-proxy CA, service-account key pair."""
    base = certificates_dir.rstrip("/")
    files: list[dict[str, Any]] = []
    for purpose in CONTROL_PLANE_PURPOSES:
        pair = certificates.get(purpose)
        if pair is None:
            continue
        cert_file, key_file = _FILES[purpose]
        files.append({"path": f"{base}/{cert_file}", "owner": "root:root",
                      "permissions": "0640", "content": pair.cert.decode()})
        files.append({"path": f"{base}/{key_file}", "owner": "root:root",
                      "permissions": "0600", "content": pair.key.decode()})
    return files


def secret_for(cluster_name: str, namespace: str, purpose: str, pair: KeyPair,
               owner: OwnerReference | None = None) -> Object:
    meta: dict[str, Any] = {"name": c.secret_name(cluster_name, purpose),
                            "namespace": namespace,
                            "labels": {c.CLUSTER_NAME_LABEL: cluster_name}}
    if owner is not None:
        meta["ownerReferences"] = [dict(owner)]
    return {"apiVersion": "v1", "kind": "Secret", "type": c.CLUSTER_SECRET_TYPE,
            "metadata": meta,
            "data": {TLS_CRT: base64.b64encode(pair.cert).decode(),
                     TLS_KEY: base64.b64encode(pair.key).decode()}}


def keypair_from_secret(secret: Object) -> KeyPair:
    data = secret.get("data") or {}
    if TLS_CRT not in data:
        raise MissingCertificate(f"Secret {secret['metadata']['name']} has no {TLS_CRT}")
    key = base64.b64decode(data[TLS_KEY]) if data.get(TLS_KEY) else b""
    return KeyPair(base64.b64decode(data[TLS_CRT]), key)


async def lookup(client: ReaderWriter, namespace: str, cluster_name: str,
                 purposes: tuple[str, ...] = CONTROL_PLANE_PURPOSES) -> dict[str, KeyPair]:
    """Read existing certificates; raises `MissingCertificate` naming the first absent one."""
    found: dict[str, KeyPair] = {}
    for purpose in purposes:
        name = c.secret_name(cluster_name, purpose)
        try:
            secret = await client.get("v1", "Secret", name, namespace)
        except NotFound as e:
            raise MissingCertificate(f"Secret {name} does not exist") from e
        found[purpose] = keypair_from_secret(secret)
    return found


async def lookup_or_generate(
    client: ReaderWriter, namespace: str, cluster_name: str, owner: OwnerReference | None,
    purposes: tuple[str, ...] = CONTROL_PLANE_PURPOSES,
    ca_validity_days: int = DEFAULT_CA_VALIDITY_DAYS,
) -> dict[str, KeyPair]:
    """Read each certificate, generating and creating only those missing. Never replaces an
    existing Secret: on a lost creation race the winner's Secret is used."""
    found: dict[str, KeyPair] = {}
    for purpose in purposes:
        name = c.secret_name(cluster_name, purpose)
        try:
            found[purpose] = keypair_from_secret(await client.get("v1", "Secret", name,
                                                                  namespace))
            continue
        except NotFound:
            pass
        pair = generate(purpose, ca_validity_days)
        try:
            await client.create(secret_for(cluster_name, namespace, purpose, pair, owner))
            found[purpose] = pair
        except AlreadyExists:
            found[purpose] = keypair_from_secret(await client.get("v1", "Secret", name,
                                                                  namespace))
    return found
