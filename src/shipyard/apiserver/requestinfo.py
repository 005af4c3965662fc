"""Turn a request path into what it addresses, as kube-apiserver's RequestInfoFactory does.

Resource paths have the shapes::

    /api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]
    /apis/{group}/{version}[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]

``/api/v1/namespaces/{name}`` is the Namespace object itself, and ``.../namespaces/{name}/status``
and ``/finalize`` its subresources. Anything else under /api or /apis is discovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True, slots=True)
class ResourcePath:
    group: str
    version: str
    resource: str
    namespace: str | None  # None: cluster-wide (a cluster-scoped kind, or all namespaces)
    name: str | None
    subresource: str | None


@dataclass(frozen=True, slots=True)
class DiscoveryPath:
    group: str | None  # None for /api and /apis roots
    version: str | None
    legacy: bool  # /api rather than /apis


def parse_path(path: str) -> ResourcePath | DiscoveryPath | None:
    parts = [unquote(p) for p in path.strip("/").split("/") if p != ""]
    if not parts:
        return None
    if parts[0] == "api":
        if len(parts) == 1:
            return DiscoveryPath(None, None, legacy=True)
        group, version, rest = "", parts[1], parts[2:]
        if not rest:
            return DiscoveryPath("", version, legacy=True)
    elif parts[0] == "apis":
        if len(parts) == 1:
            return DiscoveryPath(None, None, legacy=False)
        if len(parts) == 2:
            return DiscoveryPath(parts[1], None, legacy=False)
        group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            return DiscoveryPath(group, version, legacy=False)
    else:
        return None

    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (
        group == "" and len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES
    ):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        return None
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    return ResourcePath(group, version, resource, namespace, name, sub)
