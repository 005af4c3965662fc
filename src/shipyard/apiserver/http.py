"""The little HTTP vocabulary the handlers need on top of raw ASGI.

A `Request` is read once (body capped at kube-apiserver's 3 MiB limit); responses are bytes.
Objects travel as orjson bytes end to end, so a GET answers with the stored bytes unparsed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast
from urllib.parse import parse_qs

import orjson

from shipyard.apimachinery import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY_BYTES = 3 * 1024 * 1024
JSON = "application/json"


class Request:
    __slots__ = ("scope", "receive", "method", "path", "query", "headers", "_body")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        raw_qs = scope.get("query_string", b"").decode("latin-1")
        self.query: dict[str, list[str]] = parse_qs(raw_qs, keep_blank_values=True)
        self.headers: dict[str, str] = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
        }
        self._body: bytes | None = None

    def param(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return self.param(name).lower() in ("true", "1")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def accept(self) -> str:
        return self.headers.get("accept", "")

    @property
    def user(self) -> dict[str, Any] | None:
        ext = self.scope.get("extensions") or {}
        user: dict[str, Any] | None = ext.get("shipyard.user")
        return user

    async def body(self) -> bytes:
        if self._body is not None:
            return self._body
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise errors.RequestEntityTooLarge(
                f"Request entity too large: limit is {MAX_BODY_BYTES}"
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                break
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise errors.RequestEntityTooLarge(
                    f"Request entity too large: limit is {MAX_BODY_BYTES}"
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self._body = b"".join(chunks)
        return self._body


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = JSON,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    raw_headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-cache, private"),
    ]
    if headers:
        raw_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, obj: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await respond(send, status, orjson.dumps(obj), JSON, headers)


def status_body(err: errors.StatusError) -> errors.Status:
    """``err``'s Status as kube-apiserver encodes it: StatusDetails' fields are all
    ``omitempty``, so an empty group (the core group), name or kind is left out."""
    body = err.status()
    details = body.get("details")
    if details is not None:
        kept = cast(errors.StatusDetails, {k: v for k, v in details.items() if v})
        if kept:
            body["details"] = kept
        else:
            del body["details"]
    return body


async def respond_error(send: Send, err: errors.StatusError) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in err.headers.items()]
    await respond(send, err.code, orjson.dumps(status_body(err)), JSON, headers)


def warning_headers(warnings: list[str]) -> list[tuple[bytes, bytes]]:
    """RFC 7234 Warning headers as kube-apiserver sends them (code 299, agent "-")."""
    out = []
    for text in warnings:
        quoted = text.replace("\\", "\\\\").replace('"', '\\"')
        out.append((b"warning", f'299 - "{quoted}"'.encode()))
    return out
