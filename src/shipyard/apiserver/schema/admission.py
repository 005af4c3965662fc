"""One CRD version's admission pipeline, compiled once: prune, default, validate, CEL.

This is what the handlers call for every create, update and patch of a custom resource (and of
built-in kinds described by OpenAPI schemas). The order is kube-apiserver's: the decoder prunes
unknown fields (reported per `fieldValidation`) and applies defaults; then the strategy validates
the schema (plus embedded resources and list-type invariants) and runs the CEL rules. As upstream,
CEL is skipped when the object has type errors, with one extra cause saying so.

`admit` mutates `obj` in place and returns it in the result; it raises nothing. The handler turns
`strict_error` into a 400 (create/update) or 422 (patch) and `causes` into a 422 Invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.apimachinery.errors import StatusCause

from .cel import CelEngine, CompiledRules, compile_rules
from .defaulting import apply_defaults
from .pruning import prune, strict_error_message, unknown_field_warnings
from .validation import SchemaValidator

FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
_RULES_SKIPPED: StatusCause = {
    "reason": "FieldValueInvalid",
    "field": "",
    "message": 'Invalid value: "null": some validation rules were not checked because the object '
               "was invalid; correct the existing errors to complete validation",
}


@dataclass(slots=True)
class AdmissionResult:
    obj: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    causes: list[StatusCause] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)
    strict_error: str | None = None  # fieldValidation=Strict and unknown fields were sent

    @property
    def allowed(self) -> bool:
        return not self.causes and self.strict_error is None


class CompiledSchema:
    """Everything kube-apiserver derives from one openAPIV3Schema, built once."""

    def __init__(self, schema: dict[str, Any], rules: CompiledRules) -> None:
        self.schema = schema
        self.validator = SchemaValidator(schema)
        self.rules = rules

    @classmethod
    def from_schema(cls, schema: dict[str, Any], *, engine: CelEngine | None = None,
                    path: str = "spec.validation.openAPIV3Schema") -> CompiledSchema:
        return cls(schema, compile_rules(schema, path, engine))

    def admit(self, obj: dict[str, Any], old: dict[str, Any] | None = None, *,
              field_validation: str = "Strict") -> AdmissionResult:
        result = AdmissionResult(obj)
        result.unknown_fields = prune(obj, self.schema)
        if result.unknown_fields:
            if field_validation == "Strict":
                result.strict_error = strict_error_message(result.unknown_fields)
                return result
            if field_validation == "Warn":
                result.warnings = unknown_field_warnings(result.unknown_fields)
        apply_defaults(obj, self.schema)
        causes = self.validator.validate(obj)
        if not self.rules.empty:
            if any(c.get("reason") == "FieldValueTypeInvalid" for c in causes):
                causes.append(_RULES_SKIPPED.copy())
            else:
                causes += self.rules.validate(obj, old)
        result.causes = causes
        return result
