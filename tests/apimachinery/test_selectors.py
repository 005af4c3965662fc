"""Label and field selectors: parse, match and fail like kube-apiserver."""

from __future__ import annotations

import pytest

from shipyard.apimachinery.errors import BadRequest
from shipyard.apimachinery.selectors import (
    field_value,
    label_selector_from_dict,
    label_selector_to_string,
    parse_field_selector,
    parse_label_selector,
)

QNAME_DETAIL = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (x, y)", {"a": "y"}, True),
        ("a in (x,y)", {}, False),
        ("a notin (x,y)", {}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a", {"a": ""}, True),
        ("!a", {"a": ""}, False),
        ("!a", {"b": "1"}, True),
        ("n>5", {"n": "6"}, True),
        ("n>5", {"n": "5"}, False),
        ("n<5", {"n": "-3"}, True),
        ("n<5", {"n": "x"}, False),
        ("n<5", {}, False),
        ("a=b,c", {"a": "b", "c": "1"}, True),
        ("a=b, c", {"a": "b"}, False),
        ("a in (in),x notin (notin)", {"a": "in"}, True),
        ("cluster.x-k8s.io/cluster-name=c1", {"cluster.x-k8s.io/cluster-name": "c1"}, True),
        ("a=", {"a": ""}, True),
        ("a in (,x)", {"a": ""}, True),
    ],
)
def test_label_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_label_selector_string_is_sorted_and_canonical() -> None:
    sel = parse_label_selector("z in (b,a),!y,  a==1, n>3")
    assert str(sel) == "a==1,n>3,!y,z in (a,b)"
    assert not sel.empty
    assert parse_label_selector("").empty
    assert parse_label_selector("   ").empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a_=b", f'unable to parse requirement: <nil>: Invalid value: "a_": {QNAME_DETAIL}'),
        (
            "x>a",
            'unable to parse requirement: values[0]: Invalid value: "a": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "a=b c",
            "found 'c', expected: ',' or 'end of string'",
        ),
    ],
)
def test_label_selector_errors_are_bad_requests_with_kube_wording(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_label_selector(text)
    assert info.value.message == message
    assert info.value.status()["code"] == 400


def test_label_selector_bad_value_names_key_in_path() -> None:
    with pytest.raises(BadRequest) as info:
        parse_label_selector("a=b_")
    assert info.value.message.startswith(
        'unable to parse requirement: values[0][a]: Invalid value: "b_": a valid label must be'
    )


def test_label_selector_from_dict() -> None:
    sel = label_selector_from_dict({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "Exists"},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
        ],
    })
    assert sel.matches({"app": "web", "tier": "fe", "zone": "a"})
    assert not sel.matches({"app": "web", "tier": "fe", "zone": "a", "canary": "1"})
    assert not sel.matches({"app": "web", "tier": "fe", "zone": "a", "env": "prod"})
    assert str(sel) == "app=web,!canary,env notin (prod),tier in (be,fe),zone"


def test_label_selector_from_dict_nil_selects_nothing_and_empty_everything() -> None:
    assert not label_selector_from_dict(None).matches({})
    assert not label_selector_from_dict(None).empty
    assert label_selector_from_dict({}).matches({"a": "b"})
    assert label_selector_from_dict({}).empty


def test_label_selector_from_dict_errors() -> None:
    with pytest.raises(BadRequest, match='"Bogus" is not a valid label selector operator'):
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
    with pytest.raises(BadRequest, match="values set can't be empty"):
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "In"}]})


def test_label_selector_to_string() -> None:
    assert label_selector_to_string({"matchLabels": {"b": "2", "a": "1"}}) == "a=1,b=2"
    assert label_selector_to_string({}) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metadata.name=foo", (("metadata.name", "=", "foo"),)),
        ("metadata.name==foo", (("metadata.name", "=", "foo"),)),
        ("b!=2,a=1", (("a", "=", "1"), ("b", "!=", "2"))),
        (r"a=x\,y\=z\\", (("a", "=", "x,y=z\\"),)),
        ("a=", (("a", "=", ""),)),
        ("", ()),
    ],
)
def test_parse_field_selector(text: str, expected: tuple[tuple[str, str, str], ...]) -> None:
    assert parse_field_selector(text).requirements == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo", "invalid selector: 'foo'; can't understand 'foo'"),
        ("a=1,b", "invalid selector: 'a=1,b'; can't understand 'b'"),
        (r"a=\x", r"invalid field selector: invalid escape sequence: \x"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_field_selector(text)
    assert info.value.message == message


def test_field_selector_matches_objects() -> None:
    event = {
        "metadata": {"name": "e1", "namespace": "default"},
        "involvedObject": {"kind": "Machine", "name": "m1", "uid": "u1"},
        "spec": {"unschedulable": True, "replicas": 3},
    }
    sel = parse_field_selector("involvedObject.kind=Machine,involvedObject.name=m1")
    assert sel.matches(lambda p: field_value(event, p))
    assert not parse_field_selector("metadata.name!=e1").matches(lambda p: field_value(event, p))
    # A missing field reads as the empty string, as in kube's fields.Set.
    assert parse_field_selector("spec.nodeName=").matches(lambda p: field_value(event, p))
    assert parse_field_selector("spec.nodeName!=x").matches(lambda p: field_value(event, p))
    assert sel.requires_exact_match("involvedObject.name") == "m1"
    assert sel.requires_exact_match("metadata.name") is None


def test_field_value_renders_scalars_like_kube() -> None:
    obj = {"spec": {"unschedulable": False, "replicas": 3, "nested": {"x": 1}}, "a": None}
    assert field_value(obj, "spec.unschedulable") == "false"
    assert field_value(obj, "spec.replicas") == "3"
    assert field_value(obj, "spec.nested") is None
    assert field_value(obj, "spec.missing") is None
    assert field_value(obj, "a") is None


def test_field_selector_string_round_trips() -> None:
    sel = parse_field_selector(r"a=x\,y,b!=2")
    assert parse_field_selector(str(sel)) == sel
