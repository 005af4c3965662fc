"""The write path every request and internal controller goes through.

`Objects` turns a verb on a resource into storage operations with kube-apiserver's rules:
defaulting, pruning and validation (`admission.Admission`), system metadata, generation,
resourceVersion preconditions, finalizers and graceful deletion, the status and scale
subresources, and dry runs. HTTP handlers and the server's own controllers (garbage collector,
namespace finalizer, CRD status) share it, so a rule lives in exactly one place.
"""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from shipyard.apimachinery import errors, managedfields
from shipyard.apimachinery.validation import generate_name
from shipyard.apiserver import meta as metarules
from shipyard.apiserver.admission import Admission
from shipyard.apiserver.conversion import to_request_version, to_storage_version
from shipyard.apiserver.resources import ResourceInfo
from shipyard.storage import (
    ConflictError,
    Entry,
    KeyExistsError,
    KeyNotFoundError,
    Store,
)

Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
GENERATE_NAME_ATTEMPTS = 8
MAX_CONFLICT_RETRIES = 16


@dataclass(slots=True)
class WriteOptions:
    dry_run: bool = False
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    field_manager: str = ""
    subresource: str | None = None
    patch: bool = False  # a PATCH: strict unknown fields are 422 rather than 400
    applied: bool = False  # server-side apply already wrote metadata.managedFields


@dataclass(slots=True)
class Outcome:
    """What a write produced: the object as stored (bytes, already stamped), warnings, and
    whether it was created / deleted outright."""

    value: bytes
    warnings: list[str] = field(default_factory=list)
    created: bool = False
    deleted: bool = False

    def object(self) -> Obj:
        obj: Obj = orjson.loads(self.value)
        return obj


