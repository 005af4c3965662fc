"""The control-plane endpoint of a process cluster: a TCP load balancer on 127.0.0.1.

Why: a kubeadm cluster's ``controlPlaneEndpoint`` must keep answering while control-plane
machines come and go (scale up, rolling update, remediation), as a cloud load balancer in front
of the API servers does. It runs in the controller's event loop: plain TCP, no TLS termination,
so clients see the API servers' own certificates (issued for the endpoint host).

Contract: `LoadBalancer(port, backends)` listens on ``127.0.0.1:port`` (0 picks a port;
`port` holds the bound one). ``backends()`` is called for every new connection and returns the
``host:port`` candidates in order of preference; connections are spread round-robin over them
and a candidate refusing the connection (within `CONNECT_TIMEOUT`) is skipped for the next. A
connection no backend accepts is closed. `close()` stops listening and drops open connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

CONNECT_TIMEOUT: Final = 1.0
_CHUNK: Final = 65536

Backends = Callable[[], list[tuple[str, int]]]


class LoadBalancer:
    def __init__(self, port: int, backends: Backends, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.backends = backends
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._counter = itertools.count()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port,
                                                  reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        candidates = self.backends()
        if not candidates:
            return None
        start = next(self._counter) % len(candidates)
        for host, port in candidates[start:] + candidates[:start]:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    return await asyncio.open_connection(host, port)
            except (OSError, TimeoutError):
                continue
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            upstream = await self._connect()
            if upstream is None:
                return
            up_reader, up_writer = upstream
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except asyncio.CancelledError:
            # close() cancels open connections; ending normally keeps asyncio's stream
            # callback from logging the cancellation as an error.
            return
        finally:
            writer.close()
            self._tasks.discard(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (OSError, ConnectionError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
