"""A RESTMapper fed by discovery: apiVersion/kind → plural resource and scope.

Each group/version's resource list (`/api/v1`, `/apis/<group>/<version>`) is fetched on first use
and cached. A miss refetches that group/version once before giving up, so kinds from a CRD
installed after start-up are found (controller-runtime's lazy mapper does the same).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from shipyard.apimachinery.errors import NotFound
from shipyard.client.interfaces import NoKindMatchError, RESTMapping

Fetch = Callable[[str], Awaitable[dict[str, Any]]]


def group_version_path(api_version: str) -> str:
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


class DiscoveryRESTMapper:
    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._by_gv: dict[str, dict[str, RESTMapping]] = {}
        self._lock = asyncio.Lock()

    async def mapping(self, api_version: str, kind: str) -> RESTMapping:
        found = self._by_gv.get(api_version, {}).get(kind)
        if found is not None:
            return found
        async with self._lock:
            found = self._by_gv.get(api_version, {}).get(kind)
            if found is None:
                self._by_gv[api_version] = await self._discover(api_version)
                found = self._by_gv[api_version].get(kind)
        if found is None:
            raise NoKindMatchError(api_version, kind)
        return found

    def reset(self) -> None:
        self._by_gv.clear()

    async def _discover(self, api_version: str) -> dict[str, RESTMapping]:
        try:
            body = await self._fetch(group_version_path(api_version))
        except NotFound:
            return {}
        group, _, version = api_version.rpartition("/")
        subresources: dict[str, set[str]] = {}
        for res in body.get("resources") or []:
            parent, slash, sub = str(res.get("name", "")).partition("/")
            if slash:
                subresources.setdefault(parent, set()).add(sub)
        out: dict[str, RESTMapping] = {}
        for res in body.get("resources") or []:
            name = str(res.get("name", ""))
            if "/" in name:
                continue
            out[str(res["kind"])] = RESTMapping(
                group=group, version=version, kind=str(res["kind"]), resource=name,
                namespaced=bool(res.get("namespaced")),
                subresources=frozenset(subresources.get(name, ())),
            )
        return out
