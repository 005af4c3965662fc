"""Metadata validation: kube-apiserver's exact causes and messages."""

from __future__ import annotations

import re

import pytest

from shipyard.apimachinery.errors import invalid
from shipyard.apimachinery.validation import (
    generate_name,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    is_valid_path_segment_name,
    validate_annotations,
    validate_finalizers,
    validate_object_meta,
    validate_object_meta_update,
    validate_owner_references,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def test_dns1123_subdomain() -> None:
    assert is_dns1123_subdomain("example.com") == []
    assert is_dns1123_subdomain("Foo") == [SUBDOMAIN_MSG]
    assert is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]


def test_dns1123_label() -> None:
    assert is_dns1123_label("my-name") == []
    assert is_dns1123_label("a.b") == ["must not contain dots"]
    assert is_dns1123_label("-a") == [LABEL_MSG]
    assert is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]


def test_qualified_name() -> None:
    assert is_qualified_name("cluster.x-k8s.io/cluster-name") == []
    assert is_qualified_name("MyName") == []
    assert is_qualified_name("a_") == [QNAME_NAME_MSG]
    assert is_qualified_name("/a") == ["prefix part must be non-empty"]
    assert is_qualified_name("Foo/a") == ["prefix part " + SUBDOMAIN_MSG]
    assert is_qualified_name("a/") == ["name part must be non-empty", QNAME_NAME_MSG]
    assert is_qualified_name("x" * 64) == ["name part must be no more than 63 characters"]
    assert is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert is_qualified_name("a/b/c")[0].endswith(
        "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")


