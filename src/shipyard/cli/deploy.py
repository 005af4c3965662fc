"""The controllers as a workload of a real management cluster: the manifests `shipyard init`
applies when the management cluster is not the embedded plane.

One Deployment (`shipyard-controller-manager` in `capi-system`) runs `shipyard controllers`
for the recorded providers with leader election on a Lease in its namespace, under its own
ServiceAccount bound to a ClusterRole holding what the controllers touch: every
`*.cluster.x-k8s.io` kind, Secrets and ConfigMaps (kubeconfigs, bootstrap data, init locks),
Events, Leases, Namespaces and CRDs (read, and create for providers added later).
`apply(client, manifests)` creates each object or replaces its spec, so re-running `init`
converges rather than failing.

The conversion webhook, as upstream deploys it but without cert-manager (`webhook_pki` plays
its part: a self-signed CA, kept in the Secret `capi-webhook-ca` and reused until it nears
expiry, signs a serving certificate for `capi-webhook-service.capi-system.svc` and
`.svc.cluster.local`, re-issued only when missing, expiring or not from that CA): the
Deployment's second container, `webhook`, runs `shipyard conversion-webhook` on port 9443
(`webhook-server`) with the Secret `capi-webhook-service-cert` (kubernetes.io/tls: tls.crt,
tls.key, ca.crt) mounted read-only at
`/tmp/k8s-webhook-server/serving-certs`, controller-runtime's default cert dir; the Service
`capi-webhook-service` sends port 443 to it on every replica (conversion needs no leader); every
installed CRD served at more than one version, of a group the webhook converts, gets
`conversion.strategy: Webhook` with that Service and the CA as `caBundle` (`wire_crds`). The
pod template carries the serving certificate's digest, so a re-issued certificate rolls the
pods onto it. A container of its own rather than a listener inside `shipyard controllers`: it
serves whether or not this replica leads, and a controller crash never takes conversion (and
with it every v1beta1 read) down. `remove(client)` takes all of it away again and puts the CRDs
back to conversion `None`, so they stay servable without the webhook.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shipyard.apiserver import certs

NAMESPACE = "capi-system"
NAME = "shipyard-controller-manager"
LABELS = {"cluster.x-k8s.io/provider": "cluster-api", "control-plane": "controller-manager"}

WEBHOOK_SERVICE = "capi-webhook-service"
WEBHOOK_CERT_SECRET = "capi-webhook-service-cert"
WEBHOOK_CA_SECRET = "capi-webhook-ca"
WEBHOOK_PORT = 9443
WEBHOOK_CERT_DIR = "/tmp/k8s-webhook-server/serving-certs"
WEBHOOK_PATH = "/convert"
SERVING_CERT_ANNOTATION = "shipyard.io/webhook-serving-cert-sha256"
CA_COMMON_NAME = "capi-webhook-ca"
# A CA this close to expiry is replaced (with a new serving certificate and caBundle).
CA_RENEW_BEFORE = datetime.timedelta(days=90)
CRD_API = "apiextensions.k8s.io/v1"


def service_names(namespace: str = NAMESPACE, name: str = WEBHOOK_SERVICE) -> list[str]:
    """The DNS names kube-apiserver may verify the webhook's certificate against."""
    return [f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"]


# ----------------------------------------------------------------------------- certificates

@dataclass(frozen=True)
class WebhookPKI:
    """PEM bytes of the webhook's CA and serving certificate."""

    ca_cert: bytes
    ca_key: bytes
    tls_cert: bytes
    tls_key: bytes

    @property
    def ca_bundle(self) -> str:
        """The CRDs' ``caBundle``: base64 of the CA certificate."""
        return base64.b64encode(self.ca_cert).decode()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.tls_cert).hexdigest()[:32]


