"""The conversion seam between versions of a custom resource.

Why: a CRD served at several versions with ``conversion.strategy: Webhook`` needs something that
turns an object of one version into another. A real kube-apiserver reaches it over HTTPS as a
ConversionReview webhook (:mod:`shipyard.api.webhook`); Shipyard's own API server calls the very
same code in process, through this protocol, without a network hop:

* when it stores a write made at a non-storage version it calls
  ``convert(obj, storage_version)``;
* when it serves an object (get, list items, watch events, and the body of a write's
  response) at a version other than the stored one it calls ``convert(obj, requested_version)``;
* errors are :class:`shipyard.api.core.conversion.ConversionError` (a ``ValueError``); the server
  answers them as kube does a failed webhook conversion (500 InternalError).

``to_version`` is a full ``group/version`` (``cluster.x-k8s.io/v1beta1``), the same string a
ConversionReview carries in ``desiredAPIVersion``. A converter returns a new dict and never mutates
its argument.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from shipyard.api.core import conversion as core_conversion

__all__ = ["ConversionError", "Converter", "CoreConverter", "converter_for"]

ConversionError = core_conversion.ConversionError


@runtime_checkable
class Converter(Protocol):
    def convert(self, obj: dict[str, Any], to_version: str) -> dict[str, Any]:
        """``obj`` (any served version) as ``to_version`` (``group/version``)."""
        ...


class CoreConverter:
    """Converter for the core ``cluster.x-k8s.io`` kinds (Cluster, Machine, MachineSet,
    MachineDeployment, MachineHealthCheck).

    ``resolve_api_version(group, kind)`` gives the ``group/version`` of a referenced kind when a
    v1beta2 reference (which has only ``apiGroup``) is served as v1beta1; upstream reads it from
    the referenced CRD's ``cluster.x-k8s.io/<contract>`` label.
    """

    def __init__(self, resolve_api_version: core_conversion.VersionResolver | None = None
                 ) -> None:
        self.resolve_api_version = resolve_api_version

    def convert(self, obj: dict[str, Any], to_version: str) -> dict[str, Any]:
        group, _, version = to_version.rpartition("/")
        if group != "cluster.x-k8s.io":
            raise ConversionError(f"cannot convert to {to_version!r}: not cluster.x-k8s.io")
        return core_conversion.convert(obj, version,
                                       resolve_api_version=self.resolve_api_version)


def converter_for(group: str) -> Converter | None:
    """The converter for a group's CRDs, or None when the group has a single version."""
    if group == "cluster.x-k8s.io":
        return CoreConverter()
    return None
