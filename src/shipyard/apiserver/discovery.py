"""Discovery: the documents that tell clients which groups, versions and resources are served.

Two forms, both derived from the live `Registry` and cached per ``registry.generation``:

- legacy: ``/api`` (APIVersions), ``/apis`` (APIGroupList), ``/apis/{g}`` (APIGroup) and
  ``/api/v1``, ``/apis/{g}/{v}`` (APIResourceList, with ``x/status`` and ``x/scale`` entries).
  kopf and the Python DynamicClient read only these; kubectl falls back to them.
- aggregated (``apidiscovery.k8s.io`` v2 and v2beta1 APIGroupDiscoveryList) served on ``/api`` and
  ``/apis`` when the Accept header asks for it (`negotiate_discovery`). The response must carry the
  matching Content-Type (`content_type`), or kubectl parses the body as the legacy document.

Ordering follows kube-apiserver: core first, built-in groups in its fixed priority order, then the
rest by name; versions by kube's version priority (GA > beta > alpha, newer first); resources by
name. ``storageVersionHash`` is kube's: base64 of the first 8 bytes of sha256("group/version/kind")
of the storage version. ``/version`` reports a configurable gitVersion: the kubectl dispatcher on
this machine picks the kubectl binary by the reported minor version.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import weakref
from collections.abc import Callable
from typing import Any, Literal

import orjson

from shipyard.apiserver.registry import Registry
from shipyard.apiserver.resources import ResourceInfo

DiscoveryFormat = Literal["v2", "v2beta1", "legacy"]

DISCOVERY_GROUP = "apidiscovery.k8s.io"
DISCOVERY_KIND = "APIGroupDiscoveryList"
CONTENT_TYPE_V2 = f"application/json;g={DISCOVERY_GROUP};v=v2;as={DISCOVERY_KIND}"
CONTENT_TYPE_V2BETA1 = f"application/json;g={DISCOVERY_GROUP};v=v2beta1;as={DISCOVERY_KIND}"
CONTENT_TYPE_LEGACY = "application/json"

DEFAULT_GIT_VERSION = "v1.33.0+shipyard"
DEFAULT_SERVER_ADDRESS = "127.0.0.1:6443"

SUBRESOURCE_VERBS = ("get", "patch", "update")

# kube-apiserver's group order (aggregator priorities); groups not listed sort after, by name.
_GROUP_ORDER = (
    "", "apiregistration.k8s.io", "apps", "events.k8s.io", "authentication.k8s.io",
    "authorization.k8s.io", "autoscaling", "batch", "certificates.k8s.io", "networking.k8s.io",
    "policy", "rbac.authorization.k8s.io", "storage.k8s.io", "admissionregistration.k8s.io",
    "apiextensions.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "node.k8s.io",
    "discovery.k8s.io", "flowcontrol.apiserver.k8s.io",
)


def content_type(fmt: DiscoveryFormat) -> str:
    return {"v2": CONTENT_TYPE_V2, "v2beta1": CONTENT_TYPE_V2BETA1}.get(fmt, CONTENT_TYPE_LEGACY)


def negotiate_discovery(accept_header: str) -> DiscoveryFormat:
    """Which discovery document answers this Accept header (the best-q, first-listed match).

    ``application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`` -> "v2", likewise
    v2beta1; plain ``application/json``, ``*/*`` or an empty header -> "legacy". Clauses asking
    for another ``as=`` or a media type we do not serve (protobuf, yaml) are skipped; when nothing
    matches the answer is "legacy".
    """
    candidates: list[tuple[float, int, DiscoveryFormat]] = []
    for index, clause in enumerate(accept_header.split(",")):
        parts = [p.strip() for p in clause.split(";")]
        media = parts[0].lower()
        if not media:
            continue
        params: dict[str, str] = {}
        for part in parts[1:]:
            key, _, value = part.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            continue
        if q <= 0 or media not in ("application/json", "application/*", "*/*"):
            continue
        wanted = params.get("as")
        if wanted is None:
            candidates.append((q, index, "legacy"))
        elif (
            wanted == DISCOVERY_KIND
            and params.get("g") == DISCOVERY_GROUP
            and params.get("v") in ("v2", "v2beta1")
        ):
            candidates.append((q, index, "v2" if params["v"] == "v2" else "v2beta1"))
    if not candidates:
        return "legacy"
    candidates.sort(key=lambda c: (-c[0], c[1]))
    return candidates[0][2]


