"""kube-controller-manager's bootstrap signer: signs ``kube-public/cluster-info`` with every
bootstrap token, so a joining machine can trust what it read before it trusts the server.

Why: ``kubeadm join`` reads cluster-info without credentials, over TLS it cannot verify yet.
The ConfigMap carries ``jws-kubeconfig-<token-id>``: a JWS (HS256, key = the token secret) of
its ``kubeconfig``, so only someone holding the token could have produced it. A control-plane
kubelet runs `sign` every loop (idempotent).

Contract (upstream's bootstrapsigner and ``jws.ComputeDetachedSignature``):
- `detached_signature(content, token_id, token_secret)` is the compact JWS with detached payload
  ``<b64url({"alg":"HS256","kid":"<id>"})>..<b64url(HMAC-SHA256)>`` (no padding).
- `sign` keeps one ``jws-kubeconfig-<id>`` per valid token Secret of kube-system (type
  ``bootstrap.kubernetes.io/token``, ``usage-bootstrap-signing: "true"``, not expired) and drops
  the others.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from typing import Any, Final

from shipyard.apimachinery.errors import Conflict, NotFound
from shipyard.client import Client

JWS_PREFIX: Final = "jws-kubeconfig-"
TOKEN_TYPE: Final = "bootstrap.kubernetes.io/token"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def detached_signature(content: str, token_id: str, token_secret: str) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "kid": token_id},
                                separators=(",", ":")).encode())
    payload = _b64url(content.encode())
    mac = hmac.new(token_secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}..{_b64url(mac.digest())}"


def verify(content: str, signature: str, token_id: str, token_secret: str) -> bool:
    return hmac.compare_digest(detached_signature(content, token_id, token_secret), signature)


def _value(data: dict[str, Any], key: str) -> str:
    raw = data.get(key)
    return base64.b64decode(raw).decode() if isinstance(raw, str) else ""


def signing_tokens(secrets: list[dict[str, Any]],
                   now: datetime.datetime | None = None) -> dict[str, str]:
    """token id → secret for the tokens allowed to sign."""
    now = now or datetime.datetime.now(datetime.UTC)
    out = {}
    for secret in secrets:
        data = secret.get("data") or {}
        if secret.get("type") != TOKEN_TYPE or _value(data, "usage-bootstrap-signing") != "true":
            continue
        expiration = _value(data, "expiration")
        if expiration:
            try:
                if datetime.datetime.fromisoformat(expiration.replace("Z", "+00:00")) <= now:
                    continue
            except ValueError:
                continue
        token_id, token_secret = _value(data, "token-id"), _value(data, "token-secret")
        if token_id and token_secret:
            out[token_id] = token_secret
    return out


async def sign(client: Client) -> None:
    try:
        cm = await client.get("v1", "ConfigMap", "cluster-info", "kube-public")
    except NotFound:
        return
    data: dict[str, str] = cm.setdefault("data", {})
    content = data.get("kubeconfig", "")
    tokens = signing_tokens((await client.list("v1", "Secret", "kube-system"))["items"])
    wanted = {JWS_PREFIX + tid: detached_signature(content, tid, secret)
              for tid, secret in tokens.items()}
    current = {k: v for k, v in data.items() if k.startswith(JWS_PREFIX)}
    if current == wanted:
        return
    cm["data"] = {**{k: v for k, v in data.items() if not k.startswith(JWS_PREFIX)}, **wanted}
    try:
        await client.update(cm)
    except Conflict:
        pass  # another control-plane machine signed meanwhile: next pass
