"""`kubectl auth can-i` and `kubectl auth whoami` ask the server through create-only reviews:
both servers answer 201 with the spec sent and the computed status, refuse a review that asks
nothing, and offer no other verb. The suite's user is an administrator on both servers, so
every question is answered "allowed"."""

from __future__ import annotations

from tests.differential.conftest import answer, ok
from tests.kube import Client

SSAR = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSRR = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


def test_access_review_is_allowed_and_echoes_the_spec(api: Client) -> None:
    spec = {"resourceAttributes": {"namespace": "default", "verb": "create",
                                   "resource": "pods"}}
    got = ok(api.post(SSAR, {"apiVersion": "authorization.k8s.io/v1",
                             "kind": "SelfSubjectAccessReview", "spec": spec}), 201)
    assert got["kind"] == "SelfSubjectAccessReview" and got["spec"] == spec
    assert got["status"]["allowed"] is True
    got = ok(api.post(SSAR, {"apiVersion": "authorization.k8s.io/v1",
                             "kind": "SelfSubjectAccessReview", "spec": {
                                 "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}}),
             201)
    assert got["status"]["allowed"] is True


def test_access_review_that_asks_nothing_is_invalid(api: Client) -> None:
    got = answer(api.post(SSAR, {"apiVersion": "authorization.k8s.io/v1",
                                 "kind": "SelfSubjectAccessReview", "spec": {}}))
    why = 'exactly one of nonResourceAttributes or resourceAttributes must be specified'
    assert got == {
        "code": 422, "status": "Failure", "reason": "Invalid",
        "message": f'.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid '
                   f'value: "null": {why}',
        "details": {"group": "authorization.k8s.io", "causes": [{
            "reason": "FieldValueInvalid", "field": "spec.resourceAttributes",
            "message": f'Invalid value: "null": {why}'}]}}


def test_rules_review_lists_rules(api: Client) -> None:
    got = ok(api.post(SSRR, {"apiVersion": "authorization.k8s.io/v1",
                             "kind": "SelfSubjectRulesReview",
                             "spec": {"namespace": "default"}}), 201)
    rules = got["status"]["resourceRules"]
    assert any("*" in r["verbs"] and "*" in r.get("resources", []) for r in rules)
    assert got["status"]["incomplete"] is False


def test_self_subject_review_names_the_user(api: Client) -> None:
    got = ok(api.post(SSR, {"apiVersion": "authentication.k8s.io/v1",
                            "kind": "SelfSubjectReview"}), 201)
    user = got["status"]["userInfo"]
    assert user["username"] and "system:authenticated" in user["groups"]


def test_reviews_are_create_only(api: Client) -> None:
    for path in (SSAR, SSR):
        assert answer(api.get(path))["code"] == 405
