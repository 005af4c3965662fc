"""Objects named by a contract reference (`{apiGroup, kind, name}`), as Cluster API's
`external` package and `contract` version resolution.

v1beta2 references carry no version. As upstream, the version to use is the one the provider's
CRD declares for the contract with the label `cluster.x-k8s.io/<contract>: <v1>_<v2>...`
(the last listed version that is served wins; v1beta2 contract first, then v1beta1); a CRD without
the label falls back to its storage version. CRDs are listed once and cached per group/kind;
a miss re-lists, so providers installed after start-up are found.

`ExternalTracker` adds a watch on a referenced kind the first time a controller meets it
(controller-runtime's dynamic `Watch` in upstream's `external.ObjectTracker`), so a provider's
status change wakes the owner without polling.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shipyard.apimachinery.errors import NotFound
from shipyard.client.interfaces import GVK, Object, ReaderWriter
from shipyard.controllers.ownership import ensure_owner_reference, owner_reference
from shipyard.runtime import Controller, Manager, MapFunc

CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
CONTRACTS = ("v1beta2", "v1beta1")


class ContractVersionNotFound(LookupError):
    """No CRD serves the referenced group/kind."""


def contract_version(crd: Object) -> str | None:
    """The version a CRD serves for the newest Cluster API contract it declares."""
    labels = (crd.get("metadata") or {}).get("labels") or {}
    served = [str(v["name"]) for v in (crd.get("spec") or {}).get("versions") or []
              if v.get("served")]
    for contract in CONTRACTS:
        declared = labels.get(f"cluster.x-k8s.io/{contract}")
        if declared:
            for version in reversed(str(declared).split("_")):
                if version in served:
                    return version
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("storage"):
            return str(v["name"])
    return served[-1] if served else None


class ExternalObjects:
    """Reads, patches and deletes referenced provider objects through the client."""

    def __init__(self, client: ReaderWriter) -> None:
        self.client = client
        self._versions: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()

    async def api_version(self, group: str, kind: str) -> str:
        found = self._versions.get((group, kind))
        if found is not None:
            return found
        async with self._lock:
            if (group, kind) not in self._versions:
                crds = await self.client.list(*CRD)
                for crd in crds["items"]:
                    spec = crd.get("spec") or {}
                    version = contract_version(crd)
                    if version is not None:
                        key = (str(spec.get("group")), str((spec.get("names") or {}).get("kind")))
                        self._versions[key] = f"{key[0]}/{version}"
        found = self._versions.get((group, kind))
        if found is None:
            raise ContractVersionNotFound(f"no CRD serves kind {kind!r} in group {group!r}")
        return found

    async def gvk(self, ref: dict[str, Any]) -> GVK:
        if ref.get("apiVersion"):
            return GVK(str(ref["apiVersion"]), str(ref["kind"]))
        return GVK(await self.api_version(str(ref["apiGroup"]), str(ref["kind"])),
                   str(ref["kind"]))

    async def get(self, ref: dict[str, Any], namespace: str) -> Object:
        gvk = await self.gvk(ref)
        return await self.client.get(*gvk, str(ref["name"]), namespace)

    async def get_or_none(self, ref: dict[str, Any], namespace: str) -> Object | None:
        try:
            return await self.get(ref, namespace)
        except NotFound:
            return None

    async def patch(self, ref: dict[str, Any], namespace: str, patch: dict[str, Any]) -> Object:
        gvk = await self.gvk(ref)
        return await self.client.patch(*gvk, str(ref["name"]), patch, namespace)

    async def delete(self, ref: dict[str, Any], namespace: str) -> bool:
        """Delete the object; True if it is already gone."""
        gvk = await self.gvk(ref)
        try:
            await self.client.delete(*gvk, str(ref["name"]), namespace,
                                     propagation_policy="Background")
        except NotFound:
            return True
        return False


async def ensure_cluster_owns_templates(external: ExternalObjects, cluster: Object,
                                        machine_spec: dict[str, Any], namespace: str) -> None:
    """Upstream's `reconcileExternalTemplateReference` (MachineSet and MachineDeployment): the
    templates a machine template names (infrastructure and bootstrap, kinds ending in
    "Template") get the Cluster as a (non-controller) owner, so garbage collection and
    `clusterctl move` treat them as the Cluster's. Missing templates are left to the
    reconcile that reports them."""
    refs = [machine_spec.get("infrastructureRef"),
            (machine_spec.get("bootstrap") or {}).get("configRef")]
    for ref in refs:
        if not ref or not str(ref.get("kind", "")).endswith("Template"):
            continue
        try:
            template = await external.get(ref, namespace)
        except (NotFound, ContractVersionNotFound):
            continue
        if ensure_owner_reference(template, owner_reference(cluster)):
            meta = template["metadata"]
            await external.patch(ref, namespace, {"metadata": {
                "ownerReferences": meta["ownerReferences"],
                "resourceVersion": meta.get("resourceVersion")}})


class ExternalTracker:
    """Watches each referenced kind once, mapping its events with `map_fn`."""

    def __init__(self, manager: Manager, controller: Controller, map_fn: MapFunc) -> None:
        self.manager = manager
        self.controller = controller
        self.map_fn = map_fn
        self._watching: set[GVK] = set()

    def watch(self, gvk: GVK) -> None:
        if gvk in self._watching:
            return
        self._watching.add(gvk)
        self.controller.watch(self.manager.informer(gvk), self.map_fn)
