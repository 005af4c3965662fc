"""The API server as one ASGI application.

`APIServer(store)` routes every request kube-apiserver would answer: resources (CRUD, watch,
status and scale subresources, pods/eviction), discovery, OpenAPI, version, health and metrics.
It owns the server's internal controllers (CRD establishment, namespace finalization, garbage
collection, PodDisruptionBudget status), started and stopped by the ASGI lifespan. Errors of any
kind leave as Status bodies; an unexpected exception is logged and answered with 500, and the
server keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping

from shipyard.apimachinery import errors
from shipyard.apiserver import discovery, openapi, reviews
from shipyard.apiserver.admission import Admission
from shipyard.apiserver.builtins import BUILTINS
from shipyard.apiserver.conversion import Converter
from shipyard.apiserver.crds import CRDController
from shipyard.apiserver.disruption import DisruptionController
from shipyard.apiserver.eviction import Evictions
from shipyard.apiserver.garbagecollector import GarbageCollector
from shipyard.apiserver.handlers import Handlers, wants_table
from shipyard.apiserver.http import (
    Receive,
    Request,
    Scope,
    Send,
    respond,
    respond_error,
    respond_json,
)
from shipyard.apiserver.metrics import Metrics
from shipyard.apiserver.namespaces import NamespaceController
from shipyard.apiserver.negotiation import negotiate, yaml_sender
from shipyard.apiserver.objects import Objects
from shipyard.apiserver.registry import Registry
from shipyard.apiserver.requestinfo import DiscoveryPath, ResourcePath, parse_path
from shipyard.apiserver.resources import ResourceInfo
from shipyard.apiserver.watching import WatchStream
from shipyard.storage import Store

log = logging.getLogger(__name__)

_NOT_FOUND = "the server could not find the requested resource"


class APIServer:
    def __init__(
        self,
        store: Store,
        *,
        bookmark_interval: float = 60.0,
        git_version: str = discovery.DEFAULT_GIT_VERSION,
        converters: Mapping[str, Converter] | None = None,
    ) -> None:
        self.store = store
        self.git_version = git_version
        self.registry = Registry(BUILTINS)
        self.admission = Admission()
        self.objects = Objects(store, self.admission)
        self.handlers = Handlers(store, self.objects)
        self.watches = WatchStream(store, bookmark_interval=bookmark_interval)
        self.crds = CRDController(store, self.objects, self.registry, converters)
        self.namespaces = NamespaceController(store, self.objects, self.registry)
        self.gc = GarbageCollector(store, self.objects, self.registry)
        self.disruption = DisruptionController(store, self.objects, self.registry)
        self.evictions = Evictions(self.objects, self.registry)
        self.objects.namespace_check = self.namespaces.check_writable
        self.metrics = Metrics()
        self.ready = False

    def resolve_api_version(self, group: str, kind: str) -> str | None:
        """``group/version`` a reference to ``kind`` means here: its CRD's storage version
        (conversion of Cluster API references that carry only ``apiGroup`` needs it)."""
        infos = self.registry.by_kind(group, kind)
        for info in infos:
            if not info.storage_version or info.storage_version == info.version:
                return info.group_version
        return infos[0].group_version if infos else None

    # -------------------------------------------------------------- lifecycle

    async def startup(self) -> None:
        await self.store.open()
        revision = self.crds.load()
        await self.namespaces.ensure_system_namespaces()
        self.crds.start(revision)
        self.namespaces.start()
        self.gc.start()
        self.disruption.start()
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        await self.disruption.stop()
        await self.gc.stop()
        await self.namespaces.stop()
        await self.crds.stop()
        await self.store.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("API server failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    # ---------------------------------------------------------------- routing

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        started = time.perf_counter()
        verb = request.method
        code = 200
        try:
            await self._route(request, send)
        except errors.StatusError as err:
            code = err.code
            await respond_error(send, err)
        except asyncio.CancelledError:
            raise
        except Exception:
            code = 500
            log.exception("%s %s failed", request.method, request.path)
            await respond_error(send, errors.InternalError("an error on the server has "
                                                           "prevented the request from "
                                                           "succeeding"))
        finally:
            self.metrics.observe(verb, code, time.perf_counter() - started)

    async def _route(self, request: Request, send: Send) -> None:
        path = request.path
        if path in ("/healthz", "/livez", "/readyz"):
            ok = self.ready or path == "/livez"
            await respond(send, 200 if ok else 500, b"ok" if ok else b"not ready",
                          "text/plain; charset=utf-8")
            return
        if path in ("/version", "/version/"):  # the Python client asks for /version/
            await respond_json(send, 200, discovery.version_info(self.git_version))
            return
        if path == "/metrics":
            body, ctype = self.metrics.render()
            await respond(send, 200, body, ctype)
            return
        if path.startswith("/openapi/"):
            await self._openapi(request, send)
            return
        target = parse_path(path)
        if target is None:
            raise errors.NotFound(_NOT_FOUND)
        if isinstance(target, DiscoveryPath):
            await self._discovery(request, send, target)
            return
        await self._resource(request, send, target)

    async def _discovery(self, request: Request, send: Send, target: DiscoveryPath) -> None:
        if request.method != "GET":
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        found = discovery.discovery_response(self.registry, request.path, request.accept)
        if found is None:
            raise errors.NotFound(_NOT_FOUND)
        body, ctype = found
        await respond(send, 200, body, ctype, headers=[(b"vary", b"Accept")])

    async def _openapi(self, request: Request, send: Send) -> None:
        path = request.path.rstrip("/")
        if path == "/openapi/v2":
            await respond(send, 200, openapi.V2_PROTOBUF_DOCUMENT, openapi.V2_CONTENT_TYPE)
            return
        if path == "/openapi/v3":
            await respond_json(send, 200, openapi.openapi_v3_index(self.registry))
            return
        if path.startswith("/openapi/v3/"):
            found = openapi.openapi_v3_document(self.registry, path[len("/openapi/v3/"):])
            if found is not None:
                body, digest = found
                wanted = request.param("hash")
                if wanted and wanted != digest:
                    location = f"{path}?hash={digest}"
                    await respond(send, 301, b"", "text/plain",
                                  headers=[(b"location", location.encode())])
                    return
                headers = [(b"etag", f'"{digest}"'.encode())]
                if wanted:
                    headers.append((b"cache-control", b"public, immutable"))
                await respond(send, 200, body, openapi.V3_CONTENT_TYPE, headers=headers)
                return
        raise errors.NotFound(_NOT_FOUND)

    def _info(self, target: ResourcePath) -> ResourceInfo:
        info = self.registry.lookup(target.group, target.version, target.resource)
        if info is None:
            raise errors.NotFound(_NOT_FOUND)
        if target.namespace is not None and not info.namespaced:
            raise errors.NotFound(_NOT_FOUND)
        if target.subresource is not None:
            allowed = {"status": info.status, "scale": info.scale is not None,
                       "finalize": info.kind == "Namespace"}
            if not allowed.get(target.subresource) and target.subresource not in (
                    info.extra.get("subresources") or {}):
                raise errors.NotFound(_NOT_FOUND)
        return info

    async def _resource(self, request: Request, send: Send, target: ResourcePath) -> None:
        info = self._info(target)
        if not (request.flag("watch") or wants_table(request)):
            if negotiate(request.accept) == "yaml":
                send = yaml_sender(send)
        ns = target.namespace
        name = target.name
        method = request.method
        h = self.handlers
        if info.namespaced and name is not None and ns is None:
            raise errors.NotFound(_NOT_FOUND)
        if info.extra.get("review"):  # create-only, answered and never stored
            if method != "POST" or name is not None:
                raise errors.MethodNotAllowed(
                    "the server does not allow this method on the requested resource")
            await reviews.serve(request, send, info)
            return
        if name is None:
            if method == "GET":
                if request.flag("watch"):
                    await self.watches.serve(request, send, info, ns)
                else:
                    await h.list(request, send, info, ns)
            elif method == "POST":
                if info.namespaced and ns is None:
                    raise errors.NotFound(_NOT_FOUND)
                await h.create(request, send, info, ns)
                if info.resource == "customresourcedefinitions":
                    self._resync_crds()
            elif method == "DELETE":
                await h.delete_collection(request, send, info, ns)
            else:
                raise errors.MethodNotAllowed(
                    "the server does not allow this method on the requested resource"
                )
            return
        sub = target.subresource
        if sub in (info.extra.get("subresources") or {}):
            if method != "POST" or ns is None or sub != "eviction":
                raise errors.MethodNotAllowed(
                    "the server does not allow this method on the requested resource"
                )
            await self.evictions.serve(request, send, info, ns, name)
            return
        if method == "GET":
            if sub == "scale":
                await h.get_scale(send, info, ns, name)
            else:
                await h.get(request, send, info, ns, name)
        elif method == "PUT":
            await h.update(request, send, info, ns, name, sub)
        elif method == "PATCH":
            await h.patch(request, send, info, ns, name, sub)
        elif method == "DELETE" and sub is None:
            await h.delete(request, send, info, ns, name)
        else:
            raise errors.MethodNotAllowed(
                "the server does not allow this method on the requested resource"
            )
        if info.resource == "customresourcedefinitions" and method in ("PUT", "PATCH"):
            self._resync_crds()

    def _resync_crds(self) -> None:
        """Serve a CRD's resources as soon as its write is acknowledged, so a client that
        creates a CRD and then its objects does not race the CRD controller."""
        entries, _ = self.store.list("/registry/apiextensions.k8s.io/customresourcedefinitions/")
        for entry in entries:
            obj = entry.object()
            if not obj["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(Exception):
                    self.crds.sync(obj)

