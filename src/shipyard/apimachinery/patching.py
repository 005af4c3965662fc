"""JSON Patch (RFC 6902) and JSON merge patch (RFC 7386), with kube-apiserver's error codes.

kopf guards its writes with a JSON Patch `test` on /metadata/resourceVersion and relies on the
422 a failed test gets; kubectl and controllers send merge patches all day. The codes mirror
`apiserver/pkg/endpoints/handlers/patch.go`:

* a JSON Patch body that is not an array of objects        -> 400 BadRequest
* more than 10000 operations                                -> 413 RequestEntityTooLarge
* any operation failing on the document (test, bad path, unknown op)
                                                            -> 422 Invalid, with the generic
  message "the server rejected our request due to an error in our request" (kube drops the
  detail; clients only see the code).

Merge patches cannot fail on a decoded JSON value: RFC 7386 defines a result for any pair. None
of these functions mutates its inputs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jsonpatch

from shipyard.apimachinery.errors import BadRequest, Invalid, RequestEntityTooLarge

__all__ = [
    "MAX_JSON_PATCH_OPERATIONS",
    "PATCH_REJECTED_MESSAGE",
    "apply_json_patch",
    "apply_merge_patch",
    "create_merge_patch",
]

MAX_JSON_PATCH_OPERATIONS = 10000
PATCH_REJECTED_MESSAGE = "the server rejected our request due to an error in our request"

_GO_TYPES = {dict: "object", list: "array", str: "string", bool: "bool", int: "number",
             float: "number", type(None): "null"}


def _go_json_type(value: Any) -> str:
    return _GO_TYPES.get(type(value), "value")


def apply_json_patch(doc: Any, patch_ops: Any, *, strict: bool = True) -> Any:
    """Apply RFC 6902 operations to a copy of `doc` and return it.

    `strict` picks the 400 wording: kube decodes the body into its own op type first when
    fieldValidation is Strict or Warn (what kubectl sends), otherwise straight into the patch.
    """
    target = "[]handlers.jsonPatchOp" if strict else "jsonpatch.Patch"
    prefix = "error decoding patch: " if strict else ""
    if not isinstance(patch_ops, list):
        raise BadRequest(
            f"{prefix}json: cannot unmarshal {_go_json_type(patch_ops)} into Go value of type "
            f"{target}"
        )
    for op in patch_ops:
        if not isinstance(op, dict):
            element = "handlers.jsonPatchOp" if strict else "jsonpatch.Operation"
            raise BadRequest(
                f"{prefix}json: cannot unmarshal {_go_json_type(op)} into Go value of type "
                f"{element}"
            )
    if len(patch_ops) > MAX_JSON_PATCH_OPERATIONS:
        raise RequestEntityTooLarge(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(patch_ops)}"
        )
    try:
        patch = jsonpatch.JsonPatch(copy.deepcopy(patch_ops))
        return patch.apply(doc, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, IndexError,
            TypeError, ValueError) as e:
        raise Invalid(PATCH_REJECTED_MESSAGE) from e


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result: dict[str, Any] = dict(doc) if isinstance(doc, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            result[key] = apply_merge_patch(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    # Untouched members are shared with `doc`; copy them so the result is independent.
    for key in result.keys() - patch.keys():
        result[key] = copy.deepcopy(result[key])
    return result


def create_merge_patch(original: Any, modified: Any) -> Any:
    """The merge patch turning `original` into `modified` (nulls in `modified` can't survive)."""
    if not isinstance(original, Mapping) or not isinstance(modified, Mapping):
        return copy.deepcopy(modified)
    patch: dict[str, Any] = {}
    for key in original.keys() - modified.keys():
        patch[key] = None
    for key, value in modified.items():
        if key not in original:
            patch[key] = copy.deepcopy(value)
            continue
        old = original[key]
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            sub = create_merge_patch(old, value)
            if sub:
                patch[key] = sub
        elif not _json_equal(old, value):
            patch[key] = copy.deepcopy(value)
    return patch


def _json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values, where True is not 1 and 1 is 1.0 (as in JSON numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)
