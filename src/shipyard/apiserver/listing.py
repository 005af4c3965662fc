"""LIST with kube-apiserver's consistency and paging rules.

A list reads one revision: the newest (resourceVersion unset or "0"), or an exact one
(resourceVersionMatch=Exact, and every continued page, which stays on the first page's revision).
Pages are cut by key order; the continue token carries the revision and the last key, so a
token older than compaction gets 410 Expired, as from etcd.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from shipyard.apimachinery import errors
from shipyard.apiserver.filtering import Filter, single_name
from shipyard.apiserver.resources import ResourceInfo
from shipyard.storage import CompactedError, Entry, Store

EXPIRED_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this "
    "response to retrieve the remainder of the results. Continuing with the provided token "
    "results in an inconsistent list - objects that were created, modified, or deleted between "
    "the time the first chunk was returned and now may show up in the list."
)


@dataclass(slots=True)
class Page:
    entries: list[Entry]
    revision: int
    continue_token: str
    remaining: int | None


def encode_continue(revision: int, last_key: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key + "\x00"})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
        revision = int(data["rv"])
        start = str(data["start"])
    except Exception:
        raise errors.BadRequest(
            f"invalid continue token: continue key is not valid: {token!r}"
        ) from None
    if data.get("v") != "meta.k8s.io/v1" or revision <= 0 or not start.endswith("\x00"):
        raise errors.BadRequest("invalid continue token: continue key is not valid: "
                                "incorrect encoded start "
                                "resourceVersion (version meta.k8s.io/v1)")
    return revision, start[:-1]


def _validate_list_options(rv: str, match: str, continue_token: str) -> None:
    """ValidateListOptions: every broken rule is one cause of a 422 on ListOptions."""
    if not match:
        return
    causes: list[errors.StatusCause] = []

    def forbid(message: str) -> None:
        causes.append({"reason": "FieldValueForbidden", "message": f"Forbidden: {message}",
                       "field": "resourceVersionMatch"})

    if not rv:
        forbid("resourceVersionMatch is forbidden unless resourceVersion is provided")
    if continue_token:
        forbid("resourceVersionMatch is forbidden when continue is provided")
    if match not in ("Exact", "NotOlderThan"):
        causes.append({"reason": "FieldValueNotSupported", "field": "resourceVersionMatch",
                       "message": f'Unsupported value: "{match}": supported values: '
                                  '"Exact", "NotOlderThan", ""'})
    if match == "Exact" and rv == "0":
        forbid('resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
    if causes:
        raise errors.invalid("ListOptions", "meta.k8s.io", "", causes)


async def list_page(
    store: Store,
    info: ResourceInfo,
    namespace: str | None,
    flt: Filter,
    *,
    limit: int,
    continue_token: str,
    resource_version: str,
    resource_version_match: str,
) -> Page:
    _validate_list_options(resource_version, resource_version_match, continue_token)
    prefix = info.prefix(namespace if info.namespaced else None)
    start_after = ""
    at: int | None = None
    if continue_token:
        at, start_after = decode_continue(continue_token)
    elif resource_version and resource_version != "0":
        try:
            wanted = int(resource_version)
        except ValueError:
            raise errors.BadRequest(
                f'invalid resource version: resourceVersion: Invalid value: '
                f'"{resource_version}": strconv.ParseUint: parsing "{resource_version}": '
                'invalid syntax'
            ) from None
        if wanted > store.revision:
            raise errors.Timeout(
                # kube's cacher prefixes its TooLargeResourceVersion error with the reason.
                f"Timeout: Too large resource version: {wanted}, current: {store.revision}",
                details={"causes": [{"reason": "ResourceVersionTooLarge",
                                     "message": "Too large resource version"}],
                         "retryAfterSeconds": 1},
            )
        if resource_version_match == "Exact":
            at = wanted

    if at is None or at == store.revision:
        name = single_name(flt)
        if name is not None:
            hit = store.get(info.key(namespace, name)) if (namespace or not info.namespaced) \
                else None
            if hit is not None:
                entries, revision = [hit], store.revision
            elif namespace or not info.namespaced:
                entries, revision = [], store.revision
            else:
                entries, revision = store.list(prefix)
        else:
            entries, revision = store.list(prefix)
        if start_after:
            entries = [e for e in entries if e.key > start_after]
    else:
        try:
            entries = await store.list_at(prefix, at, start_after)
        except CompactedError as exc:
            if continue_token:
                raise errors.Expired(EXPIRED_CONTINUE) from None
            raise errors.Expired(str(exc)) from None
        revision = at

    matched: list[Entry] = []
    token = ""
    remaining: int | None = None
    for index, entry in enumerate(entries):
        if not flt.matches_entry(entry):
            continue
        if limit and len(matched) == limit:
            token = encode_continue(revision, matched[-1].key)
            if flt.empty:
                remaining = len(entries) - index
            break
        matched.append(entry)
    return Page(matched, revision, token, remaining)
