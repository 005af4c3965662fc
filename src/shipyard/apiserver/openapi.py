"""OpenAPI documents: what kubectl downloads before apply/create/edit/explain.

kubectl validates every write client-side unless the server's OpenAPI v3 says it validates
itself, picks strategic merge patch only when the PATCH operation lists that content type, and
``kubectl explain`` walks these schemas. So, per group/version, like kube-apiserver:

- ``/openapi/v3``: ``{"paths": {"apis/g/v": {"serverRelativeURL": "/openapi/v3/apis/g/v?hash=H"}}}``
  with ``H`` the uppercase hex SHA-512 of the document body (it changes whenever the document does).
- ``/openapi/v3/apis/g/v``: OpenAPI 3.0 JSON. Every resource gets kube's path layout (namespaced
  and all-namespaces collections, items, ``/status``, ``/scale``, the deprecated ``/watch/``
  paths), each operation with ``x-kubernetes-action`` and an ``x-kubernetes-group-version-kind``
  map, inline query parameters (``fieldValidation``, ``dryRun``, ``fieldManager``, ``force``...),
  and PATCH request bodies listing json-patch, merge-patch, apply-patch and — for built-ins only —
  strategic-merge-patch. ``components.schemas`` holds each kind under kube's name
  (``io.k8s.api.core.v1.ConfigMap``; CRDs under the reversed group, ``io.x-k8s.cluster.v1beta2.
  Machine``) with its ``x-kubernetes-group-version-kind`` list, plus the shared meta.k8s.io schemas
  (ObjectMeta, ListMeta, Status, DeleteOptions, WatchEvent, Patch) and autoscaling/v1 Scale.
- ``/openapi/v2``: protobuf only (kubectl never reads JSON there); a minimal gnostic Document
  ``{swagger: "2.0"}`` makes kubectl skip v2 validation instead of failing.

Documents are built from the live `Registry` and cached per ``registry.generation``.
"""

from __future__ import annotations

import copy
import hashlib
import re
import weakref
from typing import Any

import orjson

from shipyard.apiserver.registry import Registry
from shipyard.apiserver.resources import ResourceInfo

V2_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
V2_PROTOBUF_DOCUMENT = b"\x0a\x032.0"  # gnostic openapi_v2.Document{swagger: "2.0"}
V3_CONTENT_TYPE = "application/json"

