"""`Client`: the async REST client over aiohttp that implements `Reader` and `Writer`.

One aiohttp session per client (connection pooling, TLS from the kubeconfig). Every non-2xx
response is turned back into the apimachinery error its Status body names, so callers catch
`NotFound`, `Conflict`, `Expired`... exactly as the server raised them. Watches are read with
`iter_any()` and split into lines here: aiohttp's line reader fails on lines longer than twice
its buffer, and a watch line is a whole object.

`close()` ends every connection the client opened, not only those still pooled: aiohttp closes a
TLS connection it drops (a cancelled watch, a response it will not reuse) gracefully, and the
socket stays open until the server's close_notify arrives; an event loop closed before that
(the end of an `asyncio.run`, of a test) leaked the socket, reported as a ResourceWarning.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncGenerator
from typing import Any, cast
from urllib.parse import quote

import aiohttp
import orjson

from shipyard import __version__
from shipyard.apimachinery.errors import StatusError, from_status
from shipyard.client.interfaces import (
    GVK,
    PATCH_CONTENT_TYPES,
    Object,
    ObjectList,
    PatchType,
    Preconditions,
    PropagationPolicy,
    WatchEvent,
)
from shipyard.client.kubeconfig import KubeConfig, load_kubeconfig
from shipyard.client.mapping import DiscoveryRESTMapper, group_version_path

USER_AGENT = f"shipyard/{__version__}"


class ClientClosedError(RuntimeError):
    """A request on a `Client` after `close()`."""


class _Connector(aiohttp.TCPConnector):
    """A `TCPConnector` that remembers the transports it opened (weakly: a transport is gone once
    its socket closed) so that `abort_all()` can end those aiohttp closed but TLS still shuts
    down."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.opened: weakref.WeakSet[asyncio.Transport] = weakref.WeakSet()

    async def _create_connection(self, req: aiohttp.ClientRequest, traces: list[Any],
                                 timeout: aiohttp.ClientTimeout) -> Any:
        proto = await super()._create_connection(req, traces, timeout)
        if proto.transport is not None:
            self.opened.add(proto.transport)
        return proto

    async def abort_all(self) -> None:
        """Abort every transport still open and wait (briefly) until their sockets closed."""
        lost: list[asyncio.Future[None]] = []
        for transport in list(self.opened):
            transport.abort()
            closed = getattr(transport.get_protocol(), "closed", None)
            if isinstance(closed, asyncio.Future) and not closed.done():
                lost.append(closed)
        if lost:
            await asyncio.wait(lost, timeout=1.0)
        # the socket of a TLS connection closes one callback after its protocol heard of it
        await asyncio.sleep(0)


