"""The `<cluster>-kubeconfig` Secret: an admin kubeconfig whose client certificate the
cluster CA signed, as upstream's `util/kubeconfig` package writes it.

Why here: the control-plane provider creates this Secret once the cluster's CA exists, and the
Machine controller (and users, via `clusterctl get kubeconfig`) reach the workload cluster with
it. It lives beside the certificates because it is derived from the `<cluster>-ca` key pair.

Contract:
- `generate(cluster_name, server, ca)` returns kubeconfig YAML: cluster `<cluster>` with the
  CA inline, user `<cluster>-admin` with a client certificate (CN `kubernetes-admin`,
  O `system:masters`, RSA 2048, valid 1 year), context `<cluster>-admin@<cluster>`, current.
- `secret(cluster_name, namespace, text, owner)` wraps it: key `value`, type
  `cluster.x-k8s.io/secret`, label `cluster.x-k8s.io/cluster-name`, controller-owned.
- `needs_client_cert_rotation(text, within)` is True when the client certificate expires
  within `within` (upstream renews at half the 1-year validity); `regenerate` keeps the server
  and CA and mints a new client certificate.
- `create_secret(client, cluster, server=, owner=)` and `rotate_if_needed(client, cluster,
  namespace)` do the same against the API, reading the CA from `<cluster>-ca` (for the
  control-plane provider).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import yaml
from cryptography import x509

from shipyard.api.core import constants as c
from shipyard.client.interfaces import Object, OwnerReference, ReaderWriter

from . import certs
from .certs import KeyPair, issue

CLIENT_CERT_VALIDITY: Final = timedelta(days=365)
CLIENT_CERT_RENEWAL: Final = CLIENT_CERT_VALIDITY / 2
ADMIN_COMMON_NAME: Final = "kubernetes-admin"
ADMIN_ORGANIZATION: Final = "system:masters"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def client_certificate(ca: KeyPair, common_name: str = ADMIN_COMMON_NAME,
                       organization: str = ADMIN_ORGANIZATION,
                       validity: timedelta = CLIENT_CERT_VALIDITY) -> KeyPair:
    return issue(ca, common_name, organizations=(organization,), client=True,
                 validity=validity)


def generate(cluster_name: str, server: str, ca: KeyPair) -> str:
    """Admin kubeconfig for `server` (e.g. `https://10.0.0.1:6443`)."""
    client = client_certificate(ca)
    user = f"{cluster_name}-admin"
    context = f"{user}@{cluster_name}"
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {
            "server": server, "certificate-authority-data": _b64(ca.cert)}}],
        "users": [{"name": user, "user": {"client-certificate-data": _b64(client.cert),
                                          "client-key-data": _b64(client.key)}}],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": context,
    }
    return str(yaml.safe_dump(doc, sort_keys=False))


def secret(cluster_name: str, namespace: str, text: str,
           owner: OwnerReference | None = None) -> Object:
    meta: dict[str, Any] = {"name": c.kubeconfig_secret_name(cluster_name),
                            "namespace": namespace,
                            "labels": {c.CLUSTER_NAME_LABEL: cluster_name}}
    if owner is not None:
        meta["ownerReferences"] = [dict(owner)]
    return {"apiVersion": "v1", "kind": "Secret", "type": c.CLUSTER_SECRET_TYPE,
            "metadata": meta, "data": {c.KUBECONFIG_DATA_KEY: _b64(text.encode())}}


def _client_cert(text: str) -> x509.Certificate:
    doc = yaml.safe_load(text)
    data = doc["users"][0]["user"]["client-certificate-data"]
    return x509.load_pem_x509_certificate(base64.b64decode(data))


def client_cert_expiry(text: str) -> datetime:
    return _client_cert(text).not_valid_after_utc


def needs_client_cert_rotation(text: str, within: timedelta = CLIENT_CERT_RENEWAL,
                               now: datetime | None = None) -> bool:
    return client_cert_expiry(text) <= (now or datetime.now(UTC)) + within


def regenerate(text: str, ca: KeyPair) -> str:
    """The same kubeconfig with a freshly signed client certificate."""
    doc = yaml.safe_load(text)
    cluster_name = doc["clusters"][0]["name"]
    return generate(cluster_name, doc["clusters"][0]["cluster"]["server"], ca)


async def create_secret(client: ReaderWriter, cluster: Object, *, server: str | None = None,
                        owner: OwnerReference | None = None) -> Object:
    """Create `<cluster>-kubeconfig` from the cluster's `<cluster>-ca` (as upstream's
    `kubeconfig.CreateSecretWithOwner`): `server` defaults to
    `https://<spec.controlPlaneEndpoint.host>:<port>`, `owner` to the Cluster (not as
    controller). Raises `certs.MissingCertificate` without the CA, ValueError without an
    endpoint, AlreadyExists if it exists."""
    meta = cluster["metadata"]
    name, namespace = str(meta["name"]), str(meta["namespace"])
    if server is None:
        endpoint = (cluster.get("spec") or {}).get("controlPlaneEndpoint") or {}
        if not endpoint.get("host") or not endpoint.get("port"):
            raise ValueError(f"Cluster {name} has no spec.controlPlaneEndpoint yet")
        server = f"https://{endpoint['host']}:{endpoint['port']}"
    ca = (await certs.lookup(client, namespace, name, (certs.CA,)))[certs.CA]
    if owner is None:
        owner = {"apiVersion": str(cluster["apiVersion"]), "kind": "Cluster", "name": name,
                 "uid": str(meta["uid"])}
    return await client.create(secret(name, namespace, generate(name, server, ca), owner))


async def rotate_if_needed(client: ReaderWriter, cluster_name: str, namespace: str,
                           within: timedelta = CLIENT_CERT_RENEWAL) -> bool:
    """Re-sign the client certificate of `<cluster>-kubeconfig` when it expires within
    `within` (upstream's `NeedsClientCertRotation` + `RegenerateSecret`); True if rotated."""
    current = await client.get("v1", "Secret", c.kubeconfig_secret_name(cluster_name), namespace)
    text = base64.b64decode((current.get("data") or {})[c.KUBECONFIG_DATA_KEY]).decode()
    if not needs_client_cert_rotation(text, within):
        return False
    ca = (await certs.lookup(client, namespace, cluster_name, (certs.CA,)))[certs.CA]
    current["data"] = {**(current.get("data") or {}),
                       c.KUBECONFIG_DATA_KEY: _b64(regenerate(text, ca).encode())}
    await client.update(current)
    return True
