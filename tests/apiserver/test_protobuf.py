"""Decoding Kubernetes protobuf bodies as kubectl's typed clients send them."""

from __future__ import annotations

import pytest

from shipyard.apimachinery import errors
from shipyard.apiserver import protobuf


def varint(n: int) -> bytes:
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def ld(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def vi(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def entry(key: str, value: bytes) -> bytes:
    return ld(1, key.encode()) + ld(2, value)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = ld(1, api_version.encode()) + ld(2, kind.encode())
    return protobuf.MAGIC + ld(1, type_meta) + ld(2, raw) + ld(3, b"") + ld(4, b"")


def test_configmap_as_kubectl_create_sends_it() -> None:
    meta = ld(1, b"cm") + ld(2, b"") + ld(3, b"default") + ld(8, b"")  # zero creationTimestamp
    meta += ld(11, entry("app", b"web"))
    raw = ld(1, meta) + ld(2, entry("a", b"b")) + ld(3, entry("bin", b"\x00\x01"))
    obj = protobuf.decode(envelope("v1", "ConfigMap", raw))
    assert obj == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default", "labels": {"app": "web"}},
        "data": {"a": "b"}, "binaryData": {"bin": "AAE="},
    }


def test_secret_bytes_become_base64_and_booleans_survive() -> None:
    raw = ld(1, ld(1, b"s")) + ld(2, entry("pw", b"xyz")) + ld(3, b"Opaque") + vi(5, 1)
    obj = protobuf.decode(envelope("v1", "Secret", raw))
    assert obj["data"] == {"pw": "eHl6"}
    assert obj["type"] == "Opaque"
    assert obj["immutable"] is True


def test_namespace_with_finalizers_and_owner_references() -> None:
    owner = ld(5, b"v1") + ld(1, b"ConfigMap") + ld(3, b"o") + ld(4, b"u-1") + vi(6, 1)
    meta = ld(1, b"ns1") + ld(13, owner) + ld(14, b"a/b") + ld(14, b"c/d") + ld(9, vi(1, 60))
    raw = ld(1, meta) + ld(2, ld(1, b"kubernetes"))
    obj = protobuf.decode(envelope("v1", "Namespace", raw))
    assert obj["metadata"]["finalizers"] == ["a/b", "c/d"]
    assert obj["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-1", "controller": True}
    ]
    assert obj["metadata"]["deletionTimestamp"] == "1970-01-01T00:01:00Z"
    assert obj["spec"] == {"finalizers": ["kubernetes"]}


def test_pod_disruption_budget_with_int_or_string_and_selector() -> None:
    selector = ld(1, entry("app", b"web")) + ld(2, ld(1, b"tier") + ld(2, b"In") + ld(3, b"a"))
    percent = vi(1, 1) + ld(3, b"25%")  # IntOrString type 1: a string
    spec = ld(2, selector) + ld(3, percent) + ld(4, b"AlwaysAllow")
    obj = protobuf.decode(envelope("policy/v1", "PodDisruptionBudget",
                                   ld(1, ld(1, b"pdb")) + ld(2, spec)))
    assert obj["spec"] == {
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]},
        "maxUnavailable": "25%", "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    number = vi(1, 0) + vi(2, 2)  # type 0: an integer
    obj = protobuf.decode(envelope("policy/v1", "PodDisruptionBudget", ld(2, ld(1, number))))
    assert obj["spec"] == {"minAvailable": 2}


def test_access_review_as_kubectl_auth_can_i_sends_it() -> None:
    attributes = ld(1, b"default") + ld(2, b"create") + ld(5, b"pods") + ld(7, b"p1")
    obj = protobuf.decode(envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview",
                                   ld(1, b"") + ld(2, ld(1, attributes))))
    assert obj["spec"] == {"resourceAttributes": {
        "namespace": "default", "verb": "create", "resource": "pods", "name": "p1"}}


def test_kinds_without_a_table_are_415() -> None:
    with pytest.raises(errors.UnsupportedMediaType):
        protobuf.decode(envelope("apps/v1", "Deployment", b""))


@pytest.mark.parametrize(
    "body", [b"not-k8s", protobuf.MAGIC + b"\x0a\xff", protobuf.MAGIC + b"\x0f"]
)
def test_garbage_is_400(body: bytes) -> None:
    with pytest.raises(errors.BadRequest):
        protobuf.decode(body)