class Client:
    """An async Kubernetes client. Use as `async with Client.from_kubeconfig(path) as c:`."""

    def __init__(self, config: KubeConfig, *, user_agent: str = USER_AGENT,
                 request_timeout: float = 30.0) -> None:
        self.config = config
        self.user_agent = user_agent
        self.request_timeout = request_timeout
        self.mapper = DiscoveryRESTMapper(self.get_json)
        self._session: aiohttp.ClientSession | None = None
        self._connector: _Connector | None = None
        self._closed = False

    @classmethod
    def from_kubeconfig(cls, path: str | os.PathLike[str] | None = None,
                        context: str | None = None, **kwargs: Any) -> Client:
        return cls(load_kubeconfig(path, context), **kwargs)

    @property
    def namespace(self) -> str:
        """The kubeconfig context's namespace."""
        return self.config.namespace

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the connections. A closed client refuses further requests rather than
        quietly opening a new pool that nobody would close."""
        self._closed = True
        session, connector = self._session, self._connector
        self._session = self._connector = None
        if session is not None:
            await session.close()
        if connector is not None:
            await connector.abort_all()

    def _http(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError(f"client for {self.config.server} is closed")
        if self._session is None or self._session.closed:
            self._connector = _Connector(ssl=self.config.ssl_context, limit=100)
            self._session = aiohttp.ClientSession(
                connector=self._connector,
                headers={"User-Agent": self.user_agent, "Accept": "application/json"},
            )
        return self._session

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers: dict[str, str] = {}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    # ------------------------------------------------------------------ plumbing

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any:
        """One request; the decoded JSON body, or the Status error it describes."""
        data = None if body is None else orjson.dumps(body)
        async with self._http().request(
            method, self.config.server + path, params=params, data=data,
            headers=self._headers(content_type if data is not None else None),
            timeout=aiohttp.ClientTimeout(total=self.request_timeout),
        ) as resp:
            raw = await resp.read()
            if resp.status >= 400:
                raise _error(resp.status, raw, resp.headers)
            return orjson.loads(raw) if raw else None

    async def get_json(self, path: str) -> dict[str, Any]:
        return cast(dict[str, Any], await self.request("GET", path))

    async def _path(self, api_version: str, kind: str, namespace: str | None,
                    name: str | None = None, subresource: str | None = None) -> str:
        m = await self.mapper.mapping(api_version, kind)
        path = group_version_path(m.api_version)
        if m.namespaced and namespace:
            path += f"/namespaces/{quote(namespace, safe='')}"
        path += f"/{m.resource}"
        if name is not None:
            path += f"/{quote(name, safe='')}"
        if subresource:
            path += f"/{subresource}"
        return path

    # ------------------------------------------------------------------ Reader

    async def get(self, api_version: str, kind: str, name: str,
                  namespace: str | None = None) -> Object:
        path = await self._path(api_version, kind, namespace, name)
        return cast(Object, await self.request("GET", path))

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, *,
        label_selector: str | None = None, field_selector: str | None = None,
        limit: int | None = None, continue_: str | None = None,
        resource_version: str | None = None,
    ) -> ObjectList:
        params = _params(labelSelector=label_selector, fieldSelector=field_selector,
                         limit=limit, resourceVersion=resource_version)
        if continue_:
            params["continue"] = continue_
        path = await self._path(api_version, kind, namespace)
        return cast(ObjectList, await self.request("GET", path, params=params))

    async def watch(
        self, api_version: str, kind: str, namespace: str | None = None, *,
        resource_version: str | None = None, allow_bookmarks: bool = True,
        timeout_seconds: int | None = None, label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncGenerator[WatchEvent, None]:
        params = _params(watch="true", resourceVersion=resource_version,
                         timeoutSeconds=timeout_seconds, labelSelector=label_selector,
                         fieldSelector=field_selector)
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        path = await self._path(api_version, kind, namespace)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.request_timeout)
        async with self._http().get(self.config.server + path, params=params,
                                    headers=self._headers(), timeout=timeout) as resp:
            if resp.status >= 400:
                raise _error(resp.status, await resp.read(), resp.headers)
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while (newline := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:newline], buffer[newline + 1:]
                    if line.strip():
                        yield _event(line)
            if buffer.strip():
                yield _event(buffer)

    # ------------------------------------------------------------------ Writer

    async def create(self, obj: Object, *, field_manager: str | None = None) -> Object:
        gvk = GVK.of(obj)
        path = await self._path(*gvk, _namespace(obj))
        return cast(Object, await self.request("POST", path, body=obj,
                                               params=_params(fieldManager=field_manager)))

    async def update(self, obj: Object, *, field_manager: str | None = None) -> Object:
        return await self._put(obj, None, field_manager)

    async def update_status(self, obj: Object, *,
                            field_manager: str | None = None) -> Object:
        return await self._put(obj, "status", field_manager)

    async def _put(self, obj: Object, subresource: str | None,
                   field_manager: str | None) -> Object:
        path = await self._path(*GVK.of(obj), _namespace(obj), obj["metadata"]["name"],
                                subresource)
        return cast(Object, await self.request("PUT", path, body=obj,
                                               params=_params(fieldManager=field_manager)))

    async def patch(
        self, api_version: str, kind: str, name: str, patch: Any,
        namespace: str | None = None, *, patch_type: PatchType = "merge",
        field_manager: str | None = None, force: bool | None = None,
        subresource: str | None = None,
    ) -> Object:
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        params = _params(fieldManager=field_manager,
                         force=None if force is None else str(force).lower())
        path = await self._path(api_version, kind, namespace, name, subresource)
        return cast(Object, await self.request("PATCH", path, body=patch, params=params,
                                               content_type=PATCH_CONTENT_TYPES[patch_type]))

    async def apply(self, obj: Object, *, field_manager: str, force: bool = False,
                    subresource: str | None = None) -> Object:
        """Server-side apply of a whole intent (a JSON body is valid YAML)."""
        return await self.patch(*GVK.of(obj), obj["metadata"]["name"], obj, _namespace(obj),
                                patch_type="apply", field_manager=field_manager, force=force,
                                subresource=subresource)

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
        propagation_policy: PropagationPolicy | None = None,
        preconditions: Preconditions | None = None,
    ) -> Object:
        body: dict[str, Any] | None = None
        if propagation_policy or preconditions:
            body = {"apiVersion": "v1", "kind": "DeleteOptions"}
            if propagation_policy:
                body["propagationPolicy"] = propagation_policy
            if preconditions:
                body["preconditions"] = dict(preconditions)
        path = await self._path(api_version, kind, namespace, name)
        return cast(Object, await self.request("DELETE", path, body=body))


def _namespace(obj: Object) -> str | None:
    ns = obj.get("metadata", {}).get("namespace")
    return str(ns) if ns else None


def _params(**kwargs: Any) -> dict[str, str]:
    return {k: str(v) for k, v in kwargs.items() if v is not None}


def _error(code: int, raw: bytes, headers: Any) -> StatusError:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or body.get("kind") != "Status":
        body = {"message": raw.decode(errors="replace").strip() or f"HTTP {code}"}
    err = from_status(body, code)
    if "Retry-After" in headers:
        err.headers["Retry-After"] = headers["Retry-After"]
    return err


def _event(line: bytes) -> WatchEvent:
    event = orjson.loads(line)
    if event.get("type") == "ERROR":
        raise from_status(event.get("object") or {})
    return cast(WatchEvent, event)
