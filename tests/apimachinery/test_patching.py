"""JSON Patch and JSON merge patch: results, immutability of inputs, kube's error codes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.apimachinery.errors import BadRequest, Invalid, RequestEntityTooLarge
from shipyard.apimachinery.patching import (
    PATCH_REJECTED_MESSAGE,
    apply_json_patch,
    apply_merge_patch,
    create_merge_patch,
)

DOC = {"metadata": {"name": "a", "resourceVersion": "7", "labels": {"x": "1"}},
       "spec": {"items": [1, 2]}}


def test_json_patch_applies_and_leaves_input_alone() -> None:
    before = copy.deepcopy(DOC)
    out = apply_json_patch(DOC, [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
        {"op": "add", "path": "/metadata/labels/y", "value": "2"},
        {"op": "remove", "path": "/spec/items/0"},
        {"op": "replace", "path": "/metadata/name", "value": "b"},
    ])
    assert out["metadata"] == {"name": "b", "resourceVersion": "7", "labels": {"x": "1", "y": "2"}}
    assert out["spec"]["items"] == [2]
    assert DOC == before


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/metadata/resourceVersion", "value": "6"}],  # kopf's guard
        [{"op": "remove", "path": "/spec/affinity"}],
        [{"op": "frobnicate", "path": "/spec"}],
        [{"op": "add", "path": "/no/such/parent", "value": 1}],
        [{"path": "/spec"}],
    ],
)
def test_json_patch_failures_are_generic_422(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(Invalid) as info:
        apply_json_patch(DOC, ops)
    status = info.value.status()
    assert (status["code"], status["reason"]) == (422, "Invalid")
    assert status["message"] == PATCH_REJECTED_MESSAGE


def test_json_patch_body_not_an_array_is_400() -> None:
    with pytest.raises(BadRequest) as info:
        apply_json_patch(DOC, {"op": "add"})
    assert info.value.message == (
        "error decoding patch: json: cannot unmarshal object into Go value of type "
        "[]handlers.jsonPatchOp"
    )
    with pytest.raises(BadRequest, match="Go value of type jsonpatch.Patch"):
        apply_json_patch(DOC, "x", strict=False)
    with pytest.raises(BadRequest, match="cannot unmarshal string into Go value"):
        apply_json_patch(DOC, ["x"])


def test_json_patch_operation_limit_is_413() -> None:
    ops = [{"op": "test", "path": "/metadata/name", "value": "a"}] * 10001
    with pytest.raises(RequestEntityTooLarge, match="maximum operations in a JSON patch is 10000"):
        apply_json_patch(DOC, ops)


def test_merge_patch_rfc7386_examples() -> None:
    assert apply_merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert apply_merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert apply_merge_patch({"a": "b"}, {"a": None}) == {}
    assert apply_merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert apply_merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert apply_merge_patch({"a": "c"}, {"a": ["b"]}) == {"a": ["b"]}
    assert apply_merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert apply_merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert apply_merge_patch(["a", "b"], ["c", "d"]) == ["c", "d"]
    assert apply_merge_patch({"a": "b"}, ["c"]) == ["c"]
    assert apply_merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert apply_merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert apply_merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


def test_merge_patch_does_not_mutate_or_alias_inputs() -> None:
    doc = {"keep": {"deep": [1]}, "change": {"x": 1}}
    patch = {"change": {"y": [2]}, "new": {"z": 3}}
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    out = apply_merge_patch(doc, patch)
    out["keep"]["deep"].append(9)
    out["change"]["y"].append(9)
    out["new"]["z"] = 0
    assert doc == doc_before
    assert patch == patch_before


def test_create_merge_patch() -> None:
    original = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1], "f": True}
    modified = {"a": 1, "b": {"c": 2}, "e": [1, 2], "f": 1, "g": {"h": None}}
    patch = create_merge_patch(original, modified)
    assert patch == {"b": {"d": None}, "e": [1, 2], "f": 1, "g": {"h": None}}
    assert create_merge_patch(original, original) == {}


json_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=4)
keys = st.text(alphabet="abcde", min_size=1, max_size=2)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)
no_null_scalars = st.booleans() | st.integers(-1000, 1000) | st.text(max_size=4)
no_null_values = st.recursive(
    no_null_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(a=json_values, b=no_null_values)
def test_merge_of_diff_reproduces_target(a: Any, b: Any) -> None:
    a_before, b_before = copy.deepcopy(a), copy.deepcopy(b)
    assert apply_merge_patch(a, create_merge_patch(a, b)) == b
    assert (a, b) == (a_before, b_before)


@settings(max_examples=200, deadline=None)
@given(doc=st.dictionaries(keys, json_values, max_size=4),
       patch=st.dictionaries(keys, json_values, max_size=4))
def test_merge_patch_is_idempotent(doc: dict[str, Any], patch: dict[str, Any]) -> None:
    once = apply_merge_patch(doc, patch)
    assert apply_merge_patch(once, patch) == once
