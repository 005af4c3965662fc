"""The "who am I" and "may I" reviews kubectl asks for: ``kubectl auth whoami`` and ``kubectl
auth can-i [--list]``.

Shipyard's API server authorizes every authenticated user for everything (it has no RBAC; the
RBAC that `shipyard init` applies is for real clusters), so its answers are honest and simple:
``SelfSubjectAccessReview`` (authorization.k8s.io/v1) is allowed, ``SelfSubjectRulesReview``
lists one rule granting every verb on every resource and non-resource URL, and
``SelfSubjectReview`` (authentication.k8s.io/v1) echoes the user the request authenticated as.
Like kube-apiserver, each is create-only, never stored, and answered 201 with the request's
spec and the computed status.
"""

from __future__ import annotations

from typing import Any, Final

from shipyard.apimachinery import errors
from shipyard.apiserver import codec
from shipyard.apiserver.authn import USER_EXTENSION, User, anonymous
from shipyard.apiserver.builtinschema import OPAQUE, Schema, kind_schema
from shipyard.apiserver.http import Request, Send, respond_json
from shipyard.apiserver.resources import ResourceInfo

ALLOWED_REASON: Final = "Shipyard's API server allows every authenticated user everything"

REVIEW_SCHEMA: Schema = kind_schema({"spec": OPAQUE, "status": OPAQUE},
                                    "A review the server answers and never stores.")


def _user(request: Request) -> User:
    user: User | None = (request.scope.get("extensions") or {}).get(USER_EXTENSION)
    # Served without authentication (--insecure): kube's anonymous user.
    return anonymous() if user is None else user


def answer(info: ResourceInfo, review: dict[str, Any], user: User) -> dict[str, Any]:
    """The review as kube-apiserver returns it: the sent spec plus the computed status."""
    spec = review.get("spec") or {}
    if not isinstance(spec, dict):
        raise errors.BadRequest(f"{info.kind}.spec must be an object")
    status: dict[str, Any]
    if info.kind == "SelfSubjectAccessReview":
        if not spec.get("resourceAttributes") and not spec.get("nonResourceAttributes"):
            # kube's own words, its empty kind included (the review's validation names none).
            raise errors.invalid("", info.group, "", [{
                "reason": "FieldValueInvalid", "field": "spec.resourceAttributes",
                "message": 'Invalid value: "null": exactly one of nonResourceAttributes or '
                           "resourceAttributes must be specified"}])
        status = {"allowed": True, "reason": ALLOWED_REASON}
    elif info.kind == "SelfSubjectRulesReview":
        status = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                  "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                  "incomplete": False}
    else:  # SelfSubjectReview
        status = {"userInfo": {"username": user["name"], "groups": list(user["groups"])}}
    out: dict[str, Any] = {"kind": info.kind, "apiVersion": info.group_version,
                           "metadata": {"creationTimestamp": None}}
    if info.kind != "SelfSubjectReview":
        out["spec"] = spec
    out["status"] = status
    return out


async def serve(request: Request, send: Send, info: ResourceInfo) -> None:
    review = codec.decode_object(await request.body(), request.content_type, info.kind)
    await respond_json(send, 201, answer(info, review, _user(request)))
