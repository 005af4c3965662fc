"""A small etcd v3 client over etcd's JSON gateway (grpc-gateway), on aiohttp.

Why not gRPC: the PyPI ``etcd3`` client pins protobuf releases we cannot use, and every etcd
since 3.3 serves the same API as JSON over HTTP (``POST /v3/kv/range``, ``/v3/kv/txn``,
``/v3/kv/compaction``, ``/v3/maintenance/status``, and ``/v3/watch`` as a stream of
newline-delimited JSON objects, each ``{"result": WatchResponse}``). aiohttp is a dependency
already, so this costs nothing.

The gateway speaks protobuf's JSON mapping: keys and values are base64, 64-bit integers are
decimal strings, and fields at their zero value are *omitted* (``succeeded: false``, an event's
``type: PUT``, ``kvs: []``); readers here default every field. Errors come back as HTTP 4xx/5xx
with ``{"error", "code", "message"}``; the two revision errors the store must tell apart are
raised as `EtcdCompactedError` and `EtcdFutureRevisionError`.

Endpoints are tried in order; a request that could not even connect moves on to the next one,
so a multi-member cluster keeps answering while one member is down. A request that failed after
it was sent is not retried (the write may have been applied): it raises `EtcdError`.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp
import orjson

from shipyard.storage.interface import StorageError

JSON = dict[str, Any]


class EtcdError(StorageError):
    """etcd refused a request or could not be reached."""


class EtcdCompactedError(EtcdError):
    """``mvcc: required revision has been compacted``."""


class EtcdFutureRevisionError(EtcdError):
    """``mvcc: required revision is a future revision``."""


def b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def range_end(prefix: bytes) -> bytes:
    """etcd's range end for every key starting with ``prefix``: the prefix with its last byte
    below 0xff incremented; ``b"\\0"`` (every key from ``prefix`` on) if there is none."""
    stem = bytearray(prefix)
    while stem:
        if stem[-1] < 0xFF:
            stem[-1] += 1
            return bytes(stem)
        stem.pop()
    return b"\0"


def key_range(prefix: bytes) -> JSON:
    """The ``key``/``range_end`` pair selecting every key under ``prefix`` (all keys if empty)."""
    return {"key": b64(prefix or b"\0"), "range_end": b64(range_end(prefix))}


class EtcdClient:
    """Unary calls and watch streams against the first reachable endpoint."""

    def __init__(self, endpoints: list[str], *, request_timeout: float = 30.0,
                 tls: ssl.SSLContext | None = None) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self._current = 0
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._tls = tls
        """For ``https`` endpoints: the CA to trust and the client certificate to present
        (etcd with ``--client-cert-auth``); None verifies against the system's CAs."""

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
            connector=aiohttp.TCPConnector(limit=0, ssl=self._tls or True),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)  # let the closed transports run connection_lost

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            raise EtcdError("the etcd client is closed")
        return self._session

    async def call(self, path: str, body: JSON) -> JSON:
        """POST ``body`` to ``path`` (``/v3/kv/range``...) and return the decoded answer."""
        session = self._require_session()
        last: Exception | None = None
        for attempt in range(len(self.endpoints)):
            endpoint = self.endpoints[(self._current + attempt) % len(self.endpoints)]
            try:
                async with session.post(endpoint + path, json=body,
                                        timeout=self._timeout) as resp:
                    payload = await resp.read()
                    status = resp.status
            except aiohttp.ClientConnectorError as exc:  # never sent: safe to try the next
                last = exc
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:  # may have been applied
                raise EtcdError(f"etcd request {path} to {endpoint} failed: {exc!r}") from exc
            self._current = (self._current + attempt) % len(self.endpoints)
            answer: JSON = orjson.loads(payload) if payload else {}
            if status >= 400 or "error" in answer:
                raise _error(answer, status)
            return answer
        raise EtcdError(f"no etcd endpoint of {self.endpoints} answered: {last}")

    async def range(self, body: JSON) -> JSON:
        return await self.call("/v3/kv/range", body)

    async def range_pages(
        self, key: bytes, end: bytes, revision: int = 0, page: int = 1000
    ) -> AsyncGenerator[tuple[list[JSON], int], None]:
        """The kvs in ``[key, end)`` in pages of ``page``, every page read at one revision
        (``0``: the current one, fixed by the first page), each with that revision."""
        while True:
            body: JSON = {"key": b64(key), "range_end": b64(end), "limit": page}
            if revision:
                body["revision"] = revision
            answer = await self.range(body)
            revision = revision or int(answer["header"]["revision"])
            kvs: list[JSON] = answer.get("kvs", [])
            yield kvs, revision
            if not answer.get("more") or not kvs:
                return
            key = unb64(kvs[-1]["key"]) + b"\0"

    async def compacted_revision(self, current: int) -> int:
        """etcd's compacted revision: the oldest it still reads at (0 if nothing is gone).
        etcd does not report it, so bisect on whether a tiny range at a revision is refused."""
        low, high = 1, max(current, 1)  # the answer lies in [low, high]
        while low < high:
            middle = (low + high) // 2
            try:
                await self.range({"key": b64(b"\0"), "revision": middle, "count_only": True})
            except EtcdCompactedError:
                low = middle + 1
            except EtcdFutureRevisionError:
                high = middle
            else:
                high = middle
        return 0 if low <= 1 else low

    async def txn(self, body: JSON) -> JSON:
        return await self.call("/v3/kv/txn", body)

    async def compact(self, revision: int) -> None:
        await self.call("/v3/kv/compaction", {"revision": revision, "physical": True})

    async def status(self) -> JSON:
        return await self.call("/v3/maintenance/status", {})

    async def watch(self, create_request: JSON) -> AsyncIterator[JSON]:
        """The ``WatchResponse`` objects of one watch, in order, until the server ends the
        stream or the caller stops iterating (which closes the connection)."""
        session = self._require_session()
        endpoint = self.endpoints[self._current]
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout.total)
        try:
            async with session.post(endpoint + "/v3/watch",
                                    json={"create_request": create_request},
                                    timeout=timeout) as resp:
                if resp.status >= 400:
                    payload = await resp.read()
                    raise _error(orjson.loads(payload) if payload else {}, resp.status)
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    while (newline := buffer.find(b"\n")) >= 0:
                        line, buffer = buffer[:newline], buffer[newline + 1 :]
                        if not line.strip():
                            continue
                        message: JSON = orjson.loads(line)
                        if "error" in message:
                            raise _error(message["error"], resp.status)
                        yield message.get("result", {})
        except aiohttp.ClientError as exc:
            self._current = (self._current + 1) % len(self.endpoints)
            raise EtcdError(f"etcd watch on {endpoint} failed: {exc}") from exc


def _error(answer: JSON, status: int) -> EtcdError:
    message = str(answer.get("message") or answer.get("error") or f"HTTP {status}")
    if "required revision has been compacted" in message:
        return EtcdCompactedError(message)
    if "required revision is a future revision" in message:
        return EtcdFutureRevisionError(message)
    return EtcdError(message)