def storage_version_hash(group: str, version: str, kind: str) -> str:
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def version_info(git_version: str = DEFAULT_GIT_VERSION) -> dict[str, str]:
    """The ``/version`` body (version.Info). ``git_version`` must look like ``v1.33.0[+x]``."""
    m = re.match(r"v(\d+)\.(\d+)", git_version)
    major, minor = (m.group(1), m.group(2)) if m else ("1", "33")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "python" + ".".join(str(p) for p in sys.version_info[:3]),
        "compiler": "gc",
        "platform": "linux/amd64",
    }


# ---------------------------------------------------------------------------------------------
# legacy documents


def api_versions(server_address: str = DEFAULT_SERVER_ADDRESS) -> dict[str, Any]:
    """``/api``."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_sort_key(group: str) -> tuple[int, str]:
    try:
        return (_GROUP_ORDER.index(group), "")
    except ValueError:
        return (len(_GROUP_ORDER), group)


def _groups(registry: Registry) -> list[tuple[str, list[str]]]:
    return sorted(registry.group_versions().items(), key=lambda item: _group_sort_key(item[0]))


def _group_version(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    return {
        "name": group,
        "versions": [_group_version(group, v) for v in versions],
        "preferredVersion": _group_version(group, versions[0]),
    }


def api_group_list(registry: Registry) -> dict[str, Any]:
    """``/apis``: every named group (the core group lives at ``/api``)."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_api_group(g, vs) for g, vs in _groups(registry) if g],
    }


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    """``/apis/{group}``, or None when the group is not served."""
    versions = registry.group_versions().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group, versions)}


def _resource_entries(info: ResourceInfo) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": info.resource,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        main["shortNames"] = list(info.short_names)
    if info.categories:
        main["categories"] = list(info.categories)
    main["storageVersionHash"] = storage_version_hash(
        info.group, info.storage_version or info.version, info.kind
    )
    entries = [main]
    if info.scale is not None:
        entries.append({
            "name": f"{info.resource}/scale", "singularName": "", "namespaced": info.namespaced,
            "group": "autoscaling", "version": "v1", "kind": "Scale",
            "verbs": list(SUBRESOURCE_VERBS),
        })
    if info.status:
        entries.append({
            "name": f"{info.resource}/status", "singularName": "", "namespaced": info.namespaced,
            "kind": info.kind, "verbs": list(SUBRESOURCE_VERBS),
        })
    for name, sub in (info.extra.get("subresources") or {}).items():
        entries.append({
            "name": f"{info.resource}/{name}", "singularName": "", "namespaced": info.namespaced,
            "group": sub["group"], "version": sub["version"], "kind": sub["kind"],
            "verbs": list(sub["verbs"]),
        })
    entries.sort(key=lambda e: str(e["name"]))
    return entries


def _sorted_resources(registry: Registry, group: str, version: str) -> list[ResourceInfo]:
    return sorted(registry.resources_in(group, version), key=lambda i: i.resource)


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """``/api/v1`` or ``/apis/{g}/{v}``, or None when that group/version is not served."""
    infos = _sorted_resources(registry, group, version)
    if not infos:
        return None
    doc: dict[str, Any] = {"kind": "APIResourceList"}
    if group:  # kube-apiserver omits apiVersion on /api/v1 only
        doc["apiVersion"] = "v1"
    doc["groupVersion"] = f"{group}/{version}" if group else version
    doc["resources"] = [entry for info in infos for entry in _resource_entries(info)]
    return doc


# ---------------------------------------------------------------------------------------------
# aggregated discovery