def _pem_key(key: certs.PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _load(cert_pem: bytes, key_pem: bytes) -> tuple[x509.Certificate, certs.PrivateKey] | None:
    """The pair, or None when either does not parse or the key is not the certificate's."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if (cert.public_key().public_bytes(serialization.Encoding.DER, spki)
            != key.public_key().public_bytes(serialization.Encoding.DER, spki)):
        return None
    return cert, key


def _serving_usable(cert: x509.Certificate, ca: x509.Certificate, names: Iterable[str],
                    now: datetime.datetime) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return (set(sans.get_values_for_type(x509.DNSName)) >= set(names)
            and cert.not_valid_after_utc - certs.RENEW_BEFORE > now)


def webhook_pki(ca: tuple[bytes, bytes] | None, serving: tuple[bytes, bytes] | None,
                names: list[str] | None = None) -> WebhookPKI:
    """The CA and serving certificate to deploy, given those deployed now (PEM cert and key
    pairs, or None): each kept while it is usable, so re-running `init` changes nothing."""
    names = names or service_names()
    now = datetime.datetime.now(datetime.UTC)
    loaded_ca = _load(*ca) if ca else None
    if loaded_ca is None or loaded_ca[0].not_valid_after_utc - CA_RENEW_BEFORE <= now:
        ca_key = certs.generate_key("ecdsa")
        loaded_ca = certs.create_ca(ca_key, CA_COMMON_NAME), ca_key
    ca_cert, ca_key = loaded_ca
    loaded = _load(*serving) if serving else None
    if loaded is None or not _serving_usable(loaded[0], ca_cert, names, now):
        key = certs.generate_key("ecdsa")
        loaded = certs.issue_certificate(ca_cert, ca_key, key, common_name=names[0],
                                         sans=names, server=True), key
    return WebhookPKI(ca_cert=_pem_cert(ca_cert), ca_key=_pem_key(ca_key),
                      tls_cert=_pem_cert(loaded[0]), tls_key=_pem_key(loaded[1]))


async def _secret_pair(client: Any, name: str) -> tuple[bytes, bytes] | None:
    from shipyard.apimachinery.errors import NotFound

    try:
        secret = await client.get("v1", "Secret", name, NAMESPACE)
    except NotFound:
        return None
    data = secret.get("data") or {}
    if "tls.crt" not in data or "tls.key" not in data:
        return None
    return base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"])


async def ensure_pki(client: Any) -> WebhookPKI:
    """The webhook's certificates: those in the cluster's Secrets while usable, else new."""
    return webhook_pki(await _secret_pair(client, WEBHOOK_CA_SECRET),
                       await _secret_pair(client, WEBHOOK_CERT_SECRET))


def _tls_secret(name: str, data: dict[str, bytes]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": LABELS},
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}


# ----------------------------------------------------------------------------- manifests

def manifests(image: str, provider_args: list[str], pki: WebhookPKI | None = None
              ) -> list[dict[str, Any]]:
    """Everything `init` applies, in order; with ``pki``, the webhook's Secrets, Service and
    container too."""
    rules = [
        {"apiGroups": ["cluster.x-k8s.io", "bootstrap.cluster.x-k8s.io",
                       "controlplane.cluster.x-k8s.io", "infrastructure.cluster.x-k8s.io",
                       "clusterctl.cluster.x-k8s.io"],
         "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"],
         "verbs": ["create", "patch", "update"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]},
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
         "verbs": ["get", "list", "watch", "create"]},
    ]
    security = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": True}
    command = ["shipyard", "controllers", "--leader-elect",
               "--leader-election-namespace", NAMESPACE,
               "--metrics-bind-address", "0.0.0.0:8080", *provider_args]
    containers: list[dict[str, Any]] = [{
        "name": "manager", "image": image, "command": command,
        "ports": [{"name": "metrics", "containerPort": 8080}],
        "securityContext": security,
    }]
    pod_spec: dict[str, Any] = {"serviceAccountName": NAME, "terminationGracePeriodSeconds": 10,
                                "containers": containers}
    template_meta: dict[str, Any] = {"labels": LABELS}
    webhook: list[dict[str, Any]] = []
    if pki is not None:
        containers.append({
            "name": "webhook", "image": image,
            "command": ["shipyard", "conversion-webhook", "--cert-dir", WEBHOOK_CERT_DIR,
                        "--bind-address", "0.0.0.0", "--port", str(WEBHOOK_PORT)],
            "ports": [{"name": "webhook-server", "containerPort": WEBHOOK_PORT,
                       "protocol": "TCP"}],
            "readinessProbe": {"tcpSocket": {"port": "webhook-server"}, "periodSeconds": 5},
            "volumeMounts": [{"name": "cert", "mountPath": WEBHOOK_CERT_DIR, "readOnly": True}],
            "securityContext": security,
        })
        pod_spec["volumes"] = [{"name": "cert", "secret": {"secretName": WEBHOOK_CERT_SECRET}}]
        template_meta["annotations"] = {SERVING_CERT_ANNOTATION: pki.digest}
        webhook = [
            _tls_secret(WEBHOOK_CA_SECRET, {"tls.crt": pki.ca_cert, "tls.key": pki.ca_key}),
            _tls_secret(WEBHOOK_CERT_SECRET, {"tls.crt": pki.tls_cert, "tls.key": pki.tls_key,
                                              "ca.crt": pki.ca_cert}),
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": WEBHOOK_SERVICE, "namespace": NAMESPACE, "labels": LABELS},
             "spec": {"ports": [{"port": 443, "targetPort": "webhook-server",
                                 "protocol": "TCP"}],
                      "selector": LABELS}},
        ]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": LABELS}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": NAME, "labels": LABELS}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": NAME, "labels": LABELS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": NAME},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        *webhook,
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": LABELS},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": LABELS},
             "template": {"metadata": template_meta, "spec": pod_spec},
         }},
    ]


async def apply(client: Any, objects: list[dict[str, Any]]) -> None:
    """Create each object, or bring the existing one to it: a Service keeps what the server
    allocated (its cluster IP) under the fields given; other kinds take the given fields."""
    from shipyard.apimachinery.errors import AlreadyExists

    for obj in objects:
        try:
            await client.create(obj)
        except AlreadyExists:
            meta = obj["metadata"]
            current = await client.get(obj["apiVersion"], obj["kind"], meta["name"],
                                       meta.get("namespace"))
            if obj["kind"] == "Service":
                current["spec"] = {**current.get("spec", {}), **obj["spec"]}
            else:
                for key in ("spec", "rules", "roleRef", "subjects", "data"):
                    if key in obj:
                        current[key] = obj[key]
            await client.update(current)


# ----------------------------------------------------------------------------- CRDs

def conversion(ca_bundle: str) -> dict[str, Any]:
    """The ``spec.conversion`` of a CRD converted by the deployed webhook."""
    return {"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": {"service": {"namespace": NAMESPACE, "name": WEBHOOK_SERVICE,
                                     "path": WEBHOOK_PATH, "port": 443},
                         "caBundle": ca_bundle}}}


def wants_webhook(crd: dict[str, Any], groups: Iterable[str]) -> bool:
    """Served at several versions, in a group the webhook converts."""
    spec = crd["spec"]
    served = [v for v in spec.get("versions") or [] if v.get("served")]
    return len(served) > 1 and spec["group"] in set(groups)


def _points_here(crd: dict[str, Any]) -> bool:
    webhook = (crd["spec"].get("conversion") or {}).get("webhook") or {}
    service = (webhook.get("clientConfig") or {}).get("service") or {}
    return service.get("namespace") == NAMESPACE and service.get("name") == WEBHOOK_SERVICE


async def _set_conversion(client: Any, name: str, value: dict[str, Any]) -> None:
    await client.patch(CRD_API, "CustomResourceDefinition", name,
                       [{"op": "add", "path": "/spec/conversion", "value": value}],
                       patch_type="json")


async def wire_crds(client: Any, names: Iterable[str], ca_bundle: str) -> list[str]:
    """Point the named CRDs that `wants_webhook` at the deployed webhook; returns those whose
    conversion changed. CRDs absent from the cluster are skipped."""
    from shipyard.apimachinery.errors import NotFound
    from shipyard.cli.webhook import converters

    groups = list(converters())
    wanted = conversion(ca_bundle)
    changed = []
    for name in names:
        try:
            crd = await client.get(CRD_API, "CustomResourceDefinition", name)
        except NotFound:
            continue
        if wants_webhook(crd, groups) and crd["spec"].get("conversion") != wanted:
            await _set_conversion(client, name, wanted)
            changed.append(name)
    return changed


async def served_ca_bundle(client: Any) -> str | None:
    """The deployed webhook's ``caBundle`` (its serving Secret's ``ca.crt``), or None when no
    webhook is deployed here (or this identity may not read Secrets in its namespace)."""
    from shipyard.apimachinery.errors import Forbidden, NotFound

    try:
        secret = await client.get("v1", "Secret", WEBHOOK_CERT_SECRET, NAMESPACE)
    except (NotFound, Forbidden):
        return None
    ca = (secret.get("data") or {}).get("ca.crt")
    return str(ca) if ca else None


async def deploy(client: Any, image: str, provider_args: list[str],
                 crd_names: Iterable[str]) -> WebhookPKI:
    """Apply the controller Deployment with its webhook and wire the named CRDs to it."""
    pki = await ensure_pki(client)
    await apply(client, manifests(image, provider_args, pki))
    await wire_crds(client, crd_names, pki.ca_bundle)
    return pki


async def refresh(client: Any, crd_names: Iterable[str]) -> bool:
    """Where the webhook is deployed: renew its certificates if due (rolling the pods onto a
    new one) and wire the named CRDs (`upgrade apply`'s step). False when none is deployed."""
    from shipyard.apimachinery.errors import NotFound

    if await served_ca_bundle(client) is None:
        return False
    pki = await ensure_pki(client)
    await apply(client, [o for o in manifests("unused", [], pki) if o["kind"] == "Secret"])
    try:
        await client.patch("apps/v1", "Deployment", NAME, {"spec": {"template": {"metadata": {
            "annotations": {SERVING_CERT_ANNOTATION: pki.digest}}}}}, NAMESPACE)
    except NotFound:
        pass
    await wire_crds(client, crd_names, pki.ca_bundle)
    return True


async def remove(client: Any) -> list[str]:
    """Delete what `deploy` applied (not the namespace) and put every CRD converted by its
    webhook back to conversion `None` (not on a Shipyard server, which converts in process
    whatever its CRDs say); returns what was done."""
    from shipyard.apimachinery.errors import NotFound
    from shipyard.cli.init import is_shipyard
    from shipyard.client import NoKindMatchError

    done = []
    every = manifests("unused", [], WebhookPKI(b"", b"", b"", b""))
    for obj in reversed(every[1:]):  # keep the namespace
        meta = obj["metadata"]
        try:
            await client.delete(obj["apiVersion"], obj["kind"], meta["name"],
                                meta.get("namespace"))
            done.append(f"Deleting {obj['kind']}={meta['name']!r}")
        except (NotFound, NoKindMatchError):
            pass
    if await is_shipyard(client):
        return done  # its CRDs name the webhook, but the server converts in process
    for crd in (await client.list(CRD_API, "CustomResourceDefinition"))["items"]:
        if _points_here(crd):
            await _set_conversion(client, crd["metadata"]["name"], {"strategy": "None"})
            done.append(f"Conversion of CustomResourceDefinition={crd['metadata']['name']!r} "
                        "set to None")
    return done


__all__ = ["LABELS", "NAME", "NAMESPACE", "WEBHOOK_CA_SECRET", "WEBHOOK_CERT_SECRET",
           "WEBHOOK_SERVICE", "WebhookPKI", "apply", "conversion", "deploy", "ensure_pki",
           "manifests", "refresh", "remove", "served_ca_bundle", "service_names", "webhook_pki",
           "wire_crds", "wants_webhook"]
