"""Authentication: kube's union of x509 client certificates and bearer tokens, 401 otherwise."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from shipyard.apiserver import certs
from shipyard.apiserver.authn import (
    Authenticator,
    User,
    bearer_token,
    load_token_file,
)
from shipyard.apiserver.serving import Server, ServingOptions, serve_in_thread

UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}
TOKEN = "s3cr3t-token"
TOKENS: dict[str, User] = {TOKEN: {"name": "alice", "groups": ["devs"]}}


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the user and TLS extension it was given; handles lifespan."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    extensions = scope.get("extensions") or {}
    body = orjson.dumps({"user": extensions.get("shipyard.user"), "tls": extensions.get("tls")})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def call(app: Any, scope: dict[str, Any]) -> tuple[int, dict[bytes, bytes], Any]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), orjson.loads(body)


def http_scope(path: str = "/api/v1/namespaces", *, method: str = "GET",
               headers: list[tuple[bytes, bytes]] | None = None,
               tls: dict[str, Any] | None = None) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http", "method": method, "path": path,
                             "headers": headers or [], "client": ("127.0.0.1", 5000)}
    if tls is not None:
        scope["extensions"] = {"tls": tls}
    return scope


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def pki(tmp_path: Path) -> certs.PKI:
    return certs.ensure_pki(tmp_path / "pki", key_type="ecdsa")


@pytest.fixture
def authenticator(pki: certs.PKI) -> Authenticator:
    return Authenticator(echo_app, tokens=TOKENS, client_ca=certs.load_cert(pki.ca_cert))


async def test_no_credentials_is_401_with_kube_status(authenticator: Authenticator) -> None:
    status, headers, body = await call(authenticator, http_scope())
    assert status == 401
    assert body == UNAUTHORIZED
    assert headers[b"content-type"] == b"application/json"


async def test_bearer_token_authenticates(authenticator: Authenticator) -> None:
    scope = http_scope(headers=[(b"authorization", b"Bearer " + TOKEN.encode())])
    status, _, body = await call(authenticator, scope)
    assert status == 200
    assert body["user"] == {"name": "alice", "groups": ["devs", "system:authenticated"]}


async def test_bearer_scheme_is_case_insensitive(authenticator: Authenticator) -> None:
    scope = http_scope(headers=[(b"authorization", b"bearer " + TOKEN.encode())])
    assert (await call(authenticator, scope))[0] == 200


@pytest.mark.parametrize("value", [b"Bearer wrong", b"Bearer " + TOKEN.encode() + b"x"])
async def test_unknown_token_is_401_even_on_public_paths(
    authenticator: Authenticator, value: bytes
) -> None:
    for path in ("/api", "/healthz"):
        status, _, body = await call(authenticator,
                                     http_scope(path, headers=[(b"authorization", value)]))
        assert (status, body) == (401, UNAUTHORIZED)


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/version", "/version/"])
async def test_public_info_paths_are_anonymous(authenticator: Authenticator, path: str) -> None:
    status, _, body = await call(authenticator, http_scope(path))
    assert status == 200
    assert body["user"] == {"name": "system:anonymous", "groups": ["system:unauthenticated"]}


@pytest.mark.parametrize(("path", "method"), [("/healthz/etcd", "GET"), ("/healthz", "POST"),
                                              ("/apis", "GET")])
async def test_other_paths_and_methods_are_not_anonymous(
    authenticator: Authenticator, path: str, method: str
) -> None:
    assert (await call(authenticator, http_scope(path, method=method)))[0] == 401


async def test_anonymous_can_be_switched_off() -> None:
    app = Authenticator(echo_app, tokens=TOKENS, allow_anonymous_paths=())
    assert (await call(app, http_scope("/healthz")))[0] == 401


async def test_client_certificate_from_our_ca(authenticator: Authenticator,
                                              pki: certs.PKI) -> None:
    tls = {"client_cert_chain": [pki.admin_cert.read_text()]}
    status, _, body = await call(authenticator, http_scope(tls=tls))
    assert status == 200
    assert body["user"] == {"name": "shipyard-admin",
                            "groups": ["system:masters", "system:authenticated"]}
    # Served from the cache the second time, with the same answer.
    assert (await call(authenticator, http_scope(tls=tls)))[2]["user"] == body["user"]


async def test_certificate_wins_over_a_bad_token(authenticator: Authenticator,
                                                 pki: certs.PKI) -> None:
    scope = http_scope(headers=[(b"authorization", b"Bearer nope")],
                       tls={"client_cert_chain": [pki.admin_cert.read_text()]})
    status, _, body = await call(authenticator, scope)
    assert status == 200
    assert body["user"]["name"] == "shipyard-admin"


async def test_certificate_from_another_ca_is_rejected(authenticator: Authenticator,
                                                       tmp_path: Path) -> None:
    other = certs.ensure_pki(tmp_path / "other", key_type="ecdsa")
    tls = {"client_cert_chain": [other.admin_cert.read_text()]}
    assert (await call(authenticator, http_scope(tls=tls)))[0] == 401


async def test_server_only_certificate_is_not_a_client(authenticator: Authenticator,
                                                       pki: certs.PKI) -> None:
    tls = {"client_cert_chain": [pki.serving_cert.read_text()]}
    assert (await call(authenticator, http_scope(tls=tls)))[0] == 401


async def test_expired_certificate_is_rejected(authenticator: Authenticator,
                                               pki: certs.PKI) -> None:
    ca, ca_key = certs.load_cert(pki.ca_cert), certs.load_key(pki.ca_key)
    key = certs.generate_key("ecdsa")
    now = datetime.datetime.now(datetime.UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bob")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    tls = {"client_cert_chain": [pem(expired)]}
    assert (await call(authenticator, http_scope(tls=tls)))[0] == 401


async def test_certificates_are_ignored_without_a_client_ca(pki: certs.PKI) -> None:
    app = Authenticator(echo_app, tokens=TOKENS)
    tls = {"client_cert_chain": [pki.admin_cert.read_text()]}
    assert (await call(app, http_scope(tls=tls)))[0] == 401


async def test_lifespan_passes_through(authenticator: Authenticator) -> None:
    received = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return received.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await authenticator({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete",
                                         "lifespan.shutdown.complete"]


async def test_unauthenticated_websocket_is_closed(authenticator: Authenticator) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await authenticator({"type": "websocket", "path": "/api", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]


@pytest.mark.parametrize(("header", "token"), [
    (b"Bearer abc", "abc"), (b"  Bearer abc  ", "abc"), (b"BEARER abc", "abc"),
    (b"Basic abc", None), (b"Bearer", None), (b"Bearer  abc", None),
])
def test_bearer_token_parsing(header: bytes, token: str | None) -> None:
    assert bearer_token([(b"authorization", header)]) == token


def test_token_file_format(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('t1,alice,1001,"devs,ops"\n\n# comment\nt2,bob,1002\n')
    assert load_token_file(path) == {
        "t1": {"name": "alice", "groups": ["devs", "ops"]},
        "t2": {"name": "bob", "groups": []},
    }


def test_bad_token_file_line_does_not_echo_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("supersecret,alice\n")
    with pytest.raises(ValueError, match="tokens.csv:1") as info:
        load_token_file(path)
    assert "supersecret" not in str(info.value)


# Through a real TLS server: the certificate travels from the handshake to the app.

@pytest.fixture
def tls_server(pki: certs.PKI) -> Iterator[Server]:
    app = Authenticator(echo_app, tokens=load_token_file(pki.token_file),
                        client_ca=certs.load_cert(pki.ca_cert))
    options = ServingOptions(port=0, cert_file=pki.serving_cert, key_file=pki.serving_key,
                             client_ca_file=pki.ca_cert)
    with serve_in_thread(app, options) as server:
        yield server


async def test_over_tls_client_certificate(tls_server: Server, pki: certs.PKI) -> None:
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    ctx.load_cert_chain(pki.admin_cert, pki.admin_key)
    async with aiohttp.ClientSession() as session:
        url = f"https://127.0.0.1:{tls_server.bound_port}/api"
        async with session.get(url, ssl=ctx) as resp:
            assert resp.status == 200
            body = await resp.json()
    assert body["user"] == {"name": "shipyard-admin",
                            "groups": ["system:masters", "system:authenticated"]}


async def test_over_tls_token_without_certificate(tls_server: Server, pki: certs.PKI) -> None:
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    url = f"https://localhost:{tls_server.bound_port}/api"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, ssl=ctx) as resp:
            assert resp.status == 401
            assert await resp.json() == UNAUTHORIZED
        headers = {"Authorization": f"Bearer {pki.admin_token}"}
        async with session.get(url, ssl=ctx, headers=headers) as resp:
            assert resp.status == 200
            body = await resp.json()
    assert body["user"]["name"] == "shipyard-admin"
    assert body["tls"]["client_cert_chain"] == []