def _discovery_resource(info: ResourceInfo) -> dict[str, Any]:
    # kube-apiserver leaves group/version empty in responseKind for its compiled-in kinds; the
    # CRD discovery controller fills them in.
    gvk_group, gvk_version = ("", "") if info.builtin else (info.group, info.version)
    kind = {"group": gvk_group, "kind": info.kind, "version": gvk_version}
    entry: dict[str, Any] = {
        "resource": info.resource,
        "responseKind": kind,
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    subresources: list[dict[str, Any]] = []
    if info.scale is not None:
        subresources.append({
            "subresource": "scale",
            "responseKind": {"group": "autoscaling", "kind": "Scale", "version": "v1"},
            "verbs": list(SUBRESOURCE_VERBS),
        })
    if info.status:
        subresources.append(
            {"subresource": "status", "responseKind": dict(kind), "verbs": list(SUBRESOURCE_VERBS)}
        )
    for name, sub in (info.extra.get("subresources") or {}).items():
        subresources.append({
            "subresource": name,
            "responseKind": {"group": sub["group"], "kind": sub["kind"],
                             "version": sub["version"]},
            "verbs": list(sub["verbs"]),
        })
    subresources.sort(key=lambda e: str(e["subresource"]))
    if subresources:
        entry["subresources"] = subresources
    return entry


def aggregated_discovery(
    registry: Registry, *, legacy_api: bool, fmt: Literal["v2", "v2beta1"] = "v2"
) -> dict[str, Any]:
    """APIGroupDiscoveryList for ``/api`` (``legacy_api``: the core group) or ``/apis``."""
    items: list[dict[str, Any]] = []
    for group, versions in _groups(registry):
        if bool(group) == legacy_api:
            continue
        metadata: dict[str, Any] = {"name": group, "creationTimestamp": None}
        if not group:
            del metadata["name"]
        items.append({
            "metadata": metadata,
            "versions": [
                {
                    "version": version,
                    "resources": [
                        _discovery_resource(i) for i in _sorted_resources(registry, group, version)
                    ],
                    "freshness": "Current",
                }
                for version in versions
            ],
        })
    return {
        "kind": DISCOVERY_KIND,
        "apiVersion": f"{DISCOVERY_GROUP}/{fmt}",
        "metadata": {},
        "items": items,
    }


# ---------------------------------------------------------------------------------------------
# serialized, cached per registry generation

_CACHE: weakref.WeakKeyDictionary[Registry, tuple[int, dict[Any, bytes]]] = (
    weakref.WeakKeyDictionary()
)


def cached(registry: Registry, key: Any, build: Callable[[], Any]) -> bytes:
    """``orjson.dumps(build())``, memoised until ``registry.generation`` moves."""
    generation, documents = _CACHE.get(registry, (-1, {}))
    if generation != registry.generation:
        documents = {}
        _CACHE[registry] = (registry.generation, documents)
    body = documents.get(key)
    if body is None:
        body = documents[key] = orjson.dumps(build())
    return body


def discovery_response(
    registry: Registry, path: str, accept_header: str, server_address: str = DEFAULT_SERVER_ADDRESS
) -> tuple[bytes, str] | None:
    """(body, Content-Type) for a discovery path, or None when the path names nothing served.

    Handles ``/api``, ``/apis``, ``/apis/{g}``, ``/api/v1`` and ``/apis/{g}/{v}``. The caller
    should also send ``Vary: Accept`` on ``/api`` and ``/apis``.
    """
    parts = [p for p in path.split("/") if p]
    if parts in (["api"], ["apis"]):
        legacy_api = parts == ["api"]
        fmt = negotiate_discovery(accept_header)
        if fmt == "legacy":
            build: Callable[[], Any] = (
                (lambda: api_versions(server_address)) if legacy_api
                else (lambda: api_group_list(registry))
            )
            return cached(registry, (path, fmt, server_address), build), CONTENT_TYPE_LEGACY
        body = cached(
            registry, (legacy_api, fmt),
            lambda: aggregated_discovery(registry, legacy_api=legacy_api, fmt=fmt),
        )
        return body, content_type(fmt)
    if parts == ["api", "v1"] or (len(parts) == 3 and parts[0] == "apis"):
        group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
        if not registry.resources_in(group, version):
            return None
        body = cached(
            registry, ("resources", group, version),
            lambda: api_resource_list(registry, group, version),
        )
        return body, CONTENT_TYPE_LEGACY
    if len(parts) == 2 and parts[0] == "apis":
        name = parts[1]
        if not name or name not in registry.group_versions():
            return None
        return cached(registry, ("group", name), lambda: api_group(registry, name)), (
            CONTENT_TYPE_LEGACY
        )
    return None
