"""Request bodies in, as kube-apiserver accepts them: JSON, or YAML for the same document.

YAML is loaded with the C loader and without the timestamp resolver, so an unquoted
``2024-01-01T00:00:00Z`` stays the string Kubernetes means rather than becoming a datetime.
Nesting is capped: a hostile document gets 400, never a RecursionError in the server.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from shipyard.apimachinery import errors
from shipyard.apiserver import protobuf

MAX_DEPTH = 1000  # orjson stops at 1024; YAML is held to the same bound


class _Loader(yaml.CSafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}


def _depth_ok(text: bytes) -> bool:
    depth = 0
    for ch in text:
        if ch in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in (0x5D, 0x7D):
            depth -= 1
    return True


def decode(body: bytes, content_type: str) -> Any:
    """Decode a request body; 400 BadRequest with the parser's reason when it is malformed."""
    if content_type == protobuf.CONTENT_TYPE:
        return protobuf.decode(body)
    if not body.strip():
        raise errors.BadRequest("the body of the request was in an unknown format - "
                                "accepted media types include: application/json, "
                                "application/yaml")
    if content_type.endswith("yaml") and body.lstrip()[:1] not in (b"{", b"["):
        return _decode_yaml(body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if content_type.endswith("yaml"):
            return _decode_yaml(body)
        raise errors.BadRequest(f"error decoding request body: {exc}") from None


def _decode_yaml(body: bytes) -> Any:
    if not _depth_ok(body):
        raise errors.BadRequest("error converting YAML to JSON: document nested too deeply")
    try:
        docs = list(yaml.load_all(body, Loader=_Loader))
    except yaml.YAMLError as exc:
        raise errors.BadRequest(f"error converting YAML to JSON: {exc}") from None
    except RecursionError:
        raise errors.BadRequest(
            "error converting YAML to JSON: document nested too deeply"
        ) from None
    docs = [d for d in docs if d is not None]
    if len(docs) != 1:
        raise errors.BadRequest("error converting YAML to JSON: expected exactly one document")
    try:
        orjson.dumps(docs[0])
    except TypeError as exc:
        raise errors.BadRequest(f"error converting YAML to JSON: {exc}") from None
    return docs[0]


def decode_object(body: bytes, content_type: str, kind: str = "") -> dict[str, Any]:
    """Decode a body that must be one object (of ``kind``, named in kube's empty-body error)."""
    if kind and not body.strip():
        raise errors.BadRequest(
            f"the object provided is unrecognized (must be of type {kind}): couldn't get "
            "version/kind; json parse error: unexpected end of JSON input (<empty>)"
        )
    obj = decode(body, content_type)
    if not isinstance(obj, dict):
        raise errors.BadRequest(
            "Object 'Kind' is missing in '" + body[:80].decode("utf-8", "replace") + "'"
        )
    return obj


def encode_yaml(obj: Any) -> bytes:
    return yaml.dump(obj, Dumper=yaml.CSafeDumper, sort_keys=False).encode()
