"""Authentication: who is making this request, decided before the API server sees it.

`Authenticator` is an ASGI middleware in front of `shipyard.apiserver.app.APIServer`. It mirrors
kube-apiserver's union authenticator, in its order, stopping at the first success:

1. x509 client certificate. TLS (see `serving`) has verified the peer's chain against our CA and
   the protocol put the leaf in ``scope["extensions"]["tls"]["client_cert_chain"]`` (ASGI TLS
   extension: PEM strings). We check it once more against ``client_ca`` (issued by it, inside
   its validity, clientAuth usage if an EKU is present): user = subject CN, groups = subject O.
2. Bearer token: ``Authorization: Bearer <token>`` (scheme case-insensitive) looked up in
   ``tokens``, as kube-apiserver's ``--token-auth-file``, whose format `load_token_file` reads.
3. Bootstrap token (kube-apiserver's ``--enable-bootstrap-token-auth``), when a `BootstrapTokens`
   is given: a bearer token ``<id>.<secret>`` (``[a-z0-9]{6}.[a-z0-9]{16}``) is valid while the
   Secret ``bootstrap-token-<id>`` in ``kube-system`` has type ``bootstrap.kubernetes.io/token``,
   ``token-secret`` equal to ``<secret>``, ``usage-bootstrap-authentication: "true"``, no
   deletionTimestamp and an ``expiration`` (RFC 3339) in the future or none. The user is
   ``system:bootstrap:<id>`` in groups ``system:bootstrappers`` plus ``auth-extra-groups``
   (comma-separated, each must start with ``system:bootstrappers:``). Anything else is 401.

Every authenticated user also gets the group ``system:authenticated``. The result is a `User` at
``scope["extensions"]["shipyard.user"]``. A request that authenticates as nobody gets kube's 401
Status (reason Unauthorized), except GETs of ``allow_anonymous_paths``: by default the paths that
kube's ``system:public-info-viewer`` role opens to ``system:unauthenticated`` (health, version),
which then run as ``system:anonymous``. Pass ``allow_anonymous_paths=()`` for kube-apiserver's
``--anonymous-auth=false``. A presented but unknown token is not anonymous: it is 401 everywhere.

Tokens never reach a log line. Scopes other than http/websocket (lifespan) pass straight through.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping
from pathlib import Path
from typing import Any, TypedDict

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shipyard.apimachinery.errors import Unauthorized

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

USER_EXTENSION = "shipyard.user"
AUTHENTICATED_GROUP = "system:authenticated"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"
PUBLIC_INFO_PATHS: tuple[str, ...] = ("/healthz", "/livez", "/readyz", "/version", "/version/")
CLUSTER_INFO_PATH = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
"""What kubeadm's discovery reads anonymously (its RBAC opens it to system:anonymous)."""
_CACHE_LIMIT = 1024


class User(TypedDict):
    name: str
    groups: list[str]


def anonymous() -> User:
    return {"name": ANONYMOUS_USER, "groups": [UNAUTHENTICATED_GROUP]}


def _with_authenticated_group(name: str, groups: Collection[str]) -> User:
    out = list(dict.fromkeys(groups))
    if AUTHENTICATED_GROUP not in out:
        out.append(AUTHENTICATED_GROUP)
    return {"name": name, "groups": out}


def load_token_file(path: Path) -> dict[str, User]:
    """Read a kube-apiserver static token file: ``token,user,uid[,"group1,group2,..."]``."""
    tokens: dict[str, User] = {}
    with path.open(newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) < 3 or not row[0] or not row[1]:
                # Say where, never what: the line holds a secret.
                raise ValueError(f"{path}:{lineno}: want token,user,uid[,groups]")
            groups = [g.strip() for g in row[3].split(",") if g.strip()] if len(row) > 3 else []
            tokens[row[0]] = {"name": row[1], "groups": groups}
    return tokens


def user_from_certificate(cert: x509.Certificate) -> User:
    """kube's x509 CommonNameUserConversion: CN is the user, each O a group."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    name = str(cns[0].value) if cns else ""
    return {"name": name, "groups": [str(o.value) for o in orgs]}


def bearer_token(headers: Collection[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is none."""
    for key, value in headers:
        if key == b"authorization":
            parts = value.decode("latin-1").strip().split(" ", 2)
            if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
                return None
            return parts[1]
    return None


BOOTSTRAP_TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
BOOTSTRAP_TOKEN_SECRET_TYPE = "bootstrap.kubernetes.io/token"
BOOTSTRAP_TOKEN_SECRET_PREFIX = "bootstrap-token-"
BOOTSTRAP_USER_PREFIX = "system:bootstrap:"
BOOTSTRAPPERS_GROUP = "system:bootstrappers"
SecretLookup = Callable[[str, str], Mapping[str, Any] | None]
"""(namespace, name) -> the Secret object as stored, or None."""


def secret_lookup_from_store(store: Any) -> SecretLookup:
    """A `SecretLookup` reading the API server's store (anything with ``get(key) -> Entry``)."""

    def lookup(namespace: str, name: str) -> Mapping[str, Any] | None:
        entry = store.get(f"/registry/core/secrets/{namespace}/{name}")
        if entry is None:
            return None
        obj: Mapping[str, Any] = entry.object()
        return obj

    return lookup


