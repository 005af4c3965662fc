"""Kubernetes' protobuf encoding, decode side, for the built-in kinds typed clients send.

kubectl's generators (``kubectl create configmap|secret|namespace|serviceaccount|
poddisruptionbudget``) post their
object as ``application/vnd.kubernetes.protobuf`` with no JSON fallback, so the server must read
it. The envelope is the magic ``k8s\\x00`` followed by a ``runtime.Unknown`` whose ``raw`` holds
the object's own message. Messages are described by field-number tables taken from k8s.io/api's
generated.proto; decoding yields the same dict the JSON form would (bytes become base64, Time
becomes RFC 3339). Answers always go out as JSON, which those clients accept too.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from shipyard.apimachinery import errors

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# A field: (json name, kind, repeated). Kinds: "string", "bytes", "bool", "int", a message
# name, "map:string" / "map:bytes" (map<string, string|bytes>), "time", "fieldsv1".
Field = tuple[str, str, bool]
MESSAGES: dict[str, dict[int, Field]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", "rawbytes", False),
                3: ("contentEncoding", "string", False), 4: ("contentType", "string", False)},
    "TypeMeta": {1: ("apiVersion", "string", False), 2: ("kind", "string", False)},
    "ObjectMeta": {
        1: ("name", "string", False), 2: ("generateName", "string", False),
        3: ("namespace", "string", False), 4: ("selfLink", "string", False),
        5: ("uid", "string", False), 6: ("resourceVersion", "string", False),
        7: ("generation", "int", False), 8: ("creationTimestamp", "time", False),
        9: ("deletionTimestamp", "time", False), 10: ("deletionGracePeriodSeconds", "int", False),
        11: ("labels", "map:string", False), 12: ("annotations", "map:string", False),
        13: ("ownerReferences", "OwnerReference", True), 14: ("finalizers", "string", True),
        17: ("managedFields", "ManagedFieldsEntry", True),
    },
    "OwnerReference": {
        5: ("apiVersion", "string", False), 1: ("kind", "string", False),
        3: ("name", "string", False), 4: ("uid", "string", False),
        6: ("controller", "bool", False), 7: ("blockOwnerDeletion", "bool", False),
    },
    "ManagedFieldsEntry": {
        1: ("manager", "string", False), 2: ("operation", "string", False),
        3: ("apiVersion", "string", False), 4: ("time", "time", False),
        6: ("fieldsType", "string", False), 7: ("fieldsV1", "fieldsv1", False),
        8: ("subresource", "string", False),
    },
    "ConfigMap": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:string", False),
                  3: ("binaryData", "map:bytes", False), 4: ("immutable", "bool", False)},
    "Secret": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:bytes", False),
               3: ("type", "string", False), 4: ("stringData", "map:string", False),
               5: ("immutable", "bool", False)},
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False),
                  3: ("status", "NamespaceStatus", False)},
    "NamespaceSpec": {1: ("finalizers", "string", True)},
    "NamespaceStatus": {1: ("phase", "string", False),
                        2: ("conditions", "NamespaceCondition", True)},
    "NamespaceCondition": {1: ("type", "string", False), 2: ("status", "string", False),
                           4: ("lastTransitionTime", "time", False),
                           5: ("reason", "string", False), 6: ("message", "string", False)},
    "ServiceAccount": {1: ("metadata", "ObjectMeta", False),
                       2: ("secrets", "ObjectReference", True),
                       3: ("imagePullSecrets", "LocalObjectReference", True),
                       4: ("automountServiceAccountToken", "bool", False)},
    "ObjectReference": {1: ("kind", "string", False), 2: ("namespace", "string", False),
                        3: ("name", "string", False), 4: ("uid", "string", False),
                        5: ("apiVersion", "string", False),
                        6: ("resourceVersion", "string", False),
                        7: ("fieldPath", "string", False)},
    "LocalObjectReference": {1: ("name", "string", False)},
    "DeleteOptions": {1: ("gracePeriodSeconds", "int", False),
                      2: ("preconditions", "Preconditions", False),
                      3: ("orphanDependents", "bool", False),
                      4: ("propagationPolicy", "string", False), 5: ("dryRun", "string", True)},
    "Preconditions": {1: ("uid", "string", False), 2: ("resourceVersion", "string", False)},
    # policy/v1 (`kubectl create poddisruptionbudget`); status is the server's, never sent.
    "PodDisruptionBudget": {1: ("metadata", "ObjectMeta", False),
                            2: ("spec", "PodDisruptionBudgetSpec", False)},
    "PodDisruptionBudgetSpec": {1: ("minAvailable", "intorstring", False),
                                2: ("selector", "LabelSelector", False),
                                3: ("maxUnavailable", "intorstring", False),
                                4: ("unhealthyPodEvictionPolicy", "string", False)},
    "LabelSelector": {1: ("matchLabels", "map:string", False),
                      2: ("matchExpressions", "LabelSelectorRequirement", True)},
    "LabelSelectorRequirement": {1: ("key", "string", False), 2: ("operator", "string", False),
                                 3: ("values", "string", True)},
    "IntOrString": {1: ("type", "int", False), 2: ("intVal", "int", False),
                    3: ("strVal", "string", False)},
    # authorization.k8s.io/v1 and authentication.k8s.io/v1 (`kubectl auth can-i|whoami`).
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta", False),
                                2: ("spec", "SelfSubjectAccessReviewSpec", False)},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", False),
                                    2: ("nonResourceAttributes", "NonResourceAttributes",
                                        False)},
    "ResourceAttributes": {1: ("namespace", "string", False), 2: ("verb", "string", False),
                           3: ("group", "string", False), 4: ("version", "string", False),
                           5: ("resource", "string", False), 6: ("subresource", "string", False),
                           7: ("name", "string", False)},
    "NonResourceAttributes": {1: ("path", "string", False), 2: ("verb", "string", False)},
    "SelfSubjectRulesReview": {1: ("metadata", "ObjectMeta", False),
                               2: ("spec", "SelfSubjectRulesReviewSpec", False)},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string", False)},
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta", False)},
}

# Kinds a client may send us in protobuf, by kind name.
DECODABLE = frozenset({"ConfigMap", "Secret", "Namespace", "ServiceAccount", "DeleteOptions",
                       "PodDisruptionBudget", "SelfSubjectAccessReview",
                       "SelfSubjectRulesReview", "SelfSubjectReview"})


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.data) or shift > 63:
                raise ValueError("truncated varint")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def chunk(self) -> bytes:
        size = self.varint()
        end = self.pos + size
        if end > len(self.data):
            raise ValueError("truncated length-delimited field")
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def skip(self, wire: int) -> None:
        if wire == 0:
            self.varint()
        elif wire == 1:
            self.pos += 8
        elif wire == 2:
            self.chunk()
        elif wire == 5:
            self.pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _time(data: bytes) -> str | None:
    fields = decode_message(data, {1: ("seconds", "int", False), 2: ("nanos", "int", False)})
    if not fields.get("seconds") and not fields.get("nanos"):
        return None  # the zero Time, which JSON spells null
    moment = datetime.fromtimestamp(int(fields.get("seconds", 0)), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _map_entry(data: bytes, value_kind: str) -> tuple[str, Any]:
    reader = _Reader(data)
    key, value = "", b"" if value_kind == "bytes" else ""
    while reader.pos < len(data):
        tag = reader.varint()
        number, wire = tag >> 3, tag & 7
        if wire != 2:
            reader.skip(wire)
            continue
        raw = reader.chunk()
        if number == 1:
            key = raw.decode()
        elif number == 2:
            value = raw if value_kind == "bytes" else raw.decode()
    if isinstance(value, bytes):
        return key, base64.b64encode(value).decode()
    return key, value


_SCALARS: dict[str, Callable[[int], Any]] = {"bool": bool, "int": _signed}


def decode_message(data: bytes, fields: dict[int, Field]) -> dict[str, Any]:
    reader = _Reader(data)
    out: dict[str, Any] = {}
    while reader.pos < len(data):
        tag = reader.varint()
        number, wire = tag >> 3, tag & 7
        spec = fields.get(number)
        if spec is None:
            reader.skip(wire)
            continue
        name, kind, repeated = spec
        value: Any
        if kind in _SCALARS:
            if wire != 0:
                raise ValueError(f"field {name}: expected a varint")
            value = _SCALARS[kind](reader.varint())
        else:
            if wire != 2:
                raise ValueError(f"field {name}: expected a length-delimited value")
            raw = reader.chunk()
            if kind == "string":
                value = raw.decode()
            elif kind == "rawbytes":
                value = raw
            elif kind == "bytes":
                value = base64.b64encode(raw).decode()
            elif kind == "time":
                value = _time(raw)
            elif kind == "intorstring":  # type 0: intVal, type 1: strVal
                parts = decode_message(raw, MESSAGES["IntOrString"])
                value = parts.get("strVal", "") if parts.get("type") == 1 else \
                    parts.get("intVal", 0)
            elif kind == "fieldsv1":
                inner = decode_message(raw, {1: ("Raw", "rawbytes", False)})
                value = orjson.loads(inner.get("Raw") or b"{}")
            elif kind.startswith("map:"):
                key, item = _map_entry(raw, kind[4:])
                out.setdefault(name, {})[key] = item
                continue
            else:
                value = decode_message(raw, MESSAGES[kind])
        if repeated:
            out.setdefault(name, []).append(value)
        elif value is not None and value != "" and not (name == "generation" and value == 0):
            # Go always encodes non-pointer fields; their JSON form omits the empty ones.
            out[name] = value
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf request body as the JSON object it stands for; 415 for kinds we cannot read,
    400 when the bytes are not what they claim."""
    if not body.startswith(MAGIC):
        raise errors.BadRequest("protobuf body does not start with the Kubernetes magic number")
    try:
        unknown = decode_message(body[len(MAGIC):], MESSAGES["Unknown"])
        type_meta = unknown.get("typeMeta") or {}
        kind = str(type_meta.get("kind", ""))
        if kind not in DECODABLE:
            raise errors.UnsupportedMediaType(
                f"the server cannot decode {kind or 'this object'} from protobuf - accepted "
                "media types include: application/json, application/yaml"
            )
        obj = decode_message(unknown.get("raw") or b"", MESSAGES[kind])
    except (ValueError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise errors.BadRequest(f"error decoding protobuf request body: {exc}") from None
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}
