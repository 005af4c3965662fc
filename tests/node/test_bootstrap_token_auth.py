"""The bootstrap-token authenticator on a real Shipyard server: a kube-system
``bootstrap-token-<id>`` Secret makes ``<id>.<secret>`` a credential until it expires."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.apiserver import authn, certs
from shipyard.apiserver.serving import ServingOptions, serve_in_thread
from shipyard.cli.apiserver import new_api_server
from shipyard.storage import SQLiteStore
from tests.kube import Client

TOKEN_ID = "abcdef"
TOKEN_SECRET = "0123456789abcdef"


@pytest.fixture(scope="module")
def bootstrap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    root = tmp_path_factory.mktemp("bootstrap-authn")
    pki = certs.ensure_pki(root / "pki", key_type="ecdsa")
    store = SQLiteStore(root / "state.db")
    app = authn.Authenticator(
        new_api_server(store),
        tokens=authn.load_token_file(pki.token_file),
        client_ca=certs.load_cert(pki.ca_cert),
        bootstrap_tokens=authn.BootstrapTokens(authn.secret_lookup_from_store(store)),
    )
    options = ServingOptions(port=0, cert_file=pki.serving_cert, key_file=pki.serving_key,
                             client_ca_file=pki.ca_cert, shutdown_timeout=1)
    with serve_in_thread(app, options) as running:
        yield f"https://127.0.0.1:{running.bound_port}", pki.ca_cert, pki.admin_token


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _put_token(admin: Client, token_id: str, secret: str, *, expires: datetime.datetime,
               usage: str = "true", extra: str = "system:bootstrappers:kubeadm:default-node-token",
               type_: str = "bootstrap.kubernetes.io/token") -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "type": type_,
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "data": {"token-id": _b64(token_id), "token-secret": _b64(secret),
                     "expiration": _b64(expires.strftime("%Y-%m-%dT%H:%M:%SZ")),
                     "usage-bootstrap-authentication": _b64(usage),
                     "usage-bootstrap-signing": _b64("true"),
                     "auth-extra-groups": _b64(extra)}}
    admin.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": "kube-system"}})
    resp = admin.post("/api/v1/namespaces/kube-system/secrets", body)
    assert resp.status == 201, resp.body


def test_valid_token_authenticates_as_bootstrap_user(
        bootstrap_server: tuple[str, Path, str]) -> None:
    url, ca, admin_token = bootstrap_server
    admin = Client(url, admin_token, ca)
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    _put_token(admin, TOKEN_ID, TOKEN_SECRET, expires=future)
    user = Client(url, f"{TOKEN_ID}.{TOKEN_SECRET}", ca)
    resp = user.get("/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef")
    assert resp.status == 200, resp.body
    assert resp.json()["type"] == "bootstrap.kubernetes.io/token"


@pytest.mark.parametrize("token", [
    f"{TOKEN_ID}.ffffffffffffffff",      # wrong secret
    "zzzzzz.0123456789abcdef",           # no such Secret
    "abcdef0123456789abcdef",            # not <id>.<secret>
])
def test_wrong_token_is_401(bootstrap_server: tuple[str, Path, str], token: str) -> None:
    url, ca, admin_token = bootstrap_server
    admin = Client(url, admin_token, ca)
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    if admin.get("/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef").status != 200:
        _put_token(admin, TOKEN_ID, TOKEN_SECRET, expires=future)
    resp = Client(url, token, ca).get("/api/v1/namespaces")
    assert resp.status == 401
    assert resp.json()["reason"] == "Unauthorized"


def test_expired_or_unusable_token_is_401(bootstrap_server: tuple[str, Path, str]) -> None:
    url, ca, admin_token = bootstrap_server
    admin = Client(url, admin_token, ca)
    now = datetime.datetime.now(datetime.UTC)
    _put_token(admin, "expird", "0123456789abcdef", expires=now - datetime.timedelta(seconds=5))
    _put_token(admin, "nousag", "0123456789abcdef", expires=now + datetime.timedelta(hours=1),
               usage="false")
    _put_token(admin, "badtyp", "0123456789abcdef", expires=now + datetime.timedelta(hours=1),
               type_="Opaque")
    _put_token(admin, "badgrp", "0123456789abcdef", expires=now + datetime.timedelta(hours=1),
               extra="system:masters")
    for token_id in ("expird", "nousag", "badtyp", "badgrp"):
        resp = Client(url, f"{token_id}.0123456789abcdef", ca).get("/api/v1/namespaces")
        assert resp.status == 401, token_id
