"""Serving: TLS on loopback by default, client certs visible to the app, port 0, clean shutdown."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from shipyard.apiserver import certs
from shipyard.apiserver.serving import ServingOptions, build_server, serve_in_thread


async def scope_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the parts of the scope serving is responsible for."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/watch":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:  # an endless watch: only the graceful-shutdown timeout ends it
            await send({"type": "http.response.body", "body": b"{}\n", "more_body": True})
            await asyncio.sleep(0.05)
    body = orjson.dumps({
        "scheme": scope["scheme"],
        "server": scope["server"],
        "tls": (scope.get("extensions") or {}).get("tls"),
    })
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def pki(tmp_path: Path) -> certs.PKI:
    return certs.ensure_pki(tmp_path / "pki", key_type="ecdsa")


def tls_options(pki: certs.PKI, **kw: Any) -> ServingOptions:
    return ServingOptions(port=0, cert_file=pki.serving_cert, key_file=pki.serving_key,
                          client_ca_file=pki.ca_cert, **kw)


async def get_json(url: str, ctx: ssl.SSLContext | bool = True) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url, ssl=ctx) as resp:
        assert resp.status == 200
        return await resp.json(content_type=None)


def test_defaults_are_loopback_and_tls() -> None:
    options = ServingOptions()
    assert (options.bind_address, options.port, options.insecure) == ("127.0.0.1", 6443, False)
    with pytest.raises(ValueError, match="cert_file and key_file"):
        build_server(scope_app, options)


async def test_tls_on_a_free_port(pki: certs.PKI, tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    with serve_in_thread(scope_app, tls_options(pki, port_file=port_file)) as server:
        assert server.bound_port
        assert port_file.read_text() == f"{server.bound_port}\n"
        ctx = ssl.create_default_context(cafile=pki.ca_cert)
        for host in ("127.0.0.1", "localhost"):
            body = await get_json(f"https://{host}:{server.bound_port}/", ctx)
            assert body["scheme"] == "https"
            assert body["server"] == ["127.0.0.1", server.bound_port]
            assert body["tls"]["client_cert_chain"] == []
            assert body["tls"]["client_cert_name"] is None
        # Plain HTTP is not spoken on the TLS port.
        with pytest.raises(aiohttp.ClientError):
            await get_json(f"http://127.0.0.1:{server.bound_port}/")
    assert not port_file.exists()


async def test_client_certificate_reaches_the_app(pki: certs.PKI) -> None:
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    ctx.load_cert_chain(pki.admin_cert, pki.admin_key)
    with serve_in_thread(scope_app, tls_options(pki)) as server:
        body = await get_json(f"https://127.0.0.1:{server.bound_port}/", ctx)
    chain = body["tls"]["client_cert_chain"]
    assert len(chain) == 1
    assert chain[0] == pki.admin_cert.read_text()
    assert body["tls"]["client_cert_name"] == "CN=shipyard-admin,O=system:masters"


async def test_client_certificate_from_a_foreign_ca_fails_the_handshake(
    pki: certs.PKI, tmp_path: Path
) -> None:
    foreign = certs.ensure_pki(tmp_path / "foreign", key_type="ecdsa")
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    ctx.load_cert_chain(foreign.admin_cert, foreign.admin_key)
    with serve_in_thread(scope_app, tls_options(pki)) as server:
        with pytest.raises(aiohttp.ClientError):
            await get_json(f"https://127.0.0.1:{server.bound_port}/", ctx)
        # The server is still fine for the next, well-behaved client.
        good = ssl.create_default_context(cafile=pki.ca_cert)
        assert (await get_json(f"https://127.0.0.1:{server.bound_port}/", good))["tls"]


async def test_insecure_serves_plain_http_only_when_asked() -> None:
    with serve_in_thread(scope_app, ServingOptions(port=0, insecure=True)) as server:
        body = await get_json(f"http://127.0.0.1:{server.bound_port}/")
    assert body["scheme"] == "http"
    assert body["tls"] is None


async def test_endless_response_does_not_block_shutdown(pki: certs.PKI) -> None:
    ctx = ssl.create_default_context(cafile=pki.ca_cert)
    async with aiohttp.ClientSession() as session:
        with serve_in_thread(scope_app, tls_options(pki, shutdown_timeout=1)) as server:
            port = server.bound_port
            resp = await session.get(f"https://127.0.0.1:{port}/watch", ssl=ctx)
            assert await resp.content.readline() == b"{}\n"
        # Leaving the block returned although the watch never ends by itself: the server
        # dropped it after the grace period and no longer listens.
        with pytest.raises(aiohttp.ClientError):
            while await resp.content.readline():
                pass
        resp.close()
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"https://127.0.0.1:{port}/", ssl=ctx)
