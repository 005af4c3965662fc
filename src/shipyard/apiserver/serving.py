"""HTTP(S) serving: uvicorn (httptools + uvloop) with TLS, client certificates and a knowable port.

Why not just ``uvicorn.run``: three things kube-apiserver's secure serving does that stock uvicorn
does not.

* **Client certificates reach the app.** No ASGI server passes the peer certificate on yet, so
  `TLSHttpToolsProtocol` reads it from the TLS transport once per connection and puts the ASGI
  TLS extension dict (``client_cert_chain``: PEM strings, leaf first; ``client_cert_name``:
  RFC 4514 subject) into ``scope["extensions"]["tls"]`` of every request on that connection. The
  handshake uses ``CERT_OPTIONAL`` against the client CA (Go's VerifyClientCertIfGiven): a bad
  certificate fails the handshake, no certificate is fine and leaves bearer tokens to
  `authn.Authenticator`.
* **TLS by default, on loopback by default.** Plain HTTP needs ``insecure=True`` explicitly.
* **Port 0.** Tests and `shipyard management up` bind a free port; `Server.bound_port` is set
  once listening, written to ``port_file`` (atomically) and passed to ``on_started``.

Shutdown: SIGTERM/SIGINT (main thread only) stop accepting, ask open connections to finish, and
after ``shutdown_timeout`` seconds cancel what is still running, so an endless watch cannot hold
the process; then the app's lifespan shutdown runs (the API server closes its store there).
`serve_in_thread` runs the same server in a background thread for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import uvicorn
from cryptography import x509
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shipyard.apiserver.authn import ASGIApp

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ServingOptions:
    bind_address: str = "127.0.0.1"
    port: int = 6443
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    insecure: bool = False
    port_file: Path | None = None
    shutdown_timeout: int = 5
    access_log: bool = False


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension for a connection, or None if it is not TLS."""
    ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name: str | None = None
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
        name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": None,
        "cipher_suite": None,
    }


class TLSHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus ``scope["extensions"]["tls"]`` on TLS connections."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # The handshake is complete when connection_made runs, so the peer cert is known.
        self._tls = tls_extension(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": cast("dict[object, object]", self._tls)}


def server_ssl_context(
    cert_file: Path, key_file: Path, client_ca_file: Path | None
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca_file is not None:
        ctx.load_verify_locations(cafile=client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Server(uvicorn.Server):
    """A uvicorn server that knows its bound port; see the module doc."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        port_file: Path | None = None,
        on_started: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.port_file = port_file
        self.on_started = on_started
        self.bound_port: int | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.started:
            return
        listening = self.servers[0].sockets
        self.bound_port = int(listening[0].getsockname()[1])
        if self.on_started is not None:
            self.on_started(self.bound_port)
        if self.port_file is not None:
            _write_atomic(self.port_file, f"{self.bound_port}\n")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().shutdown(sockets)
            # uvicorn cancels the requests that outlived the grace period but leaves their
            # connections open; drop them rather than leak them into loop teardown.
            for connection in list(self.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()
        finally:
            if self.port_file is not None:
                self.port_file.unlink(missing_ok=True)


def build_server(
    app: ASGIApp,
    options: ServingOptions,
    *,
    on_started: Callable[[int], None] | None = None,
) -> Server:
    """A configured, not yet running `Server`; TLS unless ``options.insecure``."""
    ssl_factory = None
    if not options.insecure:
        cert_file, key_file = options.cert_file, options.key_file
        if cert_file is None or key_file is None:
            raise ValueError("TLS serving needs cert_file and key_file (or insecure=True)")
        client_ca = options.client_ca_file

        def ssl_factory(
            _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]
        ) -> ssl.SSLContext:
            return server_ssl_context(cert_file, key_file, client_ca)

    config = uvicorn.Config(
        app,
        host=options.bind_address,
        port=options.port,
        http=TLSHttpToolsProtocol,
        ws="none",
        lifespan="auto",
        loop="auto",
        log_config=None,
        log_level=None,
        access_log=options.access_log,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=options.shutdown_timeout,
        ssl_context_factory=ssl_factory,
    )
    return Server(config, port_file=options.port_file, on_started=on_started)


def serve(
    app: ASGIApp,
    options: ServingOptions,
    *,
    on_started: Callable[[int], None] | None = None,
) -> None:
    """Serve in the foreground until SIGTERM/SIGINT (uvloop when installed)."""
    build_server(app, options, on_started=on_started).run()


@contextlib.contextmanager
def serve_in_thread(
    app: ASGIApp, options: ServingOptions, *, startup_timeout: float = 30.0
) -> Iterator[Server]:
    """Run a `Server` in a daemon thread; yields it once listening, stops it on exit."""
    server = build_server(app, options)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as e:  # SystemExit on bind failure included
            failure.append(e)

    thread = threading.Thread(target=run, name="shipyard-serving", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=5)
            raise RuntimeError(f"server did not start: {failure[0] if failure else 'timeout'}")
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=options.shutdown_timeout + 10)
