"""Serving a custom resource at a version other than the one it is stored at.

Strategy ``None`` only relabels ``apiVersion``. Strategy ``Webhook`` needs real conversion:
kube-apiserver posts a ConversionReview to the CRD's webhook; Shipyard calls a `Converter`
registered for the CRD's group in process (the same code a webhook would run, e.g. Cluster API's
v1beta1 ⇄ v1beta2). The converter rides on the served `ResourceInfo` (``extra["converter"]``), so
every read and write path finds it without a lookup. A Webhook CRD with no converter registered
falls back to relabelling, and says so in the log once.

Reads convert stored → requested version; writes are admitted in the requested version (its
schema, its CEL rules) and converted to the storage version just before they are stored, as the
CRD handler of kube-apiserver does.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from shipyard.apimachinery import errors
from shipyard.apiserver.resources import ResourceInfo

log = logging.getLogger(__name__)


class Converter(Protocol):
    def convert(self, obj: dict[str, Any], to_version: str) -> dict[str, Any]:
        """``obj`` as ``to_version`` (``group/version``); never mutates ``obj``."""
        ...


def storage_group_version(info: ResourceInfo) -> str:
    version = info.storage_version or info.version
    return f"{info.group}/{version}" if info.group else version


def convert_object(info: ResourceInfo, obj: dict[str, Any], to: str) -> dict[str, Any]:
    if obj.get("apiVersion") == to:
        return obj
    converter: Converter | None = info.extra.get("converter")
    if converter is None:
        return {**obj, "apiVersion": to}
    try:
        converted = converter.convert(obj, to)
    except Exception as exc:
        raise errors.InternalError(
            f"conversion webhook for {info.group}/{info.version}, Kind={info.kind} failed: {exc}"
        ) from None
    if converted.get("apiVersion") != to:
        raise errors.InternalError(
            f"conversion webhook for {info.group}/{info.version}, Kind={info.kind} returned "
            f"invalid converted object: expected apiVersion {to}"
        )
    return converted


def to_request_version(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    return convert_object(info, obj, info.group_version)


def to_storage_version(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    return convert_object(info, obj, storage_group_version(info))