Schema = dict[str, Any]
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
SCALE = "io.k8s.api.autoscaling.v1.Scale"
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def ref(name: str, description: str = "") -> Schema:
    schema: Schema = {"allOf": [{"$ref": f"#/components/schemas/{name}"}]}
    if description:
        schema["description"] = description
    return schema


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def gv_path(group: str, version: str) -> str:
    """``api/v1`` or ``apis/{group}/{version}``: the index key of a group/version document."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def schema_name(info: ResourceInfo, kind: str | None = None) -> str:
    kind = kind or info.kind
    if not info.group:
        return f"io.k8s.api.core.{info.version}.{kind}"
    if info.builtin and info.group == "apiextensions.k8s.io":
        return f"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.{info.version}.{kind}"
    if info.builtin:
        return f"io.k8s.api.{info.group.removesuffix('.k8s.io')}.{info.version}.{kind}"
    return ".".join(reversed(info.group.split("."))) + f".{info.version}.{kind}"


# ---------------------------------------------------------------------------------------------
# shared schemas

_STR: Schema = {"type": "string"}
_BOOL: Schema = {"type": "boolean"}
_INT32: Schema = {"type": "integer", "format": "int32"}
_INT64: Schema = {"type": "integer", "format": "int64"}
_STR_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
_TIME = ref(META + "Time")
_API_VERSION: Schema = {
    "type": "string",
    "description": "APIVersion defines the versioned schema of this representation of an object."
    " Servers should convert recognized schemas to the latest internal value, and may reject"
    " unrecognized values.",
}
_KIND: Schema = {
    "type": "string",
    "description": "Kind is a string value representing the REST resource this object"
    " represents. Servers may infer this from the endpoint the client submits requests to."
    " Cannot be updated. In CamelCase.",
}
_OBJECT_META_DESC = (
    "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#metadata"
)


def _object(props: dict[str, Schema], description: str, **extra: Any) -> Schema:
    return {"type": "object", "description": description, "properties": props, **extra}


def meta_schemas(group_versions: list[tuple[str, str]]) -> dict[str, Schema]:
    """The meta.k8s.io schemas every group/version document references."""
    shared_gvks = [_gvk(g, v, "") for g, v in group_versions]
    return {
        META + "Time": {
            "type": "string", "format": "date-time",
            "description": "Time is a wrapper around time.Time which supports correct marshaling"
            " to YAML and JSON.",
        },
        META + "FieldsV1": {
            "type": "object",
            "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in"
            " JSON format.",
        },
        META + "ObjectMeta": _object(
            {
                "annotations": {**_STR_MAP, "description": "Annotations is an unstructured"
                                " key value map stored with a resource."},
                "creationTimestamp": {**_TIME, "description": "CreationTimestamp is a timestamp"
                                      " representing the server time when this object was"
                                      " created."},
                "deletionGracePeriodSeconds": _INT64,
                "deletionTimestamp": _TIME,
                "finalizers": {
                    "type": "array", "items": {"type": "string", "default": ""},
                    "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge",
                    "description": "Must be empty before the object is deleted from the"
                    " registry.",
                },
                "generateName": {**_STR, "description": "GenerateName is an optional prefix,"
                                 " used by the server, to generate a unique name ONLY IF the"
                                 " Name field has not been provided."},
                "generation": _INT64,
                "labels": {**_STR_MAP, "description": "Map of string keys and values that can"
                           " be used to organize and categorize (scope and select) objects."},
                "managedFields": {
                    "type": "array", "items": ref(META + "ManagedFieldsEntry"),
                    "x-kubernetes-list-type": "atomic",
                },
                "name": {**_STR, "description": "Name must be unique within a namespace."},
                "namespace": {**_STR, "description": "Namespace defines the space within which"
                              " each name must be unique."},
                "ownerReferences": {
                    "type": "array", "items": ref(META + "OwnerReference"),
                    "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map",
                    "x-kubernetes-patch-merge-key": "uid",
                    "x-kubernetes-patch-strategy": "merge",
                },
                "resourceVersion": _STR,
                "selfLink": _STR,
                "uid": _STR,
            },
            "ObjectMeta is metadata that all persisted resources must have, which includes all"
            " objects users must create.",
        ),
        META + "OwnerReference": _object(
            {"apiVersion": _STR, "blockOwnerDeletion": _BOOL, "controller": _BOOL,
             "kind": _STR, "name": _STR, "uid": _STR},
            "OwnerReference contains enough information to let you identify an owning object.",
            required=["apiVersion", "kind", "name", "uid"],
            **{"x-kubernetes-map-type": "atomic"},
        ),
        META + "ManagedFieldsEntry": _object(
            {"apiVersion": _STR, "fieldsType": _STR, "fieldsV1": ref(META + "FieldsV1"),
             "manager": _STR, "operation": _STR, "subresource": _STR, "time": _TIME},
            "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the"
            " resource that the fieldset applies to.",
        ),
        META + "ListMeta": _object(
            {"continue": _STR, "remainingItemCount": _INT64, "resourceVersion": _STR,
             "selfLink": _STR},
            "ListMeta describes metadata that synthetic resources must have, including lists"
            " and various status objects.",
        ),
        META + "StatusCause": _object(
            {"field": _STR, "message": _STR, "reason": _STR},
            "StatusCause provides more information about an api.Status failure.",
        ),
        META + "StatusDetails": _object(
            {
                "causes": {"type": "array", "items": ref(META + "StatusCause"),
                           "x-kubernetes-list-type": "atomic"},
                "group": _STR, "kind": _STR, "name": _STR, "retryAfterSeconds": _INT32,
                "uid": _STR,
            },
            "StatusDetails is a set of additional properties that MAY be set by the server to"
            " provide additional information about a response.",
        ),
        META + "Status": _object(
            {"apiVersion": _API_VERSION, "code": _INT32, "details": ref(META + "StatusDetails"),
             "kind": _KIND, "message": _STR, "metadata": ref(META + "ListMeta"),
             "reason": _STR, "status": _STR},
            "Status is a return value for calls that don't return other objects.",
            **{"x-kubernetes-group-version-kind": [_gvk("", "v1", "Status")]},
        ),
        META + "Preconditions": _object(
            {"resourceVersion": _STR, "uid": _STR},
            "Preconditions must be fulfilled before an operation (update, delete, etc.) is"
            " carried out.",
        ),
        META + "DeleteOptions": _object(
            {
                "apiVersion": _API_VERSION,
                "dryRun": {"type": "array", "items": _STR, "x-kubernetes-list-type": "atomic"},
                "gracePeriodSeconds": _INT64,
                "ignoreStoreReadErrorWithClusterBreakingPotential": _BOOL,
                "kind": _KIND,
                "orphanDependents": _BOOL,
                "preconditions": ref(META + "Preconditions"),
                "propagationPolicy": _STR,
            },
            "DeleteOptions may be provided when deleting an API object.",
            **{"x-kubernetes-group-version-kind": [
                {**g, "kind": "DeleteOptions"} for g in shared_gvks
            ]},
        ),
        META + "WatchEvent": _object(
            {"object": ref("io.k8s.apimachinery.pkg.runtime.RawExtension"), "type": _STR},
            "Event represents a single event to a watched resource.",
            required=["type", "object"],
            **{"x-kubernetes-group-version-kind": [
                {**g, "kind": "WatchEvent"} for g in shared_gvks
            ]},
        ),
        META + "Patch": {
            "type": "object",
            "description": "Patch is provided to give a concrete name and type to the"
            " Kubernetes PATCH request body.",
        },
        "io.k8s.apimachinery.pkg.runtime.RawExtension": {
            "type": "object",
            "description": "RawExtension is used to hold extensions in external versions.",
        },
    }


def scale_schemas() -> dict[str, Schema]:
    return {
        SCALE: _object(
            {"apiVersion": _API_VERSION, "kind": _KIND,
             "metadata": ref(META + "ObjectMeta", _OBJECT_META_DESC),
             "spec": ref(SCALE + "Spec"), "status": ref(SCALE + "Status")},
            "Scale represents a scaling request for a resource.",
            **{"x-kubernetes-group-version-kind": [_gvk("autoscaling", "v1", "Scale")]},
        ),
        SCALE + "Spec": _object({"replicas": _INT32}, "ScaleSpec describes the attributes of a"
                                " scale subresource."),
        SCALE + "Status": _object(
            {"replicas": _INT32, "selector": _STR},
            "ScaleStatus represents the current status of a scale subresource.",
            required=["replicas"],
        ),
    }


def kind_schema(info: ResourceInfo) -> Schema:
    """The kind's openAPIV3Schema as published: full ObjectMeta, GVK extension."""
    schema: Schema = (
        copy.deepcopy(info.schema)
        if info.schema
        else {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    )
    props: dict[str, Schema] = schema.setdefault("properties", {})
    for field, base in (("apiVersion", _API_VERSION), ("kind", _KIND)):
        own = {k: v for k, v in props.get(field, {}).items() if k != "description"}
        props[field] = {**base, **own}
    props["metadata"] = ref(META + "ObjectMeta", _OBJECT_META_DESC)
    schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [_gvk(info.group, info.version, info.kind)]
    return schema


def list_schema(info: ResourceInfo) -> Schema:
    return {
        "type": "object",
        "description": f"{info.list_kind} is a list of {info.kind}",
        "required": ["items"],
        "properties": {
            "apiVersion": _API_VERSION,
            "items": {"type": "array", "items": ref(schema_name(info)),
                      "description": f"List of {info.resource}."},
            "kind": _KIND,
            "metadata": ref(META + "ListMeta", "Standard list metadata."),
        },
        "x-kubernetes-group-version-kind": [_gvk(info.group, info.version, info.list_kind)],
    }


# ---------------------------------------------------------------------------------------------
# paths


def _query(name: str, schema: Schema, description: str = "") -> Schema:
    return {"name": name, "in": "query", "description": description,
            "schema": {**schema, "uniqueItems": True}}


_PRETTY = _query("pretty", _STR, "If 'true', then the output is pretty printed.")
_DRY_RUN = _query("dryRun", _STR, "When present, indicates that modifications should not be"
                  " persisted. Valid values are: - All: all dry run stages will be processed")
_FIELD_MANAGER = _query("fieldManager", _STR, "fieldManager is a name associated with the actor"
                        " or entity that is making these changes.")
_FIELD_VALIDATION = _query(
    "fieldValidation", _STR,
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH)"
    " containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
)
_FORCE = _query("force", _BOOL, "Force is going to \"force\" Apply requests. It means user will"
                " re-acquire conflicting fields owned by other people.")
