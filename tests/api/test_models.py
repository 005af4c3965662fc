"""The typed models read upstream-shaped manifests and write them back unchanged."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

import shipyard.api.webhook
from shipyard.api import converting
from shipyard.api.core import constants, v1beta1, v1beta2
from shipyard.api.meta import to_dict
from tests.api import examples as ex

V1BETA1 = [ex.cluster_v1beta1, ex.machine_deployment_v1beta1, ex.mhc_v1beta1]
V1BETA2 = [ex.cluster_v1beta2, ex.machine_deployment_v1beta2, ex.mhc_v1beta2]


@pytest.mark.parametrize("make", V1BETA2, ids=lambda f: f.__name__)
def test_v1beta2_manifest_round_trips_through_its_model(make: Any) -> None:
    manifest = make()
    model = v1beta2.KINDS[manifest["kind"]].model_validate(manifest)
    assert to_dict(model) == manifest


@pytest.mark.parametrize("make", V1BETA1, ids=lambda f: f.__name__)
def test_v1beta1_manifest_round_trips_through_its_model(make: Any) -> None:
    manifest = make()
    model = v1beta1.KINDS[manifest["kind"]].model_validate(manifest)
    assert to_dict(model) == manifest


def test_unknown_fields_survive_a_typed_edit() -> None:
    manifest = ex.machine_deployment_v1beta2()
    manifest["spec"]["futureField"] = {"nested": [1, 2]}
    manifest["spec"]["template"]["spec"]["providerSpecific"] = "x"
    md = v1beta2.MachineDeployment.model_validate(manifest)
    assert md.spec is not None
    md.spec.replicas = 5
    out = to_dict(md)
    assert out["spec"]["replicas"] == 5
    assert out["spec"]["futureField"] == {"nested": [1, 2]}
    assert out["spec"]["template"]["spec"]["providerSpecific"] == "x"


def test_python_names_map_to_upstream_json_names() -> None:
    machine = v1beta2.MachineSpec(
        cluster_name="c1", bootstrap=v1beta2.Bootstrap(data_secret_name="s"),
        infrastructure_ref=v1beta2.ContractVersionedObjectReference(
            api_group="infrastructure.cluster.x-k8s.io", kind="DockerMachine", name="m"),
        provider_id="docker:////m")
    assert to_dict(machine) == {
        "clusterName": "c1", "bootstrap": {"dataSecretName": "s"},
        "infrastructureRef": {"apiGroup": "infrastructure.cluster.x-k8s.io",
                              "kind": "DockerMachine", "name": "m"},
        "providerID": "docker:////m"}


def test_models_validate_upstream_bounds_and_enums() -> None:
    manifest = ex.machine_deployment_v1beta2()
    manifest["spec"]["replicas"] = -1
    with pytest.raises(pydantic.ValidationError):
        v1beta2.MachineDeployment.model_validate(manifest)
    manifest = ex.machine_deployment_v1beta2()
    manifest["spec"]["rollout"]["strategy"]["type"] = "Recreate"
    with pytest.raises(pydantic.ValidationError):
        v1beta2.MachineDeployment.model_validate(manifest)


def test_constants_are_upstream_strings() -> None:
    assert constants.CLUSTER_NAME_LABEL == "cluster.x-k8s.io/cluster-name"
    assert constants.PAUSED_ANNOTATION == "cluster.x-k8s.io/paused"
    assert constants.REVISION_ANNOTATION == "machinedeployment.clusters.x-k8s.io/revision"
    assert constants.MACHINE_FINALIZER == "machine.cluster.x-k8s.io"
    assert constants.CLUSTER_FINALIZER == "cluster.cluster.x-k8s.io"
    assert constants.MACHINE_DEPLOYMENT_FINALIZER == "cluster.x-k8s.io/machinedeployment"
    assert constants.kubeconfig_secret_name("c1") == "c1-kubeconfig"
    assert constants.ca_secret_name("c1") == "c1-ca"
    assert constants.CONVERSION_DATA_ANNOTATION == "cluster.x-k8s.io/conversion-data"


def test_public_exports_are_pinned() -> None:
    assert set(converting.__all__) == {"ConversionError", "Converter", "CoreConverter",
                                       "converter_for"}
    assert set(shipyard.api.webhook.__all__) == {"ConversionWebhookApp", "review"}
    assert isinstance(converting.CoreConverter(), converting.Converter)
