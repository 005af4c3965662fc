"""The façade end to end, over a trimmed Cluster API MachineDeployment (v1beta1) schema."""

from __future__ import annotations

import copy
from typing import Any

from shipyard.apiserver.schema.admission import CompiledSchema
from shipyard.apiserver.schema.structural import check_structural

REF: dict[str, Any] = {
    "type": "object", "x-kubernetes-map-type": "atomic",
    "properties": {k: {"type": "string"} for k in
                   ("apiVersion", "kind", "name", "namespace", "uid", "resourceVersion",
                    "fieldPath")},
}
INT_OR_STRING = {"anyOf": [{"type": "integer"}, {"type": "string"}],
                 "x-kubernetes-int-or-string": True}
MACHINE_DEPLOYMENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["clusterName", "selector", "template"],
            "x-kubernetes-validations": [
                {"rule": "self.clusterName == oldSelf.clusterName",
                 "message": "clusterName is immutable"}],
            "properties": {
                "clusterName": {"type": "string", "minLength": 1, "maxLength": 63},
                "replicas": {"type": "integer", "format": "int32"},
                "minReadySeconds": {"type": "integer", "format": "int32"},
                "revisionHistoryLimit": {"type": "integer", "format": "int32", "default": 1},
                "progressDeadlineSeconds": {"type": "integer", "format": "int32"},
                "paused": {"type": "boolean"},
                "selector": {
                    "type": "object", "x-kubernetes-map-type": "atomic",
                    "properties": {
                        "matchLabels": {"type": "object",
                                        "additionalProperties": {"type": "string"}},
                        "matchExpressions": {"type": "array", "x-kubernetes-list-type": "atomic",
                                             "items": {
                            "type": "object", "required": ["key", "operator"],
                            "properties": {"key": {"type": "string"},
                                           "operator": {"type": "string"},
                                           "values": {"type": "array",
                                                      "items": {"type": "string"}}}}},
                    },
                },
                "strategy": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string", "enum": ["RollingUpdate", "OnDelete"]},
                        "rollingUpdate": {"type": "object", "properties": {
                            "maxSurge": INT_OR_STRING,
                            "maxUnavailable": INT_OR_STRING,
                            "deletePolicy": {"type": "string",
                                             "enum": ["Random", "Newest", "Oldest"]},
                        }},
                    },
                },
                "template": {
                    "type": "object",
                    "properties": {
                        "metadata": {"type": "object", "properties": {
                            "labels": {"type": "object",
                                       "additionalProperties": {"type": "string"}},
                            "annotations": {"type": "object",
                                            "additionalProperties": {"type": "string"}}}},
                        "spec": {
                            "type": "object",
                            "required": ["bootstrap", "clusterName", "infrastructureRef"],
                            "properties": {
                                "clusterName": {"type": "string", "minLength": 1,
                                                "maxLength": 63},
                                "bootstrap": {"type": "object", "properties": {
                                    "configRef": REF,
                                    "dataSecretName": {"type": "string", "maxLength": 253}}},
                                "infrastructureRef": REF,
                                "version": {"type": "string"},
                                "failureDomain": {"type": "string"},
                                "nodeDrainTimeout": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
        "status": {"type": "object", "properties": {
            "phase": {"type": "string"}, "replicas": {"type": "integer", "format": "int32"},
            "observedGeneration": {"type": "integer", "format": "int64"}}},
    },
}

MD: dict[str, Any] = {
    "apiVersion": "cluster.x-k8s.io/v1beta1",
    "kind": "MachineDeployment",
    "metadata": {"name": "md-0", "namespace": "default"},
    "spec": {
        "clusterName": "capi-quickstart",
        "replicas": 3,
        "selector": {"matchLabels": {"cluster.x-k8s.io/cluster-name": "capi-quickstart"}},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"cluster.x-k8s.io/cluster-name": "capi-quickstart"}},
            "spec": {
                "clusterName": "capi-quickstart",
                "version": "v1.30.0",
                "bootstrap": {"configRef": {
                    "apiVersion": "bootstrap.cluster.x-k8s.io/v1beta1",
                    "kind": "KubeadmConfigTemplate", "name": "md-0"}},
                "infrastructureRef": {
                    "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
                    "kind": "DockerMachineTemplate", "name": "md-0"},
            },
        },
    },
}


def compiled() -> CompiledSchema:
    return CompiledSchema.from_schema(MACHINE_DEPLOYMENT)


def test_schema_is_structural() -> None:
    assert check_structural(MACHINE_DEPLOYMENT) == []


def test_valid_object_is_admitted_and_defaulted() -> None:
    obj = copy.deepcopy(MD)
    result = compiled().admit(obj, None, field_validation="Strict")
    assert result.allowed
    assert result.obj["spec"]["revisionHistoryLimit"] == 1
    assert result.warnings == [] and result.causes == []


def test_unknown_field_strict() -> None:
    obj = copy.deepcopy(MD)
    obj["spec"]["replias"] = 3
    result = compiled().admit(obj, None, field_validation="Strict")
    assert result.strict_error == 'strict decoding error: unknown field "spec.replias"'
    assert not result.allowed


def test_unknown_field_warn_and_ignore() -> None:
    obj = copy.deepcopy(MD)
    obj["spec"]["replias"] = 3
    obj["spec"]["template"]["spec"]["flavor"] = "big"
    result = compiled().admit(obj, None, field_validation="Warn")
    assert result.allowed
    assert result.warnings == ['unknown field "spec.replias"',
                               'unknown field "spec.template.spec.flavor"']
    assert "replias" not in result.obj["spec"]
    obj = copy.deepcopy(MD)
    obj["spec"]["replias"] = 3
    result = compiled().admit(obj, None, field_validation="Ignore")
    assert result.allowed and result.warnings == []
    assert result.unknown_fields == ["spec.replias"]


def test_schema_errors() -> None:
    obj = copy.deepcopy(MD)
    obj["spec"]["strategy"]["type"] = "Recreate"
    del obj["spec"]["template"]["spec"]["infrastructureRef"]
    obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 1.5
    result = compiled().admit(obj, None, field_validation="Strict")
    assert [(c["field"], c["message"]) for c in result.causes] == [
        ("spec.strategy.rollingUpdate.maxSurge",
         'Invalid value: "number": spec.strategy.rollingUpdate.maxSurge in body must be of type '
         'integer,string: "number"'),
        ("", 'Invalid value: "": "spec.strategy.rollingUpdate.maxSurge" must validate at least '
             "one schema (anyOf)"),
        ("spec.strategy.type",
         'Unsupported value: "Recreate": supported values: "RollingUpdate", "OnDelete"'),
        ("spec.template.spec.infrastructureRef", "Required value"),
        ("", 'Invalid value: "null": some validation rules were not checked because the object '
             "was invalid; correct the existing errors to complete validation"),
    ]


def test_transition_rule_on_update_only() -> None:
    schema = compiled()
    old = copy.deepcopy(MD)
    new = copy.deepcopy(MD)
    new["spec"]["clusterName"] = "other"
    assert schema.admit(copy.deepcopy(new), None).allowed
    result = schema.admit(new, old, field_validation="Strict")
    assert result.causes == [{"reason": "FieldValueInvalid", "field": "spec",
                              "message": 'Invalid value: "object": clusterName is immutable'}]


def test_null_in_non_nullable_field_is_dropped_before_validation() -> None:
    obj = copy.deepcopy(MD)
    obj["spec"]["paused"] = None
    result = compiled().admit(obj, None)
    assert result.allowed and "paused" not in result.obj["spec"]
