"""The live set of served resources: built-ins plus whatever CRDs are established.

Discovery, OpenAPI and routing read it; the CRD controller rewrites it. ``generation`` increases
on every change, so readers cache derived documents (discovery, OpenAPI) keyed by it.
"""

from __future__ import annotations

from collections.abc import Iterable

from shipyard.apiserver.resources import ResourceInfo


class Registry:
    def __init__(self, builtins: Iterable[ResourceInfo] = ()) -> None:
        self._builtins: dict[tuple[str, str, str], ResourceInfo] = {}
        self._crds: dict[str, list[ResourceInfo]] = {}  # CRD name -> its served versions
        self._index: dict[tuple[str, str, str], ResourceInfo] = {}
        self.generation = 0
        for info in builtins:
            self._builtins[(info.group, info.version, info.resource)] = info
        self._rebuild()

    def _rebuild(self) -> None:
        index = dict(self._builtins)
        for infos in self._crds.values():
            for info in infos:
                index[(info.group, info.version, info.resource)] = info
        self._index = index
        self.generation += 1

    def set_crd(self, crd_name: str, infos: list[ResourceInfo]) -> None:
        """Serve exactly ``infos`` for this CRD (an empty list stops serving it)."""
        if infos:
            self._crds[crd_name] = infos
        else:
            self._crds.pop(crd_name, None)
        self._rebuild()

    def lookup(self, group: str, version: str, resource: str) -> ResourceInfo | None:
        return self._index.get((group, version, resource))

    def all(self) -> list[ResourceInfo]:
        return list(self._index.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions, preferred (storage/newest) first; "" is the core group."""
        out: dict[str, list[str]] = {}
        for info in self._index.values():
            versions = out.setdefault(info.group, [])
            if info.version not in versions:
                versions.append(info.version)
        for group, versions in out.items():
            versions.sort(key=_version_priority, reverse=True)
            out[group] = versions
        return out

    def resources_in(self, group: str, version: str) -> list[ResourceInfo]:
        return [i for i in self._index.values() if i.group == group and i.version == version]

    def storage_info(self, group: str, resource: str) -> ResourceInfo | None:
        """The info whose version objects of ``group/resource`` are stored in."""
        candidates = [
            i for i in self._index.values() if i.group == group and i.resource == resource
        ]
        for info in candidates:
            if not info.storage_version or info.storage_version == info.version:
                return info
        return candidates[0] if candidates else None

    def for_key(self, key: str) -> ResourceInfo | None:
        """The storage info of a storage key ``/registry/<group|core>/<resource>/...``."""
        parts = key.split("/", 4)
        if len(parts) < 4:
            return None
        group = "" if parts[2] == "core" else parts[2]
        return self.storage_info(group, parts[3])

    def by_kind(self, group: str, kind: str) -> list[ResourceInfo]:
        return [i for i in self._index.values() if i.group == group and i.kind == kind]


def _version_priority(version: str) -> tuple[int, int, int]:
    """kube-apiserver's version ordering: GA > beta > alpha, then by number (v1 > v1beta2)."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (-1, 0, 0)
    major = int(m.group(1))
    stage = {"alpha": 0, "beta": 1, None: 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, major, minor)
