"""Node client certificates for joining workers: a CSR flow over Secrets.

Why: after ``kubeadm join`` authenticated with a bootstrap token, the kubelet needs a
credential of its own, ``CN=system:node:<node>, O=system:nodes``, signed by the cluster CA,
which only control-plane machines hold. Upstream does this with the certificates.k8s.io
CertificateSigningRequest API (signer ``kubernetes.io/kube-apiserver-client-kubelet``, approved
for the bootstrappers group by kube-controller-manager). Shipyard's API server does not serve
that API, so the same exchange runs over a Secret (a documented deviation):

- the joining machine creates Secret ``kube-system/node-csr-<node>`` of type `CSR_TYPE` with
  key ``request`` (a PEM PKCS#10 request; `request`);
- a control-plane kubelet (`sign_pending`) signs requests whose subject is exactly
  ``O=system:nodes, CN=system:node:<node>`` for the node the Secret names, with the CA in the
  machine's ``/etc/kubernetes/pki``, valid one year, usage clientAuth, and writes key
  ``certificate``; any other request gets key ``denied`` with the reason;
- the joining machine polls for ``certificate`` (`wait_for_certificate`), then deletes the
  Secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import logging
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shipyard.apimachinery.errors import (
    AlreadyExists,
    InternalError,
    NotFound,
    ServiceUnavailable,
    Timeout,
    TooManyRequests,
)
from shipyard.bootstrap.kubeadm.certs import (
    KeyPair,
    encode_private_key,
    load_private_key,
    new_private_key,
)
from shipyard.client import Client
from shipyard.node.machine import rooted

log = logging.getLogger(__name__)

CSR_TYPE: Final = "shipyard.io/node-csr"
NAMESPACE: Final = "kube-system"
NODES_GROUP: Final = "system:nodes"
NODE_USER_PREFIX: Final = "system:node:"
VALIDITY: Final = datetime.timedelta(days=365)


class SigningDenied(RuntimeError):
    pass


def secret_name(node: str) -> str:
    return f"node-csr-{node}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def request(node: str) -> tuple[bytes, bytes]:
    """(PEM CSR, PEM key) for the node's client identity."""
    key = new_private_key()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODES_GROUP),
                                    x509.NameAttribute(NameOID.COMMON_NAME,
                                                       NODE_USER_PREFIX + node)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM), encode_private_key(key)


def sign(ca: KeyPair, csr_pem: bytes, node: str) -> bytes:
    """The signed PEM certificate; raises `SigningDenied` for a subject other than the
    node's."""
    csr = x509.load_pem_x509_csr(csr_pem)
    if not csr.is_signature_valid:
        raise SigningDenied("the request's signature is invalid")
    want = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODES_GROUP),
                      x509.NameAttribute(NameOID.COMMON_NAME, NODE_USER_PREFIX + node)])
    if csr.subject != want:
        raise SigningDenied(f"subject {csr.subject.rfc4514_string()} is not "
                            f"{want.rfc4514_string()}")
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_cert.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(min(now + VALIDITY, ca_cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=True, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(load_private_key(ca.key), hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def issue(ca: KeyPair, node: str) -> KeyPair:
    """A node client certificate issued directly (a machine holding the CA key)."""
    csr, key = request(node)
    return KeyPair(sign(ca, csr, node), key)


def local_ca(root: Path, certificates_dir: str = "/etc/kubernetes/pki") -> KeyPair:
    base = rooted(root, certificates_dir)
    return KeyPair((base / "ca.crt").read_bytes(), (base / "ca.key").read_bytes())


async def sign_pending(client: Client, root: Path) -> None:
    secrets = await client.list("v1", "Secret", NAMESPACE)
    pending = [s for s in secrets["items"] if s.get("type") == CSR_TYPE
               and not {"certificate", "denied"} & set(s.get("data") or {})]
    if not pending:
        return
    ca = local_ca(root)
    for secret in pending:
        secret.update(apiVersion="v1", kind="Secret")  # list items carry neither
        node = secret["metadata"]["name"].removeprefix("node-csr-")
        data: dict[str, Any] = secret.setdefault("data", {})
        try:
            data["certificate"] = _b64(sign(ca, base64.b64decode(data.get("request", "")), node))
        except (SigningDenied, ValueError) as e:
            data["denied"] = _b64(str(e).encode())
        await client.update(secret)


TRANSIENT: Final = (InternalError, ServiceUnavailable, Timeout, TooManyRequests, OSError,
                    TimeoutError)
"""What a busy control plane answers while etcd elects a leader or a member joins: worth
another try until the deadline, as a kubelet's bootstrap retries."""


async def obtain(client: Client, node: str, timeout: float) -> KeyPair:
    """Ask for the node's client certificate and wait for it (bounded by ``timeout``); server
    errors and timeouts on the way are retried until then."""
    csr, key = request(node)
    body = {"apiVersion": "v1", "kind": "Secret", "type": CSR_TYPE,
            "metadata": {"name": secret_name(node), "namespace": NAMESPACE},
            "data": {"request": _b64(csr)}}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def expired(error: Exception) -> bool:
        if loop.time() > deadline:
            return True
        log.info("node certificate request for %s: %s; retrying", node, error)
        return False

    while True:
        try:
            try:
                await client.create(body)
            except AlreadyExists:
                await client.delete("v1", "Secret", secret_name(node), NAMESPACE)
                await client.create(body)
            break
        except TRANSIENT as e:
            if expired(e):
                raise
            await asyncio.sleep(1.0)
    while True:
        try:
            data = (await client.get("v1", "Secret", secret_name(node), NAMESPACE)).get(
                "data") or {}
        except NotFound:
            data = {}
        except TRANSIENT as e:
            if expired(e):
                raise
            data = {}
        if "denied" in data:
            raise SigningDenied(base64.b64decode(data["denied"]).decode())
        if "certificate" in data:
            with contextlib.suppress(NotFound):
                await client.delete("v1", "Secret", secret_name(node), NAMESPACE)
            return KeyPair(base64.b64decode(data["certificate"]), key)
        if loop.time() > deadline:
            raise TimeoutError(f"no control-plane machine signed the node certificate of "
                               f"{node} within {timeout:.0f} s")
        await asyncio.sleep(0.5)
