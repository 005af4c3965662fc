"""The package's public surface is pinned."""

import shipyard.apiserver.schema as schema


def test_exported_members() -> None:
    assert set(schema.__all__) == {
        "AdmissionResult", "CelEngine", "CelExprEngine", "CompiledRules", "CompiledSchema",
        "SchemaValidator", "apply_defaults", "check_structural", "compile_rules", "prune",
        "strict_error_message", "unknown_field_warnings", "validate_crd",
    }
    assert all(hasattr(schema, name) for name in schema.__all__)
