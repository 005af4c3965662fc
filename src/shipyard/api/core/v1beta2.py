"""cluster.x-k8s.io/v1beta2: the storage version of Cluster API's core kinds.

Why: this is the hub every other version converts to and the shape controllers work with. Field
names, enums and bounds follow upstream's ``api/core/v1beta2/*_types.go``; conditions are
``metav1.Condition``; what v1beta1 reported survives under ``status.deprecated.v1beta1``.

Not modelled in depth (kept as free-form objects, never dropped): ``spec.topology`` beyond its
class reference and version, and ``status.nodeInfo``.

Upstream's validating-webhook checks that CEL can express ride on the models as
``x-kubernetes-validations`` (:mod:`shipyard.api.core.rules`), so the CRDs reject at admission
what upstream's webhooks reject.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from shipyard.api.core import rules
from shipyard.api.core.rules import validations
from shipyard.api.core.v1beta1 import V1Beta1Condition
from shipyard.api.meta import (
    Condition,
    IntOrString,
    KubeModel,
    LabelSelector,
    Object,
    ObjectMetaDict,
    Time,
    list_map,
)

GROUP = "cluster.x-k8s.io"
VERSION = "v1beta2"
API_VERSION = f"{GROUP}/{VERSION}"

_MIN1 = ConfigDict(json_schema_extra={"minProperties": 1})
NAME_63 = Field(min_length=1, max_length=63)

# ------------------------------------------------------------------------------ shared types


class ContractVersionedObjectReference(KubeModel):
    """A reference whose version is resolved from the CRD's ``cluster.x-k8s.io/<contract>``
    label rather than stored (v1beta1 refs carried ``apiVersion``)."""

    kind: str = Field(min_length=1, max_length=63,
                      pattern=r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
    name: str = Field(min_length=1, max_length=253,
                      pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    api_group: str = Field(min_length=1, max_length=253,
                           pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ObjectMeta(KubeModel):
    """clusterv1.ObjectMeta: the labels and annotations templates stamp onto what they create."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class MachineAddress(KubeModel):
    type: Literal["Hostname", "ExternalIP", "InternalIP", "ExternalDNS", "InternalDNS"]
    address: str = Field(min_length=1, max_length=256)


class StatusVersion(KubeModel):
    version: str = Field(min_length=1, max_length=256)
    replicas: int | None = None


class V1Beta1DeprecatedConditions(KubeModel):
    conditions: list[V1Beta1Condition] | None = None


# ------------------------------------------------------------------------------ Cluster


class CIDRBlocks(KubeModel):
    cidr_blocks: list[str] | None = Field(default=None, max_length=100)


class ClusterNetwork(KubeModel):
    model_config = _MIN1
    api_server_port: int | None = Field(default=None, alias="apiServerPort", ge=1, le=65535)
    services: CIDRBlocks | None = None
    pods: CIDRBlocks | None = None
    service_domain: str | None = Field(default=None, min_length=1, max_length=253)


class APIEndpoint(KubeModel):
    model_config = _MIN1
    host: str | None = Field(default=None, min_length=1, max_length=512)
    port: int | None = Field(default=None, ge=1, le=65535)


class ClusterClassRef(KubeModel):
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(default=None, min_length=1, max_length=63)


class Topology(KubeModel):
    """Managed topology; its controlPlane/workers/variables are kept free-form here."""

    class_ref: ClusterClassRef
    version: str = Field(min_length=1, max_length=256,
                         json_schema_extra=validations(rules.TOPOLOGY_SEMVER))
    control_plane: Object | None = None
    workers: Object | None = None
    variables: list[Object] | None = Field(default=None, max_length=1000)


class ClusterAvailabilityGate(KubeModel):
    condition_type: str = Field(min_length=1, max_length=316)
    polarity: Literal["Positive", "Negative"] | None = None


class ClusterSpec(KubeModel):
    model_config = ConfigDict(json_schema_extra={
        "minProperties": 1, **validations(*rules.CLUSTER_REFS_NOT_REMOVED)})
    paused: bool | None = None
    cluster_network: ClusterNetwork | None = None
    control_plane_endpoint: APIEndpoint | None = None
    control_plane_ref: ContractVersionedObjectReference | None = None
    infrastructure_ref: ContractVersionedObjectReference | None = None
    topology: Topology | None = None
    availability_gates: list[ClusterAvailabilityGate] | None = list_map(
        "conditionType", max_items=32, min_items=1)


class FailureDomain(KubeModel):
    name: str = Field(min_length=1, max_length=256)
    control_plane: bool | None = None
    attributes: dict[str, str] | None = None


