"""The seam between controllers and an API server: `Reader`, `Writer` and `RESTMapper`.

Everything above the client (the runtime, controllers, providers) is written against these
protocols, never against `Client` itself, so the same code runs on the real client and on
`FakeClient` (and the fake is checked against the real server in tests/client). Objects are
plain dicts as the server sends them; the TypedDicts here name the few shapes the runtime reads.

Objects are addressed by apiVersion/kind (what a manifest carries); the client turns that into a
resource path through its `RESTMapper`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, TypedDict

Object = dict[str, Any]
"""A Kubernetes object as decoded JSON. Unknown fields are always kept."""

EventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
PatchType = Literal["merge", "json", "strategic", "apply"]
PropagationPolicy = Literal["Foreground", "Background", "Orphan"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


class OwnerReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool
    blockOwnerDeletion: bool


class ListMeta(TypedDict, total=False):
    resourceVersion: str
    # `continue` is a keyword, so the key is only reachable as meta["continue"].
    remainingItemCount: int


class ObjectList(TypedDict):
    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    items: list[Object]


class WatchEvent(TypedDict):
    """One watch event. ERROR events never surface: the stream raises the Status error."""

    type: EventType
    object: Object


class Preconditions(TypedDict, total=False):
    uid: str
    resourceVersion: str


class GVK(NamedTuple):
    """apiVersion and kind, as a manifest spells them."""

    api_version: str
    kind: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @classmethod
    def of(cls, obj: Object) -> GVK:
        return cls(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))


@dataclass(frozen=True)
class RESTMapping:
    """Where a kind is served: its plural resource and whether it lives in namespaces."""

    group: str
    version: str
    kind: str
    resource: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class RESTMapper(Protocol):
    async def mapping(self, api_version: str, kind: str) -> RESTMapping:
        """The mapping for a kind; raises `NoKindMatchError` if the server does not serve it."""
        ...


class NoKindMatchError(LookupError):
    """No served resource has this apiVersion/kind (after refreshing discovery)."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f'no matches for kind "{kind}" in version "{api_version}"')
        self.api_version = api_version
        self.kind = kind


class Reader(Protocol):
    @property
    def mapper(self) -> RESTMapper: ...

    async def get(self, api_version: str, kind: str, name: str,
                  namespace: str | None = None) -> Object: ...

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, *,
        label_selector: str | None = None, field_selector: str | None = None,
        limit: int | None = None, continue_: str | None = None,
        resource_version: str | None = None,
    ) -> ObjectList: ...

    def watch(
        self, api_version: str, kind: str, namespace: str | None = None, *,
        resource_version: str | None = None, allow_bookmarks: bool = True,
        timeout_seconds: int | None = None, label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncGenerator[WatchEvent, None]:
        """Events after `resource_version`; raises `Expired`/`Gone` on an in-stream 410."""
        ...


class Writer(Protocol):
    async def create(self, obj: Object, *, field_manager: str | None = None) -> Object: ...

    async def update(self, obj: Object, *, field_manager: str | None = None) -> Object: ...

    async def update_status(self, obj: Object, *,
                            field_manager: str | None = None) -> Object: ...

    async def patch(
        self, api_version: str, kind: str, name: str, patch: Any,
        namespace: str | None = None, *, patch_type: PatchType = "merge",
        field_manager: str | None = None, force: bool | None = None,
        subresource: str | None = None,
    ) -> Object: ...

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, *,
        propagation_policy: PropagationPolicy | None = None,
        preconditions: Preconditions | None = None,
    ) -> Object: ...


class ReaderWriter(Reader, Writer, Protocol):
    """What a controller holds: both halves (controller-runtime's client.Client)."""
