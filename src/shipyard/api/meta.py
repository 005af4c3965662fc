"""Shared building blocks of the typed API models: the base model, metav1 types, schema markers.

Why: controllers read and write Cluster API objects through pydantic models, and the CRD schemas are
generated from the same models, so every Kubernetes schema extension that upstream's
controller-gen markers produce (int-or-string, list-type/map-keys, map-type,
preserve-unknown-fields, enums, bounds) is declared here once, next to the Python type it decorates.

Contract of every model:

* field names are upstream's JSON names (camelCase aliases; ``populate_by_name`` lets Python code
  use snake_case);
* ``extra="allow"``: a field this code does not know survives a read-modify-write;
* optional fields default to ``None`` and :func:`to_dict` dumps with ``exclude_unset`` and
  ``by_alias``, so ``to_dict(Model.model_validate(obj)) == obj`` for every valid ``obj``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

__all__ = [
    "Condition",
    "ConditionStatus",
    "IntOrString",
    "KubeModel",
    "LabelSelector",
    "LabelSelectorRequirement",
    "Object",
    "ObjectMetaDict",
    "Time",
    "list_map",
    "to_dict",
]

M = TypeVar("M", bound=BaseModel)


class KubeModel(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields kept."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow",
        serialize_by_alias=True,
    )


def to_dict(model: BaseModel) -> dict[str, Any]:
    """The wire form of ``model``: upstream field names, only the fields that were set."""
    return model.model_dump(by_alias=True, exclude_unset=True, mode="json")


def list_map(*keys: str, max_items: int | None = None, min_items: int | None = None) -> Any:
    """Field marker for ``+listType=map`` with ``+listMapKey`` keys (server-side apply merges by
    these keys, and the apiserver rejects duplicates)."""
    extra: dict[str, Any] = {"x-kubernetes-list-type": "map",
                             "x-kubernetes-list-map-keys": list(keys)}
    return Field(default=None, max_length=max_items, min_length=min_items,
                 json_schema_extra=extra)


IntOrString = Annotated[
    int | str,
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}],
                    "x-kubernetes-int-or-string": True}),
]
"""intstr.IntOrString: an absolute number or a percentage such as ``"10%"``."""

Time = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""metav1.Time as it is on the wire (RFC 3339); kept a string so round trips are exact."""

Object = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""Free-form JSON object the apiserver must not prune."""

ObjectMetaDict = Annotated[dict[str, Any], WithJsonSchema({"type": "object"})]
"""Top-level metadata: the apiserver owns its schema, so CRDs declare just an object."""

ConditionStatus = Literal["True", "False", "Unknown"]


class LabelSelectorRequirement(KubeModel):
    key: str
    operator: str
    values: list[str] | None = Field(default=None, json_schema_extra={
        "x-kubernetes-list-type": "atomic"})


class LabelSelector(KubeModel):
    """metav1.LabelSelector (atomic: replaced as a whole by merges)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-map-type": "atomic"})

    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-list-type": "atomic"})
    match_labels: dict[str, str] | None = None


class Condition(KubeModel):
    """metav1.Condition, the condition shape of v1beta2 objects."""

    type: str = Field(max_length=316, pattern=(
        r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"))
    status: ConditionStatus
    observed_generation: int | None = Field(default=None, ge=0)
    last_transition_time: Time
    reason: str = Field(min_length=1, max_length=1024,
                        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field(max_length=32768)
