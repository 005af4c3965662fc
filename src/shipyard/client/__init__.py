"""An async REST client for any Kubernetes API server (Shipyard's or a real one).

Controllers reach the API only through this package, never through the server's code: that is
what lets the same controllers run against kube-apiserver. They hold a `ReaderWriter` (the
protocols in `interfaces`), which `Client` implements over HTTP and `FakeClient` in memory.
Errors are the apimachinery Status error tree (`NotFound`, `Conflict`, `Expired`, ...).
"""

from shipyard.client.fake import FakeClient
from shipyard.client.interfaces import (
    GVK,
    EventType,
    NoKindMatchError,
    Object,
    ObjectList,
    OwnerReference,
    PatchType,
    Preconditions,
    PropagationPolicy,
    Reader,
    ReaderWriter,
    RESTMapper,
    RESTMapping,
    WatchEvent,
    Writer,
)
from shipyard.client.kubeconfig import KubeConfig, KubeconfigError, load_kubeconfig
from shipyard.client.mapping import DiscoveryRESTMapper
from shipyard.client.rest import USER_AGENT, Client, ClientClosedError

__all__ = [
    "GVK",
    "USER_AGENT",
    "Client",
    "ClientClosedError",
    "DiscoveryRESTMapper",
    "EventType",
    "FakeClient",
    "KubeConfig",
    "KubeconfigError",
    "NoKindMatchError",
    "Object",
    "ObjectList",
    "OwnerReference",
    "PatchType",
    "Preconditions",
    "PropagationPolicy",
    "RESTMapper",
    "RESTMapping",
    "Reader",
    "ReaderWriter",
    "WatchEvent",
    "Writer",
    "load_kubeconfig",
]