_LIST_PARAMS = [
    _query("allowWatchBookmarks", _BOOL), _query("continue", _STR),
    _query("fieldSelector", _STR), _query("labelSelector", _STR),
    _query("limit", {"type": "integer"}), _query("resourceVersion", _STR),
    _query("resourceVersionMatch", _STR), _query("sendInitialEvents", _BOOL),
    _query("timeoutSeconds", {"type": "integer"}), _query("watch", _BOOL),
]
_DELETE_PARAMS = [
    _DRY_RUN, _query("gracePeriodSeconds", {"type": "integer"}),
    _query("ignoreStoreReadErrorWithClusterBreakingPotential", _BOOL),
    _query("orphanDependents", _BOOL), _query("propagationPolicy", _STR),
]


def _path_param(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {**_STR, "uniqueItems": True},
            "description": f"{name} of the resource" if name == "name" else
            "object name and auth scope, such as for teams and projects"}


def _content(info: ResourceInfo, schema: str, *, stream: bool = False) -> dict[str, Any]:
    types = ["application/json", "application/yaml"]
    if info.builtin:
        types.append("application/vnd.kubernetes.protobuf")
    if stream:
        types += ["application/json;stream=watch"]
        if info.builtin:
            types.append("application/vnd.kubernetes.protobuf;stream=watch")
    return {t: {"schema": ref(schema)} for t in types}


