"""REST verbs on resources: the glue between HTTP requests and `objects.Objects`.

Each handler reads the request's parameters the way kube-apiserver does, calls the write path,
and answers with the stored bytes (converted to the requested version when a CRD serves
several), a Table when the client asked for one, or a Status.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import orjson

from shipyard.apimachinery import errors
from shipyard.apimachinery.jsonpath import get_path, set_path
from shipyard.apimachinery.patching import apply_json_patch, apply_merge_patch
from shipyard.apimachinery.selectors import label_selector_to_string
from shipyard.apimachinery.strategic import apply_strategic_merge_patch, patch_meta_for
from shipyard.apiserver import codec
from shipyard.apiserver.conversion import to_request_version
from shipyard.apiserver.filtering import build_filter
from shipyard.apiserver.http import Request, Send, respond, respond_json, warning_headers
from shipyard.apiserver.listing import list_page
from shipyard.apiserver.objects import Objects, Outcome, WriteOptions
from shipyard.apiserver.resources import ResourceInfo
from shipyard.apiserver.tables import to_table
from shipyard.storage import Store

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"


def _as_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.BadRequest("the patch did not produce an object")
    return value


def wants_table(request: Request) -> bool:
    accept = request.accept
    return "as=Table" in accept and "g=meta.k8s.io" in accept


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Hold the cyclic GC while a Table decodes a whole list at once (no await inside).

    Those objects are acyclic dicts that reference counting frees anyway, but allocating tens of
    thousands of them triggers full collections over the whole heap, store included: half the
    time of a 10,000-object Table list went there (benchmarks/).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def convert(info: ResourceInfo, value: bytes) -> bytes:
    """Serve a stored object at the requested version.

    Objects keep the version they were stored at when a CRD's storage version moves, so this
    compares with the stored apiVersion, not with today's storage version; the prefix test is
    the fast path for the usual ``{"apiVersion":...`` first key.
    """
    if not info.storage_version:
        return value
    if value.startswith(b'{"apiVersion":"' + info.group_version.encode() + b'"'):
        return value
    obj = orjson.loads(value)
    if obj.get("apiVersion") == info.group_version:
        return value
    return orjson.dumps(to_request_version(info, obj), option=orjson.OPT_SORT_KEYS)


def _manager_from_user_agent(user_agent: str) -> str:
    """kube-apiserver's default field manager: the User-Agent up to its first '/'."""
    return user_agent.split("/", 1)[0][:128]


def _go_strings(values: list[str]) -> str:
    """Go's %#v of a []string, as kube's validation messages print it."""
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def list_item(info: ResourceInfo, value: bytes) -> bytes:
    """An item of a list response: built-in kinds' items carry no apiVersion/kind (their typed
    lists encode items without TypeMeta); custom resources' do."""
    if not info.builtin:
        return convert(info, value)
    obj = orjson.loads(value)
    obj.pop("apiVersion", None)
    obj.pop("kind", None)
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def write_options(
    request: Request, subresource: str | None = None, options_kind: str = "CreateOptions"
) -> WriteOptions:
    """The write's query options, validated as kube-apiserver validates its *Options kinds
    (422 naming ``CreateOptions.meta.k8s.io`` / ``UpdateOptions`` / ``PatchOptions`` ...)."""
    dry = request.query.get("dryRun", [])
    if any(value != "All" for value in dry):
        raise errors.invalid(options_kind, "meta.k8s.io", "", [{
            "reason": "FieldValueNotSupported",
            "message": f'Unsupported value: {_go_strings(dry)}: supported values: "All"',
            "field": "dryRun",
        }])
    manager = request.param("fieldManager") or _manager_from_user_agent(
        request.headers.get("user-agent", "")
    )
    if len(manager) > 128:
        raise errors.invalid(options_kind, "meta.k8s.io", "", [{
            "reason": "FieldValueTooLong",
            "message": "Too long: may not be more than 128 bytes",
            "field": "fieldManager",
        }])
    return WriteOptions(
        dry_run=bool(dry),
        field_validation=request.param("fieldValidation", "Warn") or "Warn",
        field_manager=manager,
        subresource=subresource,
    )


async def _send_outcome(
    send: Send, info: ResourceInfo, outcome: Outcome, status: int
) -> None:
    await respond(send, status, convert(info, outcome.value),
                  headers=warning_headers(outcome.warnings))


class Handlers:
    def __init__(self, store: Store, objects: Objects) -> None:
        self.store = store
        self.objects = objects

    # ------------------------------------------------------------------ reads

    async def get(
        self, request: Request, send: Send, info: ResourceInfo, ns: str | None, name: str
    ) -> None:
        entry = self.objects.entry(info, ns, name)
        if wants_table(request):
            table = to_table(info, [orjson.loads(convert(info, entry.value))],
                             include_object=request.param("includeObject", "Metadata"),
                             resource_version=str(entry.mod_revision))
            await respond_json(send, 200, table)
            return
        await respond(send, 200, convert(info, entry.value))

    async def list(
        self, request: Request, send: Send, info: ResourceInfo, ns: str | None
    ) -> None:
        flt = build_filter(info, request.param("labelSelector"), request.param("fieldSelector"))
        limit_text = request.param("limit", "0") or "0"
        try:
            limit = max(int(limit_text), 0)
        except ValueError:
            raise errors.BadRequest(f'invalid limit "{limit_text}"') from None
        page = await list_page(
            self.store, info, ns, flt,
            limit=limit,
            continue_token=request.param("continue"),
            resource_version=request.param("resourceVersion"),
            resource_version_match=request.param("resourceVersionMatch"),
        )
        if wants_table(request):
            with _cyclic_gc_paused():
                table = to_table(
                    info, [orjson.loads(convert(info, e.value)) for e in page.entries],
                    include_object=request.param("includeObject", "Metadata"),
                    resource_version=str(page.revision), continue_token=page.continue_token,
                    remaining=page.remaining,
                )
                body = orjson.dumps(table)
                del table
            await respond(send, 200, body)
            return
        list_meta: dict[str, Any] = {"resourceVersion": str(page.revision)}
        if page.continue_token:
            list_meta["continue"] = page.continue_token
        if page.remaining is not None:
            list_meta["remainingItemCount"] = page.remaining
        head = orjson.dumps({"apiVersion": info.group_version, "kind": info.list_kind,
                             "metadata": list_meta})
        body = b"".join((
            head[:-1], b',"items":[', b",".join(list_item(info, e.value) for e in page.entries),
            b"]}",
        ))
        await respond(send, 200, body)

    # ----------------------------------------------------------------- writes

    async def create(
        self, request: Request, send: Send, info: ResourceInfo, ns: str | None
    ) -> None:
        opts = write_options(request)
        obj = codec.decode_object(await request.body(), request.content_type, info.kind)
        outcome = await self.objects.create(info, ns, obj, opts)
        await _send_outcome(send, info, outcome, 201)

    async def update(
        self, request: Request, send: Send, info: ResourceInfo, ns: str | None, name: str,
        subresource: str | None,
    ) -> None:
        opts = write_options(request, subresource, "UpdateOptions")
        obj = codec.decode_object(await request.body(), request.content_type, info.kind)
        if subresource == "scale":
            await self._scale_write(send, info, ns, name, obj, opts)
            return
        outcome = await self.objects.update(info, ns, name, obj, opts)
        await _send_outcome(send, info, outcome, 200)

    async def patch(
        self, request: Request, send: Send, info: ResourceInfo, ns: str | None, name: str,
        subresource: str | None,
    ) -> None:
        opts = write_options(request, subresource, "PatchOptions")
        opts.patch = True
        ctype = request.content_type
        if request.param("force") and ctype != APPLY_PATCH:
            raise errors.invalid("PatchOptions", "meta.k8s.io", "", [{
                "reason": "FieldValueForbidden",
                "message": "Forbidden: may not be specified for non-apply patch",
                "field": "force",
            }])
        body = await request.body()
        if ctype == JSON_PATCH:
            ops = codec.decode(body, "application/json")

            def mutate(current: dict[str, Any]) -> dict[str, Any]:
                return _as_object(apply_json_patch(current, ops))
        elif ctype == MERGE_PATCH:
            patch_doc = codec.decode(body, "application/json")
            if not isinstance(patch_doc, dict):
                raise errors.BadRequest("merge patch must be a JSON object")

            def mutate(current: dict[str, Any]) -> dict[str, Any]:
                return _as_object(apply_merge_patch(current, patch_doc))
        elif ctype == STRATEGIC_PATCH and info.builtin:
            patch_doc = codec.decode(body, "application/json")
            if not isinstance(patch_doc, dict):
                raise errors.BadRequest("strategic merge patch must be a JSON object")
            # Every built-in kind takes it, described by its table entry or its schema.
            pmeta = patch_meta_for(info.group, info.kind, info.schema or {})
            assert pmeta is not None

            def mutate(current: dict[str, Any]) -> dict[str, Any]:
                return _as_object(apply_strategic_merge_patch(current, patch_doc, pmeta))
        elif ctype == APPLY_PATCH:
            await self._apply(request, send, info, ns, name, subresource, opts, body)
            return
        else:
            supported = [JSON_PATCH, MERGE_PATCH] + ([STRATEGIC_PATCH] if info.builtin else [])
            raise errors.UnsupportedMediaType(
                f'the body of the request was in an unknown format - accepted media types '
                f'include: {", ".join(supported)}'
            )
        if subresource == "scale":
            scale = self._scale_of(info, self.objects.get(info, ns, name))
            patched = mutate(scale)
            await self._scale_write(send, info, ns, name, patched, opts)
            return
        outcome = await self.objects.mutate(info, ns, name, mutate, opts)
        await _send_outcome(send, info, outcome, 200)

    async def _apply(
        self, request: Request, send: Send, info: ResourceInfo, ns: str | None, name: str,
        subresource: str | None, opts: WriteOptions, body: bytes,
    ) -> None:
        if not request.param("fieldManager"):
            raise errors.invalid("PatchOptions", "meta.k8s.io", "", [{
                "reason": "FieldValueRequired",
                "message": "Required value: is required for apply patch",
                "field": "fieldManager",
            }])
        force_text = request.param("force")
        if force_text not in ("", "true", "false"):
            raise errors.BadRequest(f'invalid force parameter "{force_text}"')
        if subresource not in (None, "status"):
            raise errors.UnsupportedMediaType(
                f"apply is not supported on the {subresource} subresource"
            )
        config = codec.decode_object(body, "application/yaml")
        outcome = await self.objects.apply(info, ns, name, config, opts, force_text == "true")
        await _send_outcome(send, info, outcome, 201 if outcome.created else 200)

    async def delete(
        self, request: Request, send: Send, info: ResourceInfo, ns: str | None, name: str
    ) -> None:
        opts = write_options(request, options_kind="DeleteOptions")
        options = await self._delete_options(request)
        outcome = await self.objects.delete(info, ns, name, options, opts)
        if outcome.deleted:
            meta = outcome.object().get("metadata", {})
            details = {"name": name, "group": info.group, "kind": info.resource,
                       "uid": meta.get("uid", "")}
            await respond_json(send, 200, {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {k: v for k, v in details.items() if v},  # omitempty, as kube
            })
            return
        await respond(send, 200, convert(info, outcome.value))

    async def delete_collection(
        self, request: Request, send: Send, info: ResourceInfo, ns: str | None
    ) -> None:
        opts = write_options(request, options_kind="DeleteOptions")
        options = await self._delete_options(request)
        flt = build_filter(info, request.param("labelSelector"), request.param("fieldSelector"))
        entries, revision = self.store.list(info.prefix(ns if info.namespaced else None))
        for entry in entries:
            if not flt.matches_entry(entry):
                continue
            obj = entry.object()
            meta = obj["metadata"]
            try:
                await self.objects.delete(info, meta.get("namespace"), meta["name"], options,
                                          opts)
            except errors.NotFound:
                continue
        await respond_json(send, 200, {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {k: v for k, v in (("group", info.group), ("kind", info.resource)) if v},
        })

    async def _delete_options(self, request: Request) -> dict[str, Any]:
        body = await request.body()
        options: dict[str, Any] = {}
        if body.strip():
            decoded = codec.decode(body, request.content_type or "application/json")
            if not isinstance(decoded, dict):
                raise errors.BadRequest("DeleteOptions must be an object")
            options = decoded
        if request.param("propagationPolicy"):
            options["propagationPolicy"] = request.param("propagationPolicy")
        if request.param("orphanDependents"):
            options["orphanDependents"] = request.flag("orphanDependents")
        return options

    # ------------------------------------------------------------------ scale

    def _scale_of(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        scale = info.scale
        if scale is None:
            raise errors.NotFound("the server could not find the requested resource")
        meta = obj["metadata"]
        spec = get_path(obj, scale.spec_replicas_path)
        status = get_path(obj, scale.status_replicas_path)
        out: dict[str, Any] = {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": int(spec) if isinstance(spec, int) else 0},
            "status": {"replicas": int(status) if isinstance(status, int) else 0},
        }
        if scale.label_selector_path:
            selector = get_path(obj, scale.label_selector_path)
            if isinstance(selector, dict):
                selector = label_selector_to_string(selector)
            if isinstance(selector, str) and selector:
                out["status"]["selector"] = selector
        return out

    async def get_scale(
        self, send: Send, info: ResourceInfo, ns: str | None, name: str
    ) -> None:
        await respond_json(send, 200, self._scale_of(info, self.objects.get(info, ns, name)))

    async def _scale_write(
        self, send: Send, info: ResourceInfo, ns: str | None, name: str,
        scale: dict[str, Any], opts: WriteOptions,
    ) -> None:
        if info.scale is None:
            raise errors.NotFound("the server could not find the requested resource")
        # Scale.spec.replicas is omitempty: kubectl's `scale --replicas=0` PUTs `spec: {}`.
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", name, [{
                "reason": "FieldValueInvalid",
                "message": f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                "field": "spec.replicas",
            }])
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        spec_path = info.scale.spec_replicas_path

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            if rv:
                current["metadata"]["resourceVersion"] = rv
            set_path(current, spec_path, replicas)
            return current

        outcome = await self.objects.mutate(info, ns, name, mutate,
                                            WriteOptions(opts.dry_run, opts.field_validation,
                                                         opts.field_manager, None))
        await respond_json(send, 200, self._scale_of(info, outcome.object()))