def _secret_value(data: Mapping[str, Any], key: str) -> str:
    raw = data.get(key)
    if not isinstance(raw, str):
        return ""
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


class BootstrapTokens:
    """kube's bootstrap token authenticator (plugin/pkg/auth/authenticator/token/bootstrap)."""

    def __init__(self, lookup: SecretLookup) -> None:
        self.lookup = lookup

    def authenticate(self, token: str) -> User | None:
        m = BOOTSTRAP_TOKEN_RE.match(token)
        if m is None:
            return None
        token_id, token_secret = m[1], m[2]
        secret = self.lookup("kube-system", BOOTSTRAP_TOKEN_SECRET_PREFIX + token_id)
        if secret is None or secret.get("type") != BOOTSTRAP_TOKEN_SECRET_TYPE:
            return None
        if (secret.get("metadata") or {}).get("deletionTimestamp"):
            return None
        data = secret.get("data") or {}
        if not hmac.compare_digest(_secret_value(data, "token-secret"), token_secret):
            return None
        if _secret_value(data, "token-id") not in ("", token_id):
            return None
        expiration = _secret_value(data, "expiration")
        if expiration:
            try:
                expires = datetime.datetime.fromisoformat(expiration.replace("Z", "+00:00"))
            except ValueError:
                return None
            if expires.tzinfo is None or expires <= datetime.datetime.now(datetime.UTC):
                return None
        if _secret_value(data, "usage-bootstrap-authentication") != "true":
            return None
        groups = [BOOTSTRAPPERS_GROUP]
        for group in _secret_value(data, "auth-extra-groups").split(","):
            group = group.strip()
            if not group:
                continue
            if not group.startswith(BOOTSTRAPPERS_GROUP + ":"):
                return None
            groups.append(group)
        return _with_authenticated_group(BOOTSTRAP_USER_PREFIX + token_id, groups)


class Authenticator:
    """ASGI middleware setting ``scope["extensions"]["shipyard.user"]``; see the module doc."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: Mapping[str, User],
        client_ca: x509.Certificate | None = None,
        allow_anonymous_paths: Collection[str] = PUBLIC_INFO_PATHS,
        bootstrap_tokens: BootstrapTokens | None = None,
    ) -> None:
        self.app = app
        self.bootstrap_tokens = bootstrap_tokens
        self.tokens: dict[str, User] = {
            t: _with_authenticated_group(u["name"], u["groups"]) for t, u in tokens.items()
        }
        self.client_ca = client_ca
        self.allow_anonymous_paths = frozenset(allow_anonymous_paths)
        # PEM of a client leaf -> (user or None when rejected, notAfter); parsing and signature
        # checks cost ~100 µs, and one client sends many requests with the same certificate.
        self._cert_cache: dict[str, tuple[User | None, datetime.datetime]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        user = self.authenticate(scope)
        if user is None:
            log.debug("401 for %s %s from %s", scope.get("method", "GET"), scope.get("path"),
                      scope.get("client"))
            await self._unauthorized(scope, send)
            return
        extensions = scope.get("extensions")
        if extensions is None:
            extensions = scope["extensions"] = {}
        extensions[USER_EXTENSION] = user
        await self.app(scope, receive, send)

    def authenticate(self, scope: Scope) -> User | None:
        """The request's user; anonymous only where allowed; None means 401."""
        tls = (scope.get("extensions") or {}).get("tls")
        if tls and self.client_ca is not None:
            chain = tls.get("client_cert_chain") or ()
            if chain:
                user = self._user_from_pem(chain[0])
                if user is not None:
                    return user
        token = bearer_token(scope.get("headers") or ())
        if token is not None:
            user = self.tokens.get(token)
            if user is None and self.bootstrap_tokens is not None:
                user = self.bootstrap_tokens.authenticate(token)
            return user
        if scope.get("method", "GET") in ("GET", "HEAD") and (
            scope.get("path") in self.allow_anonymous_paths
        ):
            return anonymous()
        return None

    def _user_from_pem(self, pem: str) -> User | None:
        now = datetime.datetime.now(datetime.UTC)
        cached = self._cert_cache.get(pem)
        if cached is None:
            cached = self._verify(pem)
            if len(self._cert_cache) >= _CACHE_LIMIT:
                self._cert_cache.clear()
            self._cert_cache[pem] = cached
        user, not_after = cached
        return user if now < not_after else None

    def _verify(self, pem: str) -> tuple[User | None, datetime.datetime]:
        epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        assert self.client_ca is not None
        try:
            cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
            cert.verify_directly_issued_by(self.client_ca)
        except (ValueError, TypeError, InvalidSignature):
            return None, epoch
        if cert.not_valid_before_utc > datetime.datetime.now(datetime.UTC):
            return None, epoch
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = None
        if eku is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
            return None, epoch
        user = user_from_certificate(cert)
        if not user["name"]:
            return None, epoch
        return _with_authenticated_group(user["name"], user["groups"]), cert.not_valid_after_utc

    @staticmethod
    async def _unauthorized(scope: Scope, send: Send) -> None:
        if scope["type"] == "websocket":
            # Closing before accept makes the server answer the upgrade with 403.
            await send({"type": "websocket.close", "code": 1008})
            return
        body = orjson.dumps(Unauthorized("Unauthorized").status())
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-cache, private"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
