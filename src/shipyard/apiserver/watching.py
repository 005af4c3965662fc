"""WATCH streams: newline-delimited JSON events over one chunked HTTP 200 response.

The stream starts with synthetic ADDED events when resourceVersion is unset or "0", then
replays every change after the starting revision. A revision older than compaction is reported
in-stream as an ERROR event carrying a 410 Expired Status, which is what client-go, the Python
client and kopf expect. With selectors, an object that stops matching is sent as DELETED and one
that starts matching as ADDED, as the watch cache does. Bookmarks carry only the revision.
Events that are ready together (one group commit's) leave in one chunk, one write per watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import orjson

from shipyard.apimachinery import errors
from shipyard.apiserver.filtering import Filter, build_filter
from shipyard.apiserver.handlers import convert, wants_table
from shipyard.apiserver.http import Request, Send, status_body
from shipyard.apiserver.resources import ResourceInfo
from shipyard.apiserver.tables import to_table
from shipyard.storage import (
    CompactedError,
    Entry,
    FutureRevisionError,
    StorageError,
    Store,
    WatchOverflowError,
)

# Events a stream takes from its store watcher ahead of sending them; beyond this a slow client
# leaves them in the store's bounded per-watcher queue, which cuts it off when full.
READ_AHEAD = 256


def _validate_watch_options(request: Request, send_initial: str) -> None:
    """kube's validateWatchOptions (with the WatchList feature on, as in 1.32): 422 Invalid
    ListOptions, one cause per broken rule."""
    match = request.param("resourceVersionMatch")
    causes: list[errors.StatusCause] = []

    def forbidden(message: str) -> None:
        causes.append({"reason": "FieldValueForbidden", "message": f"Forbidden: {message}",
                       "field": "resourceVersionMatch"})

    if send_initial and match != "NotOlderThan":
        forbidden("sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
    if match:
        if not send_initial:
            forbidden("resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
                      "provided")
        if match != "NotOlderThan":
            causes.append({"reason": "FieldValueNotSupported", "field": "resourceVersionMatch",
                           "message": f'Unsupported value: "{match}": supported values: '
                                      '"NotOlderThan"'})
        if request.param("continue"):
            forbidden("resourceVersionMatch is forbidden when continue is provided")
    if causes:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", causes)


class WatchStream:
    def __init__(self, store: Store, *, bookmark_interval: float = 60.0) -> None:
        self.store = store
        self.bookmark_interval = bookmark_interval

    async def serve(
        self, request: Request, send: Send, info: ResourceInfo, ns: str | None
    ) -> None:
        flt = build_filter(info, request.param("labelSelector"), request.param("fieldSelector"))
        rv_text = request.param("resourceVersion")
        bookmarks = request.flag("allowWatchBookmarks")
        send_initial = request.param("sendInitialEvents")
        _validate_watch_options(request, send_initial)
        timeout_text = request.param("timeoutSeconds")
        try:
            timeout = float(timeout_text) if timeout_text else random.uniform(1800, 3600)
        except ValueError:
            raise errors.BadRequest(f'invalid timeoutSeconds "{timeout_text}"') from None
        table = wants_table(request)
        include_object = request.param("includeObject", "Metadata")
        prefix = info.prefix(ns if info.namespaced else None)

        initial: list[Entry] = []
        if send_initial == "true" or (send_initial == "" and rv_text in ("", "0")):
            initial, start = self.store.list(prefix)
        elif rv_text in ("", "0"):
            start = self.store.revision  # sendInitialEvents=false: changes from now on
        else:
            try:
                start = int(rv_text)
            except ValueError:
                raise errors.BadRequest(f'invalid resource version "{rv_text}"') from None
        # A revision the store has not reached yet: the stream opens now and its first event
        # is the first change after that revision, as kube-apiserver's watch cache waits.
        skip_through = start
        start = min(start, self.store.revision)

        headers_sent = False

        async def begin() -> None:
            nonlocal headers_sent
            if not headers_sent:
                headers_sent = True
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"application/json"),
                    (b"cache-control", b"no-cache, private"),
                    (b"transfer-encoding", b"chunked"),
                ]})

        first_table = [True]

        def encode(kind: str, obj_bytes: bytes) -> bytes:
            if table:
                obj = orjson.loads(obj_bytes)
                rendered = to_table(info, [obj], include_object=include_object,
                                    with_headers=first_table[0])
                first_table[0] = False
                return orjson.dumps({"type": kind, "object": rendered}) + b"\n"
            return b'{"type":"' + kind.encode() + b'","object":' + obj_bytes + b"}\n"

        try:
            watch = self.store.watch(prefix, start)
        except CompactedError as exc:
            await begin()
            status = errors.Expired(str(exc)).status()
            await send({"type": "http.response.body",
                        "body": orjson.dumps({"type": "ERROR", "object": status}) + b"\n",
                        "more_body": False})
            return
        except FutureRevisionError as exc:
            raise errors.Timeout(str(exc), details={"causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ], "retryAfterSeconds": 1}) from None

        await begin()
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(self._watch_disconnect(request, disconnected))
        try:
            chunk: list[bytes] = []
            for entry in initial:
                if flt.matches_entry(entry):
                    try:
                        chunk.append(encode("ADDED", convert(info, entry.value)))
                    except errors.StatusError as err:
                        # A failed conversion ends the watch with the error, as kube's does.
                        chunk.append(_error_line(err))
                        await send({"type": "http.response.body", "more_body": True,
                                    "body": b"".join(chunk)})
                        return
            if bookmarks and send_initial == "true":
                chunk.append(self._bookmark(info, start, initial_end=True))
            if chunk:
                await send({"type": "http.response.body", "body": b"".join(chunk),
                            "more_body": True})
            await self._pump(watch, send, info, flt, encode, bookmarks, timeout, disconnected,
                             skip_through)
        finally:
            watch.close()
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
        if not disconnected.is_set():
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(
        self, watch: Any, send: Send, info: ResourceInfo, flt: Filter,
        encode: Any, bookmarks: bool, timeout: float, disconnected: asyncio.Event,
        skip_through: int = 0,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_rv = self.store.revision
        # A reader task moves events from the store's watcher into ``pending``; the loop below
        # sends whatever has accumulated as one chunk. Every event of a group commit thus costs
        # one write (one TLS record, one syscall) per watcher instead of one each.
        pending: list[Any] = []
        ended: list[BaseException] = []  # why the store's watch ended, once it has
        wake = asyncio.Event()
        room = asyncio.Event()
        room.set()

        async def read() -> None:
            try:
                async for event in watch:
                    pending.append(event)
                    wake.set()
                    if len(pending) >= READ_AHEAD:
                        room.clear()
                        await room.wait()
                ended.append(StopAsyncIteration())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ended.append(exc)
            wake.set()

        reader = asyncio.ensure_future(read())
        stop = asyncio.ensure_future(disconnected.wait())
        stop.add_done_callback(lambda _: wake.set())
        try:
            while not disconnected.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                if not pending and not ended:
                    wait = min(remaining, self.bookmark_interval) if bookmarks else remaining
                    wake_at = loop.time() + wait
                    timer = loop.call_at(wake_at, wake.set)
                    await wake.wait()
                    timer.cancel()
                    wake.clear()
                    if disconnected.is_set():
                        return
                    if not pending and not ended:
                        if bookmarks and wake_at <= loop.time() < deadline:
                            await send({"type": "http.response.body", "more_body": True,
                                        "body": self._bookmark(info, max(last_rv,
                                                                         self.store.revision))})
                        continue
                wake.clear()
                batch = pending[:]
                pending.clear()
                room.set()
                chunk: list[bytes] = []
                failed = False
                for event in batch:
                    if event.revision <= skip_through:
                        continue
                    last_rv = event.revision
                    kind = self._transition(event.type, event.entry, event.prev, flt)
                    if kind is not None:
                        try:
                            chunk.append(encode(kind, convert(info, event.entry.value)))
                        except errors.StatusError as err:
                            chunk.append(_error_line(err))
                            failed = True
                            break
                if failed:
                    await send({"type": "http.response.body", "more_body": True,
                                "body": b"".join(chunk)})
                    return
                if chunk:
                    await send({"type": "http.response.body", "more_body": True,
                                "body": b"".join(chunk)})
                if ended and not pending:
                    exc = ended[0]
                    if isinstance(exc, StopAsyncIteration | WatchOverflowError):
                        # A watcher that fell behind is cut off without an ERROR, as the watch
                        # cache does: the client re-watches from the last resourceVersion it saw.
                        return
                    if isinstance(exc, StorageError):
                        status = errors.Expired(f"watch terminated: {exc}").status()
                        await send({"type": "http.response.body", "more_body": True,
                                    "body": orjson.dumps({"type": "ERROR", "object": status})
                                    + b"\n"})
                        return
                    raise exc
        finally:
            reader.cancel()
            stop.cancel()
            with contextlib.suppress(BaseException):
                await reader

    @staticmethod
    def _transition(kind: str, entry: Entry, prev: Entry | None, flt: Filter) -> str | None:
        if flt.empty:
            return kind
        now = flt.matches_entry(entry)
        if kind == "MODIFIED" and prev is not None:
            before = flt.matches_entry(prev)
            if now and not before:
                return "ADDED"
            if before and not now:
                return "DELETED"
        return kind if now else None

    def _bookmark(self, info: ResourceInfo, revision: int, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": info.kind, "apiVersion": info.group_version, "metadata": meta}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    @staticmethod
    async def _watch_disconnect(request: Request, disconnected: asyncio.Event) -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                disconnected.set()
                return


def _error_line(err: errors.StatusError) -> bytes:
    return orjson.dumps({"type": "ERROR", "object": status_body(err)}) + b"\n"