class ClusterInitializationStatus(KubeModel):
    model_config = _MIN1
    infrastructure_provisioned: bool | None = None
    control_plane_initialized: bool | None = None


class ReplicaCounters(KubeModel):
    desired_replicas: int | None = None
    replicas: int | None = None
    up_to_date_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None


class ClusterV1Beta1Deprecated(KubeModel):
    conditions: list[V1Beta1Condition] | None = None
    failure_reason: str | None = None
    failure_message: str | None = Field(default=None, min_length=1, max_length=10240)


class ClusterDeprecatedStatus(KubeModel):
    v1beta1: ClusterV1Beta1Deprecated | None = Field(default=None, alias="v1beta1")


class ClusterStatus(KubeModel):
    model_config = _MIN1
    conditions: list[Condition] | None = list_map("type", max_items=32)
    initialization: ClusterInitializationStatus | None = None
    control_plane: ReplicaCounters | None = None
    workers: ReplicaCounters | None = None
    failure_domains: list[FailureDomain] | None = list_map("name", max_items=100, min_items=1)
    phase: Literal["Pending", "Provisioning", "Provisioned", "Deleting", "Failed",
                   "Unknown"] | None = None
    observed_generation: int | None = Field(default=None, ge=1)
    deprecated: ClusterDeprecatedStatus | None = None


