"""CRD schema admission: pure functions kube-apiserver applies to custom resources.

`CompiledSchema.from_schema(schema).admit(obj, old, field_validation=...)` is the entry point for
handlers; the pieces (structural checks, CRD validation, pruning, defaulting, OpenAPI validation,
CEL rules) are importable on their own.
"""

from .admission import AdmissionResult, CompiledSchema
from .cel import CelEngine, CelExprEngine, CompiledRules, compile_rules
from .crd import validate_crd
from .defaulting import apply_defaults
from .pruning import prune, strict_error_message, unknown_field_warnings
from .structural import check_structural
from .validation import SchemaValidator

__all__ = [
    "AdmissionResult", "CelEngine", "CelExprEngine", "CompiledRules", "CompiledSchema",
    "SchemaValidator", "apply_defaults", "check_structural", "compile_rules", "prune",
    "strict_error_message", "unknown_field_warnings", "validate_crd",
]