class Objects:
    def __init__(self, store: Store, admission: Admission) -> None:
        self.store = store
        self.admission = admission
        # Hook so the namespace rules can veto creates (set by the app).
        self.namespace_check: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ reads

    def entry(self, info: ResourceInfo, namespace: str | None, name: str) -> Entry:
        found = self.store.get(info.key(namespace, name))
        if found is None:
            raise errors.not_found(info.resource, info.group, name)
        return found

    def get(self, info: ResourceInfo, namespace: str | None, name: str) -> Obj:
        return self.entry(info, namespace, name).object()

    # ----------------------------------------------------------------- create

    async def create(
        self, info: ResourceInfo, namespace: str | None, obj: Obj, opts: WriteOptions
    ) -> Outcome:
        self._check_type(info, obj)
        _fold_string_data(info, obj)
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        elif not isinstance(meta, dict):
            raise errors.BadRequest("metadata must be an object")
        self._bind_namespace(info, namespace, meta)
        if info.namespaced and self.namespace_check is not None:
            try:
                self.namespace_check(meta["namespace"])
            except errors.Forbidden as err:
                # NamespaceLifecycle answers admission.NewForbidden: about the resource written.
                raise _forbidden(info, str(meta.get("name") or ""), err) from None
        if not meta.get("name") and not meta.get("generateName"):
            raise errors.invalid(info.kind, info.group, "", [{
                "reason": "FieldValueRequired",
                "message": "Required value: name or generateName is required",
                "field": "metadata.name",
            }])
        metarules.stamp_create(obj, info)
        if info.status and not info.builtin:
            obj.pop("status", None)
        if info.kind == "Namespace":
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
            _label_namespace(obj)
        generated = not meta.get("name")
        if generated:
            meta["name"] = generate_name(str(meta["generateName"]))
        warnings = self.admission.admit(info, obj, None, opts.field_validation)
        self._record(info, opts, None, obj)
        obj = to_storage_version(info, obj)
        meta = obj["metadata"]
        for attempt in range(GENERATE_NAME_ATTEMPTS if generated else 1):
            if attempt:
                meta["name"] = generate_name(str(meta["generateName"]))
            key = info.key(meta.get("namespace"), meta["name"])
            if opts.dry_run:
                if self.store.get(key) is not None:
                    raise errors.already_exists(info.resource, info.group, meta["name"])
                return Outcome(orjson.dumps(obj), warnings, created=True)
            try:
                entry = await self.store.create(key, obj)
            except KeyExistsError:
                if generated and attempt + 1 < GENERATE_NAME_ATTEMPTS:
                    continue
                raise errors.already_exists(info.resource, info.group, meta["name"]) from None
            return Outcome(entry.value, warnings, created=True)
        raise AssertionError("unreachable")

    # ----------------------------------------------------------------- update

    async def update(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        obj: Obj,
        opts: WriteOptions,
    ) -> Outcome:
        """PUT: replace the object (or one subresource of it), honouring its resourceVersion."""
        self._check_type(info, obj)
        meta = self._bind_name(info, namespace, name, obj)
        existing = self.store.get(info.key(namespace, name))
        if existing is None:
            raise errors.not_found(info.resource, info.group, name)
        rv = meta.get("resourceVersion")
        if not rv:
            if not info.builtin or info.resource == "customresourcedefinitions":
                # The generic store words this with the qualified *resource* for custom
                # resources (`widgets.example.com "w" is invalid`), the kind for CRDs.
                kind = info.kind if info.builtin else info.resource
                raise errors.invalid(kind, info.group, name, [{
                    "reason": "FieldValueInvalid",
                    "message": "Invalid value: 0x0: must be specified for an update",
                    "field": "metadata.resourceVersion",
                }])
            expected = existing.mod_revision
        else:
            expected = _parse_rv(rv)
            if expected != existing.mod_revision:
                raise errors.conflict(info.resource, info.group, name)
        try:
            return await self._replace(info, existing, obj, opts, expected)
        except ConflictRetry:
            raise errors.conflict(info.resource, info.group, name) from None

    async def mutate(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        fn: Callable[[Obj], Obj],
        opts: WriteOptions,
    ) -> Outcome:
        """Read-modify-write with retries on conflict (PATCH and internal controllers).

        ``fn`` gets a private copy of the current object and returns the desired one; a
        resourceVersion it leaves in metadata that differs from the current one is a
        precondition and fails with 409 rather than being retried.
        """
        for attempt in range(MAX_CONFLICT_RETRIES):
            existing = self.entry(info, namespace, name)
            current = to_request_version(info, existing.object())
            desired = fn(copy.deepcopy(current))
            if not isinstance(desired, dict):
                raise errors.BadRequest("the patch did not produce an object")
            dmeta = desired.get("metadata")
            if not isinstance(dmeta, dict):
                dmeta = desired["metadata"] = {}
            rv = dmeta.get("resourceVersion")
            if rv and _parse_rv(rv) != existing.mod_revision:
                raise errors.conflict(info.resource, info.group, name)
            self._bind_name(info, namespace, name, desired)
            try:
                return await self._replace(info, existing, desired, opts, existing.mod_revision)
            except ConflictRetry:
                await _backoff(attempt)
                continue
        raise errors.conflict(info.resource, info.group, name)

    async def _replace(
        self, info: ResourceInfo, existing: Entry, obj: Obj, opts: WriteOptions, expected: int
    ) -> Outcome:
        old = to_request_version(info, existing.object())
        name = old["metadata"]["name"]
        _check_uid_unchanged(info, old, obj)
        if opts.subresource == "status":
            new = copy.deepcopy(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            if "managedFields" in obj.get("metadata", {}):
                new["metadata"]["managedFields"] = obj["metadata"]["managedFields"]
        else:
            new = obj
            if info.status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
        metarules.carry_system_fields(new, old, info)
        new["apiVersion"] = old.get("apiVersion", info.group_version)
        new["kind"] = info.kind
        if info.kind == "Namespace":
            if opts.subresource != "finalize":
                new["spec"] = old.get("spec", {})
            _label_namespace(new)
        self._check_finalizers(info, old, new)
        _check_immutable_data(info, old, new)
        _fold_string_data(info, new)
        warnings = self.admission.admit(info, new, old, opts.field_validation, patch=opts.patch)
        new["metadata"]["resourceVersion"] = str(existing.mod_revision)
        if new == old:
            return Outcome(existing.value, warnings)
        self._record(info, opts, old, new)
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not (
            info.kind == "Namespace" and new.get("spec", {}).get("finalizers")
        ):
            # The last finalizer is gone: the update completes the deletion.
            if opts.dry_run:
                return Outcome(orjson.dumps(new), warnings, deleted=True)
            try:
                gone = await self.store.delete(existing.key, expected)
            except ConflictError:
                raise self._conflict(info, name, expected, existing) from None
            except KeyNotFoundError:
                raise errors.not_found(info.resource, info.group, name) from None
            return Outcome(gone.value, warnings, deleted=True)
        if opts.dry_run:
            return Outcome(orjson.dumps(new), warnings)
        try:
            entry = await self.store.update(
                existing.key, to_storage_version(info, new), expected
            )
        except ConflictError:
            raise self._conflict(info, name, expected, existing) from None
        except KeyNotFoundError:
            raise errors.not_found(info.resource, info.group, name) from None
        return Outcome(entry.value, warnings)

    def _conflict(
        self, info: ResourceInfo, name: str, expected: int, existing: Entry
    ) -> Exception:
        if expected == existing.mod_revision:
            return ConflictRetry()
        return errors.conflict(info.resource, info.group, name)

    # ------------------------------------------------------------------ apply

    async def apply(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        config: Obj,
        opts: WriteOptions,
        force: bool,
    ) -> Outcome:
        """Server-side apply: merge ``config`` as ``opts.field_manager``; create if absent."""
        if not isinstance(config.get("apiVersion"), str) or not isinstance(
            config.get("kind"), str
        ):
            raise errors.BadRequest("apiVersion and kind must be set in an apply configuration")
        self._check_type(info, config)
        meta = self._bind_name(info, namespace, name, config)
        scope = managedfields.Scope(info.schema, opts.subresource or "", info.status)
        manager = opts.field_manager
        opts.applied = True
        precondition = meta.pop("resourceVersion", None)
        for system in ("uid", "creationTimestamp", "generation", "managedFields"):
            meta.pop(system, None)

        if self.store.get(info.key(namespace, name)) is None:
            if opts.subresource:
                raise errors.not_found(info.resource, info.group, name)
            obj, managers = managedfields.apply(
                scope, None, config, [], manager, info.group_version, force
            )
            obj["metadata"]["managedFields"] = managedfields.encode_managers(managers)
            try:
                return await self.create(info, namespace, obj, opts)
            except errors.AlreadyExists:
                pass  # lost a race with a create: apply onto it instead

        def merge(current: Obj) -> Obj:
            managers = managedfields.decode_managers(
                current["metadata"].get("managedFields")
            )
            merged, managers = managedfields.apply(
                scope, current, config, managers, manager, info.group_version, force
            )
            if managers:
                merged["metadata"]["managedFields"] = managedfields.encode_managers(managers)
            else:
                merged["metadata"].pop("managedFields", None)
            if precondition:
                merged["metadata"]["resourceVersion"] = precondition
            return merged

        return await self.mutate(info, namespace, name, merge, opts)

    # ----------------------------------------------------------------- delete

    async def delete(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        options: Obj,
        opts: WriteOptions,
    ) -> Outcome:
        """DELETE: remove now, or mark for deletion while finalizers remain."""
        policy = options.get("propagationPolicy")
        if policy is None and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Foreground", "Background"):
            raise errors.invalid("DeleteOptions", "", "", [{
                "reason": "FieldValueNotSupported",
                "message": f'Unsupported value: "{policy}": supported values: '
                           '"Foreground", "Background", "Orphan"',
                "field": "propagationPolicy",
            }])
        pre = options.get("preconditions") or {}
        for attempt in range(MAX_CONFLICT_RETRIES):
            existing = self.entry(info, namespace, name)
            obj = existing.object()
            meta = obj["metadata"]
            # The storage layer's words (etcd3 store), naming the kind rather than resource.
            qualified = f"{info.kind}.{info.group}" if info.group else info.kind
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise errors.Conflict(
                    f'Operation cannot be fulfilled on {qualified} "{name}": the UID in the '
                    f"precondition ({pre['uid']}) does not match the UID in record "
                    f"({meta.get('uid')}). The object might have been deleted and then "
                    "recreated",
                    details={"name": name, "group": info.group, "kind": info.kind},
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get(
                "resourceVersion"
            ):
                raise errors.Conflict(
                    f'Operation cannot be fulfilled on {qualified} "{name}": the '
                    f"ResourceVersion in the precondition ({pre['resourceVersion']}) does not "
                    "match the ResourceVersion in record "
                    f"({meta.get('resourceVersion')}). The object might have been modified",
                    details={"name": name, "group": info.group, "kind": info.kind},
                )
            finalizers = list(meta.get("finalizers") or [])
            if policy == "Foreground" and FOREGROUND not in finalizers:
                finalizers = [f for f in finalizers if f != ORPHAN] + [FOREGROUND]
            elif policy == "Orphan" and ORPHAN not in finalizers:
                finalizers = [f for f in finalizers if f != FOREGROUND] + [ORPHAN]
            elif policy == "Background":
                finalizers = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
            pending_ns = info.kind == "Namespace" and bool(obj.get("spec", {}).get("finalizers"))
            if not finalizers and not pending_ns:
                if opts.dry_run:
                    return Outcome(existing.value, deleted=True)
                try:
                    gone = await self.store.delete(existing.key, existing.mod_revision)
                except (ConflictError, KeyNotFoundError):
                    await _backoff(attempt)
                    continue
                return Outcome(gone.value, deleted=True)
            new = copy.deepcopy(obj)
            nmeta = new["metadata"]
            if finalizers:
                nmeta["finalizers"] = finalizers
            if not nmeta.get("deletionTimestamp"):
                nmeta["deletionTimestamp"] = metarules.now()
                nmeta["deletionGracePeriodSeconds"] = 0
                if metarules.tracks_generation(info):
                    nmeta["generation"] = int(nmeta.get("generation", 0)) + 1
            if info.kind == "Namespace":
                new.setdefault("status", {})["phase"] = "Terminating"
            if new == obj:
                return Outcome(existing.value)
            if opts.dry_run:
                return Outcome(orjson.dumps(new))
            try:
                entry = await self.store.update(existing.key, new, existing.mod_revision)
            except (ConflictError, KeyNotFoundError):
                await _backoff(attempt)
                continue
            return Outcome(entry.value)
        raise errors.conflict(info.resource, info.group, name)

    # ---------------------------------------------------------------- helpers

    def _record(self, info: ResourceInfo, opts: WriteOptions, old: Obj | None, new: Obj) -> None:
        """Maintain metadata.managedFields for an Update (apply records its own)."""
        if opts.applied:
            return
        meta = new["metadata"]
        sent = meta.get("managedFields")
        before = (old or {}).get("metadata", {}).get("managedFields")
        if sent is not None and sent != before:
            # The client rewrote ownership itself (kubectl's client-side-apply migration
            # does); keep what it sent, once it parses. An empty list resets ownership.
            managedfields.decode_managers(sent)
            if not sent:
                meta.pop("managedFields", None)
            return
        scope = managedfields.Scope(info.schema, opts.subresource or "", info.status)
        managers = managedfields.decode_managers(before)
        updated = managedfields.record_update(
            scope, old, new, managers, opts.field_manager or "unknown", info.group_version
        )
        if updated:
            meta["managedFields"] = managedfields.encode_managers(updated)
        else:
            meta.pop("managedFields", None)

    def _check_type(self, info: ResourceInfo, obj: Obj) -> None:
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        if api_version is not None and api_version != info.group_version:
            raise errors.BadRequest(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({info.group_version})"
            )
        if kind is not None and kind != info.kind:
            if info.builtin:  # the typed decoder's scheme conversion refuses it
                version = api_version or info.group_version
                raise errors.BadRequest(
                    f'{kind} in version "{version.rpartition("/")[2]}" cannot be handled as a '
                    f"{info.kind}: converting ({version.rpartition('/')[2]}.{kind}) to "
                    f"({info.group.split('.')[0] or 'core'}.{info.kind}): unknown conversion"
                )
            raise errors.BadRequest(
                f"the kind in the data ({kind}) does not match the expected kind ({info.kind})"
            )
        obj["apiVersion"] = info.group_version
        obj["kind"] = info.kind

    def _bind_name(self, info: ResourceInfo, namespace: str | None, name: str, obj: Obj) -> Obj:
        """The body's name must be the URL's (or absent); returns the body's metadata."""
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if meta.get("name", name) != name:
            raise errors.BadRequest(
                f"the name of the object ({meta.get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        meta["name"] = name
        self._bind_namespace(info, namespace, meta)
        return meta

    def _bind_namespace(self, info: ResourceInfo, namespace: str | None, meta: Obj) -> None:
        if info.namespaced:
            given = meta.get("namespace")
            if given and namespace and given != namespace:
                raise errors.BadRequest(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace or given or "default"
        else:
            meta.pop("namespace", None)

    def _check_finalizers(self, info: ResourceInfo, old: Obj, new: Obj) -> None:
        if not old["metadata"].get("deletionTimestamp"):
            return
        before = set(old["metadata"].get("finalizers") or [])
        added = [f for f in new["metadata"].get("finalizers") or [] if f not in before]
        if added:
            found = ", ".join(f'"{f}"' for f in added)
            raise errors.invalid(info.kind, info.group, old["metadata"]["name"], [{
                "reason": "FieldValueForbidden",
                "message": "Forbidden: no new finalizers can be added if the object is being "
                           f"deleted, found new finalizers []string{{{found}}}",
                "field": "metadata.finalizers",
            }])


def _fold_string_data(info: ResourceInfo, obj: Obj) -> None:
    """Secret.stringData is write-only: its entries overwrite data, base64-encoded, as the
    v1-to-internal conversion does; ``type`` defaults to Opaque (SetDefaults_Secret)."""
    if info.kind != "Secret" or info.group:
        return
    if not obj.get("type"):
        obj["type"] = "Opaque"
    if "stringData" not in obj:
        return
    string_data = obj.pop("stringData")
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data")
        if not isinstance(data, dict):
            data = obj["data"] = {}
        for key, value in string_data.items():
            if isinstance(value, str):
                data[key] = base64.b64encode(value.encode()).decode()


def _forbidden(info: ResourceInfo, name: str, err: errors.StatusError) -> errors.Forbidden:
    target = f'{info.qualified} "{name}"' if name else info.qualified
    details: errors.StatusDetails = {"name": name, "group": info.group, "kind": info.resource}
    if err.causes:
        details["causes"] = err.causes
    return errors.Forbidden(f"{target} is forbidden: {err.message}", details=details)


def _check_uid_unchanged(info: ResourceInfo, old: Obj, obj: Obj) -> None:
    """An update may omit metadata.uid (the stored one is kept) but never change it."""
    meta = obj.get("metadata")
    uid = meta.get("uid") if isinstance(meta, dict) else None
    if uid and uid != old["metadata"].get("uid"):
        raise errors.invalid(info.kind, info.group, old["metadata"]["name"], [{
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "{uid}": field is immutable',
            "field": "metadata.uid",
        }])


async def _backoff(attempt: int) -> None:
    """Wait before re-reading after a CAS miss. The miss is usually a write still in flight,
    which becomes visible only once the loop runs its commit; retrying without yielding would
    spin through every attempt before it lands."""
    await asyncio.sleep(min(0.001 * 2**attempt, 0.05))


class ConflictRetry(Exception):
    """Internal: a CAS miss on an unconditional write; the caller re-reads and retries."""


def _check_immutable_data(info: ResourceInfo, old: Obj, new: Obj) -> None:
    """ConfigMaps and Secrets marked ``immutable: true`` keep their data and the mark
    (ValidateConfigMapUpdate / ValidateSecretUpdate)."""
    if info.group or info.kind not in ("ConfigMap", "Secret") or old.get("immutable") is not True:
        return
    message = "Forbidden: field is immutable when `immutable` is set"
    causes: list[errors.StatusCause] = [
        {"reason": "FieldValueForbidden", "message": message, "field": field}
        for field in ("data", "binaryData")
        if (old.get(field) or {}) != (new.get(field) or {})
    ]
    if new.get("immutable") is not True:
        causes.append({"reason": "FieldValueForbidden", "message": message,
                       "field": "immutable"})
    if causes:
        raise errors.invalid(info.kind, info.group, old["metadata"]["name"], causes)


def _label_namespace(obj: Obj) -> None:
    """Every namespace carries its own name as a label (NamespaceDefaultLabelName, GA 1.22)."""
    labels = obj["metadata"].get("labels")
    if not isinstance(labels, dict):
        labels = obj["metadata"]["labels"] = {}
    labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]


def _parse_rv(rv: Any) -> int:
    try:
        value = int(str(rv))
    except ValueError:
        raise errors.BadRequest(f'invalid resource version "{rv}"') from None
    return value
