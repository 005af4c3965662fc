"""What the server serves: one `ResourceInfo` per group/version/resource.

Built-in kinds and CustomResourceDefinitions end up as the same record, so routing, handlers,
discovery, OpenAPI and tables never ask which one they are looking at. A CRD with several served
versions yields one `ResourceInfo` per version, all sharing the storage version's keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ScaleSubresource:
    spec_replicas_path: str  # e.g. ".spec.replicas"
    status_replicas_path: str  # e.g. ".status.replicas"
    label_selector_path: str | None = None  # e.g. ".status.selector"


@dataclass(frozen=True, slots=True)
class PrinterColumn:
    name: str
    type: str  # integer | number | boolean | string | date
    json_path: str  # e.g. ".spec.replicas"
    format: str = ""
    description: str = ""
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    group: str  # "" for the legacy core group
    version: str
    resource: str  # plural, lower case: "machines"
    kind: str
    list_kind: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = (
        "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
    )
    status: bool = False  # the status subresource is enabled
    scale: ScaleSubresource | None = None
    # openAPIV3Schema of this version (structural); None means "accept anything" (no pruning).
    schema: dict[str, Any] | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    selectable_fields: tuple[str, ...] = ()  # JSON paths such as ".spec.clusterName"
    storage_version: str = ""  # the version objects are stored in; "" means this one
    builtin: bool = False  # compiled in (kubectl uses strategic merge patch for these)
    # Strategic-merge-patch is offered only for built-ins, as kube-apiserver does.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``machines.cluster.x-k8s.io``, as kube-apiserver writes it in messages."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def prefix(self, namespace: str | None = None) -> str:
        """Storage prefix of this resource (of one namespace when given)."""
        base = f"/registry/{self.group or 'core'}/{self.resource}/"
        return base + f"{namespace}/" if namespace else base

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"/registry/{self.group or 'core'}/{self.resource}/{namespace}/{name}"
        return f"/registry/{self.group or 'core'}/{self.resource}/{name}"
