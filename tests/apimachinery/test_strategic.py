"""Strategic merge patch, driven by the patches kubectl and kubelet-like agents really send."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.apimachinery.errors import BadRequest, Invalid, StatusError
from shipyard.apimachinery.patching import apply_merge_patch
from shipyard.apimachinery.strategic import (
    OBJECT_META,
    PatchMeta,
    apply_strategic_merge_patch,
    patch_meta_for,
    patch_meta_from_schema,
)


def meta(kind: str, group: str = "") -> PatchMeta:
    found = patch_meta_for(group, kind)
    assert found is not None
    return found


CM = meta("ConfigMap")


def owner(uid: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster", "name": f"c{uid}",
            "uid": uid, **extra}


def test_table_covers_served_builtins_and_not_custom_resources() -> None:
    for group, kind in [("", "Namespace"), ("", "Secret"), ("", "ConfigMap"), ("", "Event"),
                        ("", "Node"), ("", "ServiceAccount"), ("coordination.k8s.io", "Lease"),
                        ("events.k8s.io", "Event")]:
        assert patch_meta_for(group, kind) is not None
    assert patch_meta_for("cluster.x-k8s.io", "Cluster") is None


def test_kubectl_label_and_unlabel() -> None:
    live: dict[str, Any] = {"metadata": {"name": "cm", "labels": {"a": "1", "b": "2"}},
                            "data": {"k": "v"}}
    out = apply_strategic_merge_patch(live, {"metadata": {"labels": {"c": "3"}}}, CM)
    assert out["metadata"]["labels"] == {"a": "1", "b": "2", "c": "3"}
    out = apply_strategic_merge_patch(out, {"metadata": {"labels": {"a": None}}}, CM)
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert live["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_kubectl_apply_configmap_data() -> None:
    live = {"metadata": {"name": "cm", "annotations": {"other": "x"}},
            "data": {"gone": "1", "kept": "2", "changed": "3"}}
    last_applied = {"kubectl.kubernetes.io/last-applied-configuration": "{}"}
    patch = {"data": {"gone": None, "changed": "4", "new": "5"},
             "metadata": {"annotations": last_applied}}
    out = apply_strategic_merge_patch(live, patch, CM)
    assert out["data"] == {"kept": "2", "changed": "4", "new": "5"}
    assert out["metadata"]["annotations"] == {
        "other": "x", "kubectl.kubernetes.io/last-applied-configuration": "{}"}


def test_finalizers_are_a_merged_primitive_list() -> None:
    live = {"metadata": {"finalizers": ["a", "b"]}}
    out = apply_strategic_merge_patch(live, {"metadata": {"finalizers": ["b", "c"]}}, CM)
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]
    out = apply_strategic_merge_patch(live, {"metadata": {"finalizers": ["c"]}}, CM)
    assert out["metadata"]["finalizers"] == ["c", "a", "b"]


def test_kubectl_apply_three_way_patch_on_finalizers() -> None:
    # last-applied [a, b], new manifest [b, c], live [x, a, b] (x added by a controller).
    live = {"metadata": {"finalizers": ["x", "a", "b"]}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["b", "c"],
                          "$deleteFromPrimitiveList/finalizers": ["a"],
                          "finalizers": ["c"]}}
    out = apply_strategic_merge_patch(live, patch, CM)
    assert out["metadata"] == {"finalizers": ["x", "b", "c"]}


def test_owner_references_merge_by_uid_in_set_element_order() -> None:
    live = {"metadata": {"ownerReferences": [owner("1"), owner("2")]}}
    patch = {"metadata": {
        "$setElementOrder/ownerReferences": [{"uid": "2"}, {"uid": "1"}],
        "ownerReferences": [{"uid": "2", "controller": True}],
    }}
    out = apply_strategic_merge_patch(live, patch, CM)
    assert out["metadata"]["ownerReferences"] == [owner("2", controller=True), owner("1")]


def test_owner_reference_added_appends_and_patch_delete_removes() -> None:
    live = {"metadata": {"ownerReferences": [owner("1"), owner("2")]}}
    out = apply_strategic_merge_patch(
        live, {"metadata": {"ownerReferences": [owner("3"), {"uid": "1", "$patch": "delete"}]}}, CM)
    # Without $setElementOrder kube puts items the server has never seen first.
    assert [r["uid"] for r in out["metadata"]["ownerReferences"]] == ["3", "2"]


def test_list_replace_directive() -> None:
    live = {"metadata": {"ownerReferences": [owner("1"), owner("2")]}}
    out = apply_strategic_merge_patch(
        live, {"metadata": {"ownerReferences": [{"$patch": "replace"}, owner("9")]}}, CM)
    assert out["metadata"]["ownerReferences"] == [owner("9")]


def test_map_directives_replace_and_delete() -> None:
    live = {"metadata": {"labels": {"a": "1"}, "annotations": {"b": "2"}}}
    out = apply_strategic_merge_patch(live, {"metadata": {
        "labels": {"$patch": "replace", "z": "26"},
        "annotations": {"$patch": "delete"},
    }}, CM)
    assert out["metadata"] == {"labels": {"z": "26"}, "annotations": {}}
    assert apply_strategic_merge_patch(live, {"$patch": "delete"}, CM) == {}


def test_retain_keys_drops_unlisted_keys() -> None:
    live = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    out = apply_strategic_merge_patch(live, patch, PatchMeta())
    assert out == {"spec": {"strategy": {"type": "Recreate"}}}


def test_node_status_heartbeat_merges_conditions_and_addresses_by_type() -> None:
    node = meta("Node")
    live = {"status": {
        "conditions": [{"type": "MemoryPressure", "status": "False"},
                       {"type": "Ready", "status": "False", "lastHeartbeatTime": "t1"}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
        "images": [{"names": ["a"]}],
    }, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}], "podCIDRs": ["10.1.0.0/24"]}}
    patch = {
        "status": {
            "$setElementOrder/conditions": [{"type": "MemoryPressure"}, {"type": "Ready"}],
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "t2"}],
            "addresses": [{"type": "Hostname", "address": "n1"}],
            "images": [{"names": ["b"]}],
        },
        "spec": {"taints": [{"key": "other", "effect": "NoExecute"}], "podCIDRs": ["fd00::/64"]},
    }
    out = apply_strategic_merge_patch(live, patch, node)
    assert out["status"]["conditions"] == [
        {"type": "MemoryPressure", "status": "False"},
        {"type": "Ready", "status": "True", "lastHeartbeatTime": "t2"},
    ]
    assert out["status"]["addresses"] == [{"type": "Hostname", "address": "n1"},
                                          {"type": "InternalIP", "address": "10.0.0.1"}]
    assert out["status"]["images"] == [{"names": ["b"]}]  # no patchStrategy: replaced
    assert out["spec"]["taints"] == [{"key": "other", "effect": "NoExecute"}]  # replaced
    assert out["spec"]["podCIDRs"] == ["fd00::/64", "10.1.0.0/24"]  # merged, new first


def test_service_account_secrets_merge_by_name_pull_secrets_replace() -> None:
    sa = meta("ServiceAccount")
    live = {"secrets": [{"name": "a"}], "imagePullSecrets": [{"name": "p"}]}
    out = apply_strategic_merge_patch(
        live, {"secrets": [{"name": "b"}], "imagePullSecrets": [{"name": "q"}]}, sa)
    assert out == {"secrets": [{"name": "b"}, {"name": "a"}], "imagePullSecrets": [{"name": "q"}]}


def test_new_values_drop_nulls_and_directives() -> None:
    out = apply_strategic_merge_patch({}, {"metadata": {
        "labels": {"a": "1", "b": None},
        "$setElementOrder/finalizers": ["f"],
        "finalizers": ["f"],
    }}, CM)
    assert out == {"metadata": {"labels": {"a": "1"}, "finalizers": ["f"]}}


def test_patch_and_doc_are_not_mutated() -> None:
    live = {"metadata": {"finalizers": ["a"], "labels": {"x": "1"}}}
    patch = {"metadata": {"$setElementOrder/finalizers": ["b", "a"], "finalizers": ["b"],
                          "labels": {"$patch": "replace"}}}
    live_before, patch_before = copy.deepcopy(live), copy.deepcopy(patch)
    out = apply_strategic_merge_patch(live, patch, CM)
    assert out["metadata"] == {"finalizers": ["b", "a"], "labels": {}}
    assert (live, patch) == (live_before, patch_before)


@pytest.mark.parametrize(
    ("patch", "error", "code", "message"),
    [
        ([], BadRequest, 400,
         "json: cannot unmarshal array into Go value of type map[string]interface {}"),
        ({"metadata": {"$retainKeys": "name"}}, BadRequest, 400,
         "invalid patch format of retainKeys"),
        ({"metadata": {"$setElementOrder/finalizers": "a"}}, BadRequest, 400,
         "invalid patch format of setElementOrder list"),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, BadRequest, 400,
         "invalid patch format of primitive list"),
        ({"metadata": {"$retainKeys": ["name"], "labels": {}}}, Invalid, 422,
         "the server rejected our request due to an error in our request"),
        ({"metadata": {"finalizers": [["a"]]}}, Invalid, 422,
         "the server rejected our request due to an error in our request"),
        ({"metadata": {"ownerReferences": [{"name": "x"}]}}, StatusError, 500,
         "map: map[name:x] does not contain declared merge key: uid"),
        ({"metadata": {"labels": {"$patch": "bogus"}}}, StatusError, 500,
         "unknown patch type: bogus in map: map[$patch:bogus]"),
    ],
)
def test_errors_map_to_kube_codes(
    patch: Any, error: type[StatusError], code: int, message: str
) -> None:
    live = {"metadata": {"name": "cm", "finalizers": ["z"], "ownerReferences": [owner("1")]}}
    with pytest.raises(error) as info:
        apply_strategic_merge_patch(live, patch, CM)
    assert info.value.code == code
    assert info.value.message == message


_keys = st.text(alphabet="abc", min_size=1, max_size=2)
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(alphabet="xy", max_size=2),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_keys, children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(doc=st.dictionaries(_keys, _values, max_size=3),
       patch=st.dictionaries(_keys, _values, max_size=3))
def test_without_list_strategies_it_is_a_json_merge_patch(
    doc: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert apply_strategic_merge_patch(doc, patch, PatchMeta()) == apply_merge_patch(doc, patch)


def test_kinds_outside_the_table_take_their_patch_metadata_from_the_schema() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "containers": {"type": "array", "x-kubernetes-patch-strategy": "merge",
                       "x-kubernetes-patch-merge-key": "name",
                       "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "volumes": {"type": "array", "x-kubernetes-patch-strategy": "merge,retainKeys",
                    "x-kubernetes-patch-merge-key": "name", "items": {"type": "object"}},
        "args": {"type": "array", "items": {"type": "string"}},
    }}}}
    derived = patch_meta_for("", "Pod", schema)
    assert derived is not None and derived.child("metadata") == OBJECT_META
    spec = derived.child("spec")
    assert spec.child("containers").merges_list and \
        spec.child("containers").merge_key == "name"
    assert spec.child("volumes").strategy == "merge,retainKeys"
    assert not spec.child("args").merges_list
    live = {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "a", "image": "x", "tty": True}, {"name": "b", "image": "y"}],
        "args": ["1", "2"]}}
    patched = apply_strategic_merge_patch(live, {"spec": {
        "containers": [{"name": "a", "image": "x2"}], "args": ["3"]}}, derived)
    assert patched["spec"] == {"containers": [{"name": "a", "image": "x2", "tty": True},
                                              {"name": "b", "image": "y"}], "args": ["3"]}
    assert patch_meta_from_schema({}) == PatchMeta()
    assert patch_meta_for("cluster.x-k8s.io", "Cluster") is None  # no schema: not built in