def test_label_value() -> None:
    assert is_valid_label_value("") == []
    assert is_valid_label_value("v1.2_3") == []
    assert is_valid_label_value("-x") == [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
        "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
        "'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    ]


def test_path_segment_names() -> None:
    assert is_valid_path_segment_name("Any_Thing:1") == []
    assert is_valid_path_segment_name("..") == ["may not be '..'"]
    assert is_valid_path_segment_name("a/b%c") == ["may not contain '/'", "may not contain '%'"]
    assert is_valid_path_segment_name(".", prefix=True) == []


def test_generate_name() -> None:
    name = generate_name("machine-")
    assert re.fullmatch(r"machine-[bcdfghjklmnpqrstvwxz2456789]{5}", name)
    assert len(generate_name("x" * 100)) == 63
    assert len({generate_name("a") for _ in range(50)}) > 45


def test_object_meta_valid() -> None:
    meta = {"name": "c1", "namespace": "default", "labels": {"a": "b"},
            "annotations": {"Example.com/Key": "x"}, "finalizers": ["cluster.x-k8s.io/cluster"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u"}]}
    assert validate_object_meta(meta, namespaced=True) == []


def test_object_meta_name_and_namespace_causes() -> None:
    causes = validate_object_meta({"name": "Bad_Name"}, namespaced=True)
    assert causes == [
        {"reason": "FieldValueInvalid", "field": "metadata.name",
         "message": f'Invalid value: "Bad_Name": {SUBDOMAIN_MSG}'},
        {"reason": "FieldValueRequired", "field": "metadata.namespace",
         "message": "Required value"},
    ]
    err = invalid("ConfigMap", "", "Bad_Name", causes)
    assert err.message == (
        f'ConfigMap "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": '
        f"{SUBDOMAIN_MSG}, metadata.namespace: Required value]"
    )


def test_object_meta_missing_name_and_cluster_scoped_namespace() -> None:
    assert validate_object_meta({"namespace": "x"}, namespaced=False) == [
        {"reason": "FieldValueRequired", "field": "metadata.name",
         "message": "Required value: name or generateName is required"},
        {"reason": "FieldValueForbidden", "field": "metadata.namespace",
         "message": "Forbidden: not allowed on this type"},
    ]


def test_generate_name_prefix_may_end_in_dash() -> None:
    meta = {"generateName": "web-", "name": "web-x7k2p", "namespace": "default"}
    assert validate_object_meta(meta, namespaced=True) == []
    causes = validate_object_meta({"generateName": "Web-", "name": "web-abcde"}, namespaced=False)
    assert [c["field"] for c in causes] == ["metadata.generateName"]


def test_name_validators() -> None:
    assert validate_object_meta({"name": "a.b"}, namespaced=False, name_validator="label") == [
        {"reason": "FieldValueInvalid", "field": "metadata.name",
         "message": 'Invalid value: "a.b": must not contain dots'}]
    assert validate_object_meta({"name": "Odd:Name"}, namespaced=False,
                                name_validator="path_segment") == []
    with pytest.raises(ValueError):
        validate_object_meta({"name": "a"}, namespaced=False, name_validator="nope")


def test_labels_and_annotations() -> None:
    causes = validate_object_meta({"name": "a", "labels": {"a_": "ok", "k": "-bad"},
                                   "annotations": {"x/y/z": "v"}}, namespaced=False)
    assert [(c["field"], c["message"].split(":")[1].strip()) for c in causes] == [
        ("metadata.labels", '"a_"'), ("metadata.labels", '"-bad"'),
        ("metadata.annotations", '"x/y/z"')]


def test_annotation_total_size() -> None:
    assert validate_annotations({"a": "x" * (256 * 1024 - 1)}) == []
    assert validate_annotations({"a": "x" * (256 * 1024)}) == [
        {"reason": "FieldValueTooLong", "field": "metadata.annotations",
         "message": "Too long: must have at most 262144 bytes"}]


def test_owner_references() -> None:
    causes = validate_owner_references([{"apiVersion": "", "kind": "", "name": "", "uid": ""}])
    assert causes == [
        {"reason": "FieldValueInvalid", "field": "metadata.ownerReferences.apiVersion",
         "message": 'Invalid value: "": version must not be empty'},
        {"reason": "FieldValueInvalid", "field": "metadata.ownerReferences.kind",
         "message": 'Invalid value: "": must not be empty'},
        {"reason": "FieldValueInvalid", "field": "metadata.ownerReferences.name",
         "message": 'Invalid value: "": must not be empty'},
        {"reason": "FieldValueInvalid", "field": "metadata.ownerReferences.uid",
         "message": 'Invalid value: "": must not be empty'},
    ]
    event = validate_owner_references([{"apiVersion": "v1", "kind": "Event", "name": "e",
                                         "uid": "u"}])
    assert event[0]["message"].endswith("/v1, Kind=Event is disallowed from being an owner")
    two = validate_owner_references([
        {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": True},
        {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": True},
    ])
    assert len(two) == 1
    assert two[0]["message"].endswith(
        'Only one reference can have Controller set to true. Found "true" in references for '
        "A/a and B/b")


def test_finalizers() -> None:
    assert validate_finalizers(["kubernetes", "a.io/b"]) == []
    assert validate_finalizers(["orphan", "foregroundDeletion"]) == [
        {"reason": "FieldValueInvalid", "field": "metadata.finalizers",
         "message": 'Invalid value: []string{"orphan", "foregroundDeletion"}: finalizer orphan '
                    "and foregroundDeletion cannot be both set"}]
    assert validate_finalizers(["a b"])[0]["message"].startswith('Invalid value: "a b": name part')


def test_object_meta_update() -> None:
    old = {"name": "a", "uid": "1", "resourceVersion": "5", "generation": 2,
           "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["f"]}
    new = {"name": "b", "uid": "1", "resourceVersion": "", "generation": 1,
           "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["f", "g"]}
    causes = validate_object_meta_update(new, old)
    assert [(c["field"], c["message"]) for c in causes] == [
        ("metadata.finalizers", "Forbidden: no new finalizers can be added if the object is being "
                                'deleted, found new finalizers []string{"g"}'),
        ("metadata.resourceVersion", 'Invalid value: "": must be specified for an update'),
        ("metadata.generation", "Invalid value: 1: must not be decremented"),
        ("metadata.name", 'Invalid value: "b": field is immutable'),
    ]