def _responses(info: ResourceInfo, schema: str, codes: tuple[str, ...],
               stream: bool = False) -> dict[str, Any]:
    names = {"200": "OK", "201": "Created", "202": "Accepted"}
    out: dict[str, Any] = {
        code: {"description": names[code], "content": _content(info, schema, stream=stream)}
        for code in codes
    }
    out["401"] = {"description": "Unauthorized"}
    return out


def _group_token(info: ResourceInfo) -> str:
    """``Core``, ``Coordination``, ``ClusterXK8sIo``: the group as kube spells it in op ids."""
    group = info.group.removesuffix(".k8s.io") if info.builtin else info.group
    words = re.split(r"[.\-]", group) if group else ["core"]
    return "".join(w[:1].upper() + w[1:] for w in words)


def _op_token(info: ResourceInfo) -> str:
    return _group_token(info) + info.version[:1].upper() + info.version[1:]


def _operation(info: ResourceInfo, action: str, op_id: str, gvk: dict[str, str],
               responses: dict[str, Any], params: list[Schema],
               body: dict[str, Any] | None = None) -> dict[str, Any]:
    tag = _group_token(info)
    op: dict[str, Any] = {
        "tags": [f"{tag[:1].lower()}{tag[1:]}_{info.version}"],
        "description": f"{action} {info.kind}",
        "operationId": op_id,
        "parameters": params,
        "responses": responses,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if body is not None:
        op["requestBody"] = body
    return op


def _body(schema: str) -> dict[str, Any]:
    return {"content": {"*/*": {"schema": ref(schema)}}, "required": True}


def _patch_body(info: ResourceInfo) -> dict[str, Any]:
    types = PATCH_TYPES if info.builtin else PATCH_TYPES[:3]
    return {"content": {t: {"schema": ref(META + "Patch")} for t in types}, "required": True}


def resource_paths(info: ResourceInfo) -> dict[str, Any]:
    """Every path kube-apiserver publishes for one resource, in its layout."""
    prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    token, kind, verbs = _op_token(info), info.kind, set(info.verbs)
    gvk = _gvk(info.group, info.version, info.kind)
    own, lst = schema_name(info), schema_name(info, info.list_kind)
    scope = "Namespaced" if info.namespaced else ""
    ns = "namespaces/{namespace}/" if info.namespaced else ""
    ns_params = [_path_param("namespace")] if info.namespaced else []
    name_params = [_path_param("name"), *ns_params, _PRETTY]
    write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    paths: dict[str, Any] = {}

    collection: dict[str, Any] = {"parameters": [*ns_params, _PRETTY]}
    if "list" in verbs:
        collection["get"] = _operation(info, "list", f"list{token}{scope}{kind}", gvk,
                                       _responses(info, lst, ("200",), stream=True),
                                       list(_LIST_PARAMS))
    if "create" in verbs:
        collection["post"] = _operation(info, "post", f"create{token}{scope}{kind}", gvk,
                                        _responses(info, own, ("200", "201", "202")), write,
                                        _body(own))
    if "deletecollection" in verbs:
        collection["delete"] = _operation(
            info, "deletecollection", f"delete{token}Collection{scope}{kind}", gvk,
            _responses(info, META + "Status", ("200",)),
            [*_DELETE_PARAMS, *(p for p in _LIST_PARAMS if p["name"] not in
                                ("allowWatchBookmarks", "watch"))],
            _body(META + "DeleteOptions"),
        )
    paths[f"{prefix}/{ns}{info.resource}"] = collection

    item: dict[str, Any] = {"parameters": name_params}
    if "get" in verbs:
        item["get"] = _operation(info, "get", f"read{token}{scope}{kind}", gvk,
                                 _responses(info, own, ("200",)), [])
    if "update" in verbs:
        item["put"] = _operation(info, "put", f"replace{token}{scope}{kind}", gvk,
                                 _responses(info, own, ("200", "201")), write, _body(own))
    if "delete" in verbs:
        item["delete"] = _operation(info, "delete", f"delete{token}{scope}{kind}", gvk,
                                    _responses(info, META + "Status", ("200", "202")),
                                    list(_DELETE_PARAMS), _body(META + "DeleteOptions"))
    if "patch" in verbs:
        item["patch"] = _operation(info, "patch", f"patch{token}{scope}{kind}", gvk,
                                   _responses(info, own, ("200", "201")), [*write, _FORCE],
                                   _patch_body(info))
    paths[f"{prefix}/{ns}{info.resource}/{{name}}"] = item

    subresources: list[tuple[str, str, dict[str, str]]] = []
    if info.status:
        subresources.append(("status", own, gvk))
    if info.scale is not None:
        subresources.append(("scale", SCALE, _gvk("autoscaling", "v1", "Scale")))
    for sub, schema, sub_gvk in subresources:
        suffix = sub.title()
        paths[f"{prefix}/{ns}{info.resource}/{{name}}/{sub}"] = {
            "parameters": name_params,
            "get": _operation(info, "get", f"read{token}{scope}{kind}{suffix}", sub_gvk,
                              _responses(info, schema, ("200",)), []),
            "put": _operation(info, "put", f"replace{token}{scope}{kind}{suffix}", sub_gvk,
                              _responses(info, schema, ("200", "201")), write, _body(schema)),
            "patch": _operation(info, "patch", f"patch{token}{scope}{kind}{suffix}", sub_gvk,
                                _responses(info, schema, ("200", "201")), [*write, _FORCE],
                                _patch_body(info)),
        }

    if info.namespaced and "list" in verbs:
        paths[f"{prefix}/{info.resource}"] = {
            "parameters": [*_LIST_PARAMS, _PRETTY],
            "get": _operation(info, "list", f"list{token}{kind}ForAllNamespaces", gvk,
                              _responses(info, lst, ("200",), stream=True), []),
        }
    if "watch" in verbs:
        watch = META + "WatchEvent"
        list_params = [*_LIST_PARAMS, *ns_params, _PRETTY]
        paths[f"{prefix}/watch/{ns}{info.resource}"] = {
            "parameters": list_params,
            "get": _operation(info, "watchlist", f"watch{token}{scope}{kind}List", gvk,
                              _responses(info, watch, ("200",), stream=True), []),
        }
        paths[f"{prefix}/watch/{ns}{info.resource}/{{name}}"] = {
            "parameters": [_path_param("name"), *list_params],
            "get": _operation(info, "watch", f"watch{token}{scope}{kind}", gvk,
                              _responses(info, watch, ("200",), stream=True), []),
        }
        if info.namespaced:
            paths[f"{prefix}/watch/{info.resource}"] = {
                "parameters": [*_LIST_PARAMS, _PRETTY],
                "get": _operation(info, "watchlist", f"watch{token}{kind}ListForAllNamespaces",
                                  gvk, _responses(info, watch, ("200",), stream=True), []),
            }
    return paths


# ---------------------------------------------------------------------------------------------
# documents


def build_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group/version, or None when it serves nothing."""
    infos = sorted(registry.resources_in(group, version), key=lambda i: i.resource)
    if not infos:
        return None
    paths: dict[str, Any] = {}
    schemas = meta_schemas([(group, version)] if group else [("", version)])
    if any(i.scale is not None for i in infos):
        schemas.update(scale_schemas())
    for info in infos:
        paths.update(resource_paths(info))
        schemas[schema_name(info)] = kind_schema(info)
        schemas[schema_name(info, info.list_kind)] = list_schema(info)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


class _Documents:
    __slots__ = ("generation", "bodies", "index")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.bodies: dict[str, tuple[bytes, str]] = {}
        self.index: dict[str, Any] = {"paths": {}}


_CACHE: weakref.WeakKeyDictionary[Registry, _Documents] = weakref.WeakKeyDictionary()


def _documents(registry: Registry) -> _Documents:
    docs = _CACHE.get(registry)
    if docs is not None and docs.generation == registry.generation:
        return docs
    docs = _Documents(registry.generation)
    for group, versions in sorted(registry.group_versions().items()):
        for version in versions:
            document = build_document(registry, group, version)
            if document is None:
                continue
            body = orjson.dumps(document)
            digest = hashlib.sha512(body).hexdigest().upper()
            path = gv_path(group, version)
            docs.bodies[path] = (body, digest)
            docs.index["paths"][path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    _CACHE[registry] = docs
    return docs


def openapi_v3_index(registry: Registry) -> dict[str, Any]:
    """The ``/openapi/v3`` discovery document (do not mutate: it is shared)."""
    return _documents(registry).index


def openapi_v3_document(registry: Registry, path: str) -> tuple[bytes, str] | None:
    """(JSON body, hash) of ``/openapi/v3/<path>`` (path like ``apis/g/v``), or None.

    kube-apiserver answers a request whose ``?hash=`` is stale with a 301 to the current URL and
    sends ``ETag: "<hash>"``; a matching hash may be cached as immutable.
    """
    return _documents(registry).bodies.get(path.strip("/"))