class Cluster(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    spec: ClusterSpec | None = None
    status: ClusterStatus | None = None


# ------------------------------------------------------------------------------ Machine


class Bootstrap(KubeModel):
    config_ref: ContractVersionedObjectReference | None = None
    data_secret_name: str | None = Field(default=None, min_length=0, max_length=253)


class MachineReadinessGate(KubeModel):
    condition_type: str = Field(min_length=1, max_length=316, pattern=(
        r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"))
    polarity: Literal["Positive", "Negative"] | None = None


class MachineDeletionSpec(KubeModel):
    model_config = _MIN1
    node_drain_timeout_seconds: int | None = Field(default=None, ge=0)
    node_volume_detach_timeout_seconds: int | None = Field(default=None, ge=0)
    node_deletion_timeout_seconds: int | None = Field(default=None, ge=0)


class MachineTaint(KubeModel):
    key: str = Field(min_length=1, max_length=317)
    value: str | None = Field(default=None, min_length=1, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    propagation: Literal["Always", "OnInitialization"]


class MachineSpec(KubeModel):
    cluster_name: str = NAME_63
    bootstrap: Bootstrap
    infrastructure_ref: ContractVersionedObjectReference
    version: str | None = Field(default=None, min_length=1, max_length=256,
                                json_schema_extra=validations(rules.SEMVER))
    provider_id: str | None = Field(default=None, alias="providerID", min_length=1,
                                    max_length=512)
    failure_domain: str | None = Field(default=None, min_length=1, max_length=256)
    min_ready_seconds: int | None = Field(default=None, ge=0)
    readiness_gates: list[MachineReadinessGate] | None = list_map(
        "conditionType", max_items=32, min_items=1)
    deletion: MachineDeletionSpec | None = None
    taints: list[MachineTaint] | None = list_map("key", "effect", max_items=64, min_items=1)


class MachineNodeReference(KubeModel):
    name: str = Field(min_length=1, max_length=253)


class MachineInitializationStatus(KubeModel):
    model_config = _MIN1
    infrastructure_provisioned: bool | None = None
    bootstrap_data_secret_created: bool | None = None


class MachineDeletionStatus(KubeModel):
    node_drain_start_time: Time | None = None
    wait_for_node_volume_detach_start_time: Time | None = None


class MachineV1Beta1Deprecated(KubeModel):
    conditions: list[V1Beta1Condition] | None = None
    failure_reason: str | None = None
    failure_message: str | None = Field(default=None, min_length=1, max_length=10240)


class MachineDeprecatedStatus(KubeModel):
    v1beta1: MachineV1Beta1Deprecated | None = Field(default=None, alias="v1beta1")


class MachineStatus(KubeModel):
    model_config = _MIN1
    conditions: list[Condition] | None = list_map("type", max_items=32)
    initialization: MachineInitializationStatus | None = None
    node_ref: MachineNodeReference | None = None
    node_info: Object | None = None
    last_updated: Time | None = None
    addresses: list[MachineAddress] | None = Field(default=None, max_length=32)
    phase: Literal["Pending", "Provisioning", "Provisioned", "Running", "Updating", "Deleting",
                   "Deleted", "Failed", "Unknown"] | None = None
    certificates_expiry_date: Time | None = None
    observed_generation: int | None = Field(default=None, ge=1)
    deletion: MachineDeletionStatus | None = None
    deprecated: MachineDeprecatedStatus | None = None


class Machine(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    # On the Machine's spec only: a MachineSpec is also a set's template, whose clusterName
    # upstream does not freeze.
    spec: MachineSpec | None = Field(
        default=None, json_schema_extra=validations(rules.CLUSTER_NAME_IMMUTABLE))
    status: MachineStatus | None = None


class MachineTemplateSpec(KubeModel):
    metadata: ObjectMeta | None = None
    spec: MachineSpec


# ------------------------------------------------------------------------------ MachineSet

DeletionOrder = Literal["Random", "Newest", "Oldest"]


class MachineNamingSpec(KubeModel):
    model_config = _MIN1
    template: str | None = Field(default=None, min_length=1, max_length=256,
                                 json_schema_extra=validations(rules.MACHINE_NAMING_RANDOM))


class MachineSetDeletionSpec(KubeModel):
    model_config = _MIN1
    order: DeletionOrder | None = None


class MachineSetSpec(KubeModel):
    model_config = ConfigDict(json_schema_extra=validations(
        *rules.SELECTOR_VALID, rules.MS_SELECTOR_MATCHES_TEMPLATE,
        rules.CLUSTER_NAME_IMMUTABLE))
    cluster_name: str = NAME_63
    replicas: int | None = Field(default=None, ge=0)
    selector: LabelSelector
    template: MachineTemplateSpec
    machine_naming: MachineNamingSpec | None = None
    deletion: MachineSetDeletionSpec | None = None


class MachineSetV1Beta1Deprecated(KubeModel):
    conditions: list[V1Beta1Condition] | None = None
    failure_reason: str | None = None
    failure_message: str | None = Field(default=None, min_length=1, max_length=10240)
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None


class MachineSetDeprecatedStatus(KubeModel):
    v1beta1: MachineSetV1Beta1Deprecated | None = Field(default=None, alias="v1beta1")


class MachineSetStatus(KubeModel):
    model_config = _MIN1
    conditions: list[Condition] | None = list_map("type", max_items=32)
    selector: str | None = Field(default=None, min_length=1, max_length=4096)
    replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    up_to_date_replicas: int | None = None
    observed_generation: int | None = Field(default=None, ge=1)
    deprecated: MachineSetDeprecatedStatus | None = None


class MachineSet(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    spec: MachineSetSpec | None = None
    status: MachineSetStatus | None = None


# ------------------------------------------------------------------------------ MachineDeployment


class RollingUpdate(KubeModel):
    model_config = _MIN1
    max_unavailable: IntOrString | None = Field(
        default=None, json_schema_extra=validations(rules.INT_OR_PERCENT))
    max_surge: IntOrString | None = Field(
        default=None, json_schema_extra=validations(rules.INT_OR_PERCENT))


class RolloutStrategy(KubeModel):
    model_config = _MIN1
    type: Literal["RollingUpdate", "OnDelete"]
    rolling_update: RollingUpdate | None = None


class MachineDeploymentRollout(KubeModel):
    model_config = _MIN1
    after: Time | None = None
    strategy: RolloutStrategy | None = None


class MachineDeploymentRemediation(KubeModel):
    model_config = _MIN1
    max_in_flight: IntOrString | None = Field(
        default=None, json_schema_extra=validations(rules.INT_OR_PERCENT))


class MachineDeploymentSpec(KubeModel):
    model_config = ConfigDict(json_schema_extra=validations(
        *rules.SELECTOR_VALID, rules.MD_SELECTOR_MATCHES_TEMPLATE,
        rules.CLUSTER_NAME_IMMUTABLE))
    cluster_name: str = NAME_63
    replicas: int | None = Field(default=None, ge=0)
    rollout: MachineDeploymentRollout | None = None
    selector: LabelSelector
    template: MachineTemplateSpec
    machine_naming: MachineNamingSpec | None = None
    remediation: MachineDeploymentRemediation | None = None
    deletion: MachineSetDeletionSpec | None = None
    paused: bool | None = None


class MachineDeploymentV1Beta1Deprecated(KubeModel):
    conditions: list[V1Beta1Condition] | None = None
    updated_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    unavailable_replicas: int | None = None


class MachineDeploymentDeprecatedStatus(KubeModel):
    v1beta1: MachineDeploymentV1Beta1Deprecated | None = Field(default=None, alias="v1beta1")


class MachineDeploymentStatus(KubeModel):
    model_config = _MIN1
    conditions: list[Condition] | None = list_map("type", max_items=32)
    observed_generation: int | None = Field(default=None, ge=1)
    selector: str | None = Field(default=None, min_length=1, max_length=4096)
    replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    up_to_date_replicas: int | None = None
    versions: list[StatusVersion] | None = list_map("version", max_items=100)
    phase: Literal["ScalingUp", "ScalingDown", "Running", "Failed", "Unknown"] | None = None
    deprecated: MachineDeploymentDeprecatedStatus | None = None


class MachineDeployment(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    spec: MachineDeploymentSpec | None = None
    status: MachineDeploymentStatus | None = None


# ------------------------------------------------------------------------------ MachineHealthCheck


class UnhealthyNodeCondition(KubeModel):
    type: str = Field(min_length=1)
    status: str = Field(min_length=1)
    timeout_seconds: int = Field(ge=0)


class UnhealthyMachineCondition(KubeModel):
    type: str = Field(min_length=1, max_length=316, pattern=(
        r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"),
        json_schema_extra=validations(rules.UNHEALTHY_MACHINE_CONDITION_TYPE))
    status: Literal["True", "False", "Unknown"]
    timeout_seconds: int = Field(ge=0)


class MachineHealthCheckChecks(KubeModel):
    model_config = _MIN1
    node_startup_timeout_seconds: int | None = Field(
        default=None, ge=0, json_schema_extra=validations(rules.MHC_NODE_STARTUP_TIMEOUT_SECONDS))
    unhealthy_node_conditions: list[UnhealthyNodeCondition] | None = Field(
        default=None, min_length=1, max_length=100,
        json_schema_extra={"x-kubernetes-list-type": "atomic"})
    unhealthy_machine_conditions: list[UnhealthyMachineCondition] | None = Field(
        default=None, min_length=1, max_length=100,
        json_schema_extra={"x-kubernetes-list-type": "atomic"})


class TriggerIf(KubeModel):
    model_config = _MIN1
    unhealthy_less_than_or_equal_to: IntOrString | None = Field(
        default=None, json_schema_extra=validations(rules.INT_OR_PERCENT))
    unhealthy_in_range: str | None = Field(default=None, min_length=1, max_length=32,
                                           pattern=r"^\[[0-9]+-[0-9]+\]$")


class RemediationTemplateReference(KubeModel):
    kind: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=253)
    api_version: str = Field(min_length=1, max_length=317)


class MachineHealthCheckRemediation(KubeModel):
    model_config = _MIN1
    trigger_if: TriggerIf | None = None
    template_ref: RemediationTemplateReference | None = None


class MachineHealthCheckSpec(KubeModel):
    model_config = ConfigDict(json_schema_extra=validations(
        *rules.MHC_SELECTOR, *rules.SELECTOR_VALID, rules.CLUSTER_NAME_IMMUTABLE))
    cluster_name: str = NAME_63
    selector: LabelSelector
    checks: MachineHealthCheckChecks | None = None
    remediation: MachineHealthCheckRemediation | None = None


class MachineHealthCheckDeprecatedStatus(KubeModel):
    v1beta1: V1Beta1DeprecatedConditions | None = Field(default=None, alias="v1beta1")


class MachineHealthCheckStatus(KubeModel):
    model_config = _MIN1
    conditions: list[Condition] | None = list_map("type", max_items=32)
    expected_machines: int | None = Field(default=None, ge=0)
    current_healthy: int | None = Field(default=None, ge=0)
    remediations_allowed: int | None = Field(default=None, ge=0)
    observed_generation: int | None = Field(default=None, ge=1)
    targets: list[Annotated[str, Field(min_length=1, max_length=253)]] | None = Field(
        default=None, max_length=10000, json_schema_extra={"x-kubernetes-list-type": "atomic"})
    deprecated: MachineHealthCheckDeprecatedStatus | None = None


class MachineHealthCheck(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    spec: MachineHealthCheckSpec | None = None
    status: MachineHealthCheckStatus | None = None


# ------------------------------------------------------------------------------ lists


class ClusterList(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    items: list[Cluster]


class MachineList(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    items: list[Machine]


class MachineSetList(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    items: list[MachineSet]


class MachineDeploymentList(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    items: list[MachineDeployment]


class MachineHealthCheckList(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    items: list[MachineHealthCheck]


KINDS: dict[str, type[KubeModel]] = {
    "Cluster": Cluster, "Machine": Machine, "MachineSet": MachineSet,
    "MachineDeployment": MachineDeployment, "MachineHealthCheck": MachineHealthCheck,
}
