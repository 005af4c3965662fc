"""The JSONPath subset used by printer columns and the scale subresource."""

from __future__ import annotations

import pytest

from shipyard.apimachinery.jsonpath import JSONPathError, evaluate, get_path, parse, set_path

OBJ = {
    "metadata": {"name": "md", "labels": {"foo": "bar", "app.kubernetes.io/name": "x"}},
    "spec": {"replicas": 3, "items": [{"name": "a"}, {"name": "b"}], "paused": False},
    "status": {"conditions": [
        {"type": "Ready", "status": "True", "priority": 2},
        {"type": "Available", "status": "False", "priority": 5},
    ]},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".spec.replicas", [3]),
        (".spec.paused", [False]),
        (".metadata.labels.foo", ["bar"]),
        (r".metadata.labels.app\.kubernetes\.io/name", ["x"]),
        (".metadata.labels['app.kubernetes.io/name']", ["x"]),
        (".spec.items[0].name", ["a"]),
        (".spec.items[-1].name", ["b"]),
        (".spec.items[5].name", []),
        (".spec.items[*].name", ["a", "b"]),
        (".spec.items[0:1].name", ["a"]),
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type=='Available')].status", ["False"]),
        ('.status.conditions[?(@.type!="Ready")].type', ["Available"]),
        (".status.conditions[?(@.priority>3)].type", ["Available"]),
        (".status.conditions[?(@.priority<=2)].type", ["Ready"]),
        (".status.conditions[?(@.missing)].type", []),
        (".status.conditions[?(@.status)].type", ["Ready", "Available"]),
        (".status.missing.deeper", []),
        ("{.spec.replicas}", [3]),
        ("$.spec.replicas", [3]),
        (".metadata.labels.*", ["bar", "x"]),
    ],
)
def test_evaluate(path: str, expected: list[object]) -> None:
    assert evaluate(OBJ, path) == expected


def test_get_path() -> None:
    assert get_path(OBJ, ".spec.replicas") == 3
    assert get_path(OBJ, ".status.replicas") is None


def test_set_path_creates_parents() -> None:
    obj: dict[str, object] = {"spec": {"replicas": 1}}
    set_path(obj, ".spec.replicas", 5)
    set_path(obj, ".status.replicas", 2)
    assert obj == {"spec": {"replicas": 5}, "status": {"replicas": 2}}


@pytest.mark.parametrize("path", [".spec[", ".a..b", "spec", ".a[x]", ".a[?(@.b ~ 1)]"])
def test_bad_paths(path: str) -> None:
    with pytest.raises(JSONPathError):
        parse(path)


def test_set_path_rejects_non_field_paths() -> None:
    with pytest.raises(JSONPathError):
        set_path({}, ".spec.items[0]", 1)


def test_escaped_dots_in_a_quoted_name_are_literal() -> None:
    """CRD printer columns name labels as ``labels['cluster\\.x-k8s\\.io/cluster-name']``;
    kube-apiserver 1.33 prints the label's value for it."""
    obj = {"metadata": {"labels": {"cluster.x-k8s.io/cluster-name": "c"}}}
    assert evaluate(obj, ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']") == ["c"]
    assert evaluate(obj, '.metadata.labels["cluster.x-k8s.io/cluster-name"]') == ["c"]
