"""The vocabulary built-in kinds are declared in: structural schemas and printer cells.

`builtins` (and `workloadkinds`) write each compiled-in kind's ``openAPIV3Schema`` with these
helpers, transcribing the upstream Go types (k8s.io/api): ``obj_schema`` for a struct (``atomic``
for ``+structType=atomic``), ``list_schema`` with the list's ``x-kubernetes-list-type``, map keys
and strategic-merge-patch strategy, ``map_schema`` for ``map[string]T``, ``kind_schema`` for the
root with apiVersion/kind/metadata. ``meta_of``, ``field_of`` and ``column`` are what printers'
cell functions read objects and declare string columns with.
"""

from __future__ import annotations

from typing import Any

from shipyard.apiserver.resources import PrinterColumn

Schema = dict[str, Any]

# ---------------------------------------------------------------------------------------------
# schemas


def obj_schema(
    props: dict[str, Schema], *, required: tuple[str, ...] = (), atomic: bool = False
) -> Schema:
    schema: Schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    if atomic:
        schema["x-kubernetes-map-type"] = "atomic"
    return schema


def list_schema(
    items: Schema, list_type: str = "atomic", *keys: str, merge: bool = False
) -> Schema:
    schema: Schema = {"type": "array", "items": items, "x-kubernetes-list-type": list_type}
    if keys:
        schema["x-kubernetes-list-map-keys"] = list(keys)
    if merge:
        schema["x-kubernetes-patch-strategy"] = "merge"
        schema["x-kubernetes-patch-merge-key"] = keys[0]
    return schema


def map_schema(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
INT32: Schema = {"type": "integer", "format": "int32"}
INT64: Schema = {"type": "integer", "format": "int64"}
BYTES: Schema = {"type": "string", "format": "byte"}
TIME: Schema = {"type": "string", "format": "date-time"}
MICRO_TIME: Schema = {"type": "string", "format": "date-time"}
QUANTITY: Schema = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, STR]}
METADATA: Schema = {"type": "object"}  # ObjectMeta is validated by the handlers, as for CRDs
OPAQUE: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
STR_LIST: Schema = list_schema(STR)

OBJECT_REFERENCE = obj_schema(
    {k: STR for k in ("apiVersion", "fieldPath", "kind", "name", "namespace", "resourceVersion",
                      "uid")},
    atomic=True,
)
LOCAL_OBJECT_REFERENCE = obj_schema({"name": STR}, atomic=True)


def kind_schema(props: dict[str, Schema], desc: str, required: tuple[str, ...] = ()) -> Schema:
    root = obj_schema(
        {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion defines the versioned schema of this representation of"
                " an object.",
            },
            "kind": {
                "type": "string",
                "description": "Kind is a string value representing the REST resource this object"
                " represents.",
            },
            "metadata": METADATA,
            **props,
        },
        required=required,
    )
    root["description"] = desc
    return root


def conditions_schema(*timestamps: str) -> Schema:
    fields: dict[str, Schema] = {"type": STR, "status": STR, "reason": STR, "message": STR}
    fields.update({t: TIME for t in timestamps})
    return list_schema(obj_schema(fields, required=("type", "status")), "map", "type", merge=True)


# ---------------------------------------------------------------------------------------------
# printer cells

Obj = dict[str, Any]


def meta_of(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def field_of(obj: Obj, *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def column(name: str, description: str, priority: int = 0, fmt: str = "") -> PrinterColumn:
    return PrinterColumn(name, "string", "", format=fmt, description=description,
                         priority=priority)
