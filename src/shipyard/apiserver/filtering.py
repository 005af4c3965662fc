"""Label and field selectors applied to stored entries, with the field labels each kind allows.

Custom resources may be selected by ``metadata.name``, ``metadata.namespace`` and their CRD's
``selectableFields``; built-ins by the fields kube-apiserver registers for them. Anything else is
400 ``field label not supported``, as upstream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard.apimachinery import errors
from shipyard.apimachinery.selectors import (
    FieldSelector,
    LabelSelector,
    field_value,
    parse_field_selector,
    parse_label_selector,
)
from shipyard.apiserver.resources import ResourceInfo
from shipyard.storage import Entry

_BUILTIN_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("", "namespaces"): frozenset({"status.phase"}),
    ("", "secrets"): frozenset({"type"}),
    ("", "nodes"): frozenset({"spec.unschedulable"}),
    ("", "events"): frozenset({
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
    }),
    ("events.k8s.io", "events"): frozenset({
        "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid",
        "regarding.apiVersion", "regarding.resourceVersion", "regarding.fieldPath", "reason",
        "reportingController", "type",
    }),
}
_ALWAYS = frozenset({"metadata.name", "metadata.namespace"})
# core/v1 Event's "source" field label means source.component.
_ALIASES = {("", "events", "source"): "source.component"}


@dataclass(frozen=True, slots=True)
class Filter:
    labels: LabelSelector | None
    fields: FieldSelector | None
    info: ResourceInfo

    @property
    def empty(self) -> bool:
        return self.labels is None and self.fields is None

    def matches_entry(self, entry: Entry) -> bool:
        if self.labels is not None and not self.labels.matches(entry.labels):
            return False
        if self.fields is not None:
            return self.matches_object(entry.object(), check_labels=False)
        return True

    def matches_object(self, obj: dict[str, Any], check_labels: bool = True) -> bool:
        if check_labels and self.labels is not None:
            labels = obj.get("metadata", {}).get("labels") or {}
            if not self.labels.matches(labels):
                return False
        if self.fields is not None:
            return self.fields.matches(_getter(obj, self.info))
        return True


def _getter(obj: dict[str, Any], info: ResourceInfo) -> Callable[[str], str | None]:
    def get(path: str) -> str | None:
        path = _ALIASES.get((info.group, info.resource, path), path)
        value = field_value(obj, path)
        if value is None and path == "metadata.namespace" and not info.namespaced:
            return ""
        return value if value is not None else ""

    return get


def allowed_fields(info: ResourceInfo) -> frozenset[str]:
    extra = {f.lstrip(".") for f in info.selectable_fields}
    declared = frozenset(info.extra.get("field_labels") or ())  # built-ins' own (builtins.py)
    return _ALWAYS | _BUILTIN_FIELDS.get((info.group, info.resource), frozenset()) | extra \
        | declared


def _unsupported_field(info: ResourceInfo, path: str) -> str:
    """kube 1.33's words: ConfigMaps validate field selectors declaratively and name the fields
    they allow; other kinds fail in their field-label conversion."""
    if (info.group, info.resource) == ("", "configmaps"):
        return (f'"{path}" is not a known field selector: only "metadata.name", '
                '"metadata.namespace"')
    return f"field label not supported: {path}"


def build_filter(info: ResourceInfo, label_selector: str, field_selector: str) -> Filter:
    labels = parse_label_selector(label_selector) if label_selector.strip() else None
    if labels is not None and labels.empty:
        labels = None
    fields = parse_field_selector(field_selector) if field_selector.strip() else None
    if fields is not None:
        allowed = allowed_fields(info)
        for path, _op, _value in fields.requirements:
            if path not in allowed:
                raise errors.BadRequest(_unsupported_field(info, path))
        if not fields.requirements:
            fields = None
    return Filter(labels, fields, info)


def single_name(flt: Filter) -> str | None:
    """The name a ``metadata.name=X`` field selector pins, to turn a scan into a lookup."""
    if flt.fields is None:
        return None
    for path, op, value in flt.fields.requirements:
        if path == "metadata.name" and op in ("=", "=="):
            return value
    return None
