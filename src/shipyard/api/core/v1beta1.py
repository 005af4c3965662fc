"""cluster.x-k8s.io/v1beta1: the previous version of Cluster API's core kinds, still served.

Why: manifests written for Cluster API v1.0-v1.10 (and controllers built against them) use this
shape: ``metav1.Duration`` strings for timeouts, ``strategy``/``rolloutAfter`` on a
MachineDeployment, ``corev1.ObjectReference`` refs with ``apiVersion``, MachineHealthCheck's
``maxUnhealthy``/``unhealthyRange``/``remediationTemplate``, and Cluster API's own condition
shape (with ``severity``). Newer-style conditions ride along under ``status.v1beta2``.
Objects are converted to and from v1beta2 by :mod:`shipyard.api.core.conversion`.
Upstream's webhook checks that CEL can express are ``x-kubernetes-validations`` here as in v1beta2
(:mod:`shipyard.api.core.rules`), on this version's field paths.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from shipyard.api.core import rules
from shipyard.api.core.rules import validations
from shipyard.api.meta import (
    Condition,
    IntOrString,
    KubeModel,
    LabelSelector,
    Object,
    ObjectMetaDict,
    Time,
)

GROUP = "cluster.x-k8s.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"

Duration = str
"""metav1.Duration on the wire, e.g. ``"10m0s"``."""


class V1Beta1Condition(KubeModel):
    """Cluster API's own v1beta1 condition (has ``severity``; ``reason``/``message`` optional)."""

    type: str = Field(min_length=1, max_length=256)
    status: str = Field(min_length=1)
    severity: str | None = Field(default=None, max_length=32)
    last_transition_time: Time
    reason: str | None = Field(default=None, min_length=1, max_length=256)
    message: str | None = Field(default=None, max_length=10240)


class ObjectReference(KubeModel):
    """corev1.ObjectReference."""

    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class ObjectMeta(KubeModel):
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class V1Beta2Conditions(KubeModel):
    conditions: list[Condition] | None = Field(default=None, max_length=32, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})


class ReplicaCounters(KubeModel):
    desired_replicas: int | None = None
    replicas: int | None = None
    up_to_date_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None


# ------------------------------------------------------------------------------ Cluster


class NetworkRanges(KubeModel):
    cidr_blocks: list[str]


class ClusterNetwork(KubeModel):
    api_server_port: int | None = Field(default=None, alias="apiServerPort")
    services: NetworkRanges | None = None
    pods: NetworkRanges | None = None
    service_domain: str | None = None


class APIEndpoint(KubeModel):
    host: str
    port: int


class Topology(KubeModel):
    class_: str = Field(alias="class")
    class_namespace: str | None = None
    version: str = Field(json_schema_extra=validations(rules.TOPOLOGY_SEMVER))
    rollout_after: Time | None = None
    control_plane: Object | None = None
    workers: Object | None = None
    variables: list[Object] | None = None


class ClusterAvailabilityGate(KubeModel):
    condition_type: str = Field(min_length=1, max_length=316)
    polarity: Literal["Positive", "Negative"] | None = None


class ClusterSpec(KubeModel):
    model_config = ConfigDict(json_schema_extra=validations(*rules.CLUSTER_REFS_NOT_REMOVED))
    paused: bool | None = None
    cluster_network: ClusterNetwork | None = None
    control_plane_endpoint: APIEndpoint | None = None
    control_plane_ref: ObjectReference | None = None
    infrastructure_ref: ObjectReference | None = None
    topology: Topology | None = None
    availability_gates: list[ClusterAvailabilityGate] | None = Field(
        default=None, max_length=32, json_schema_extra={
            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["conditionType"]})


class FailureDomainSpec(KubeModel):
    control_plane: bool | None = None
    attributes: dict[str, str] | None = None


class ClusterV1Beta2Status(KubeModel):
    conditions: list[Condition] | None = Field(default=None, max_length=32, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    control_plane: ReplicaCounters | None = None
    workers: ReplicaCounters | None = None


class ClusterStatus(KubeModel):
    failure_domains: dict[str, FailureDomainSpec] | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    phase: str | None = None
    infrastructure_ready: bool | None = None
    control_plane_ready: bool | None = None
    conditions: list[V1Beta1Condition] | None = None
    observed_generation: int | None = None
    v1beta2: ClusterV1Beta2Status | None = Field(default=None, alias="v1beta2")


class Cluster(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    spec: ClusterSpec | None = None
    status: ClusterStatus | None = None


# ------------------------------------------------------------------------------ Machine


class Bootstrap(KubeModel):
    config_ref: ObjectReference | None = None
    data_secret_name: str | None = None


class MachineReadinessGate(KubeModel):
    condition_type: str = Field(min_length=1, max_length=316)
    polarity: Literal["Positive", "Negative"] | None = None


class MachineSpec(KubeModel):
    cluster_name: str = Field(min_length=1)
    bootstrap: Bootstrap
    infrastructure_ref: ObjectReference
    version: str | None = Field(default=None, json_schema_extra=validations(rules.SEMVER))
    provider_id: str | None = Field(default=None, alias="providerID")
    failure_domain: str | None = None
    readiness_gates: list[MachineReadinessGate] | None = Field(
        default=None, max_length=32, json_schema_extra={
            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["conditionType"]})
    node_drain_timeout: Duration | None = None
    node_volume_detach_timeout: Duration | None = None
    node_deletion_timeout: Duration | None = None


class MachineAddress(KubeModel):
    type: str
    address: str


class MachineDeletionStatus(KubeModel):
    node_drain_start_time: Time | None = None
    wait_for_node_volume_detach_start_time: Time | None = None


class MachineStatus(KubeModel):
    node_ref: ObjectReference | None = None
    node_info: Object | None = None
    last_updated: Time | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    addresses: list[MachineAddress] | None = None
    phase: str | None = None
    certificates_expiry_date: Time | None = None
    bootstrap_ready: bool | None = None
    infrastructure_ready: bool | None = None
    observed_generation: int | None = None
    conditions: list[V1Beta1Condition] | None = None
    deletion: MachineDeletionStatus | None = None
    v1beta2: V1Beta2Conditions | None = Field(default=None, alias="v1beta2")


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
    spec: MachineSpec | None = None


# ------------------------------------------------------------------------------ MachineSet


class MachineNamingStrategy(KubeModel):
    template: str | None = Field(default=None,
                                 json_schema_extra=validations(rules.MACHINE_NAMING_RANDOM))


class MachineSetSpec(KubeModel):
    model_config = ConfigDict(json_schema_extra=validations(
        *rules.SELECTOR_VALID, rules.MS_SELECTOR_MATCHES_TEMPLATE,
        rules.CLUSTER_NAME_IMMUTABLE))
    cluster_name: str = Field(min_length=1)
    replicas: int | None = Field(default=None, ge=0)
    min_ready_seconds: int | None = None
    delete_policy: Literal["Random", "Newest", "Oldest"] | None = None
    selector: LabelSelector
    template: MachineTemplateSpec | None = None
    machine_naming_strategy: MachineNamingStrategy | None = None


class MachineSetV1Beta2Status(KubeModel):
    conditions: list[Condition] | None = Field(default=None, max_length=32, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    ready_replicas: int | None = None
    available_replicas: int | None = None
    up_to_date_replicas: int | None = None


class MachineSetStatus(KubeModel):
    selector: str | None = None
    replicas: int | None = None
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    observed_generation: int | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    conditions: list[V1Beta1Condition] | None = None
    v1beta2: MachineSetV1Beta2Status | None = Field(default=None, alias="v1beta2")


class MachineSet(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    spec: MachineSetSpec | None = None
    status: MachineSetStatus | None = None


# ------------------------------------------------------------------------------ MachineDeployment


class MachineRollingUpdateDeployment(KubeModel):
    max_unavailable: IntOrString | None = Field(
        default=None, json_schema_extra=validations(rules.INT_OR_PERCENT))
    max_surge: IntOrString | None = Field(
        default=None, json_schema_extra=validations(rules.INT_OR_PERCENT))
    delete_policy: Literal["Random", "Newest", "Oldest"] | None = None


class RemediationStrategy(KubeModel):
    max_in_flight: IntOrString | None = Field(
        default=None, json_schema_extra=validations(rules.INT_OR_PERCENT))


class MachineDeploymentStrategy(KubeModel):
    type: Literal["RollingUpdate", "OnDelete"] | None = None
    rolling_update: MachineRollingUpdateDeployment | None = None
    remediation: RemediationStrategy | None = None


class MachineDeploymentSpec(KubeModel):
    model_config = ConfigDict(json_schema_extra=validations(
        *rules.SELECTOR_VALID, rules.MD_SELECTOR_MATCHES_TEMPLATE,
        rules.CLUSTER_NAME_IMMUTABLE))
    cluster_name: str = Field(min_length=1)
    replicas: int | None = Field(default=None, ge=0)
    rollout_after: Time | None = None
    selector: LabelSelector
    template: MachineTemplateSpec
    strategy: MachineDeploymentStrategy | None = None
    machine_naming_strategy: MachineNamingStrategy | None = None
    min_ready_seconds: int | None = None
    revision_history_limit: int | None = None
    paused: bool | None = None
    progress_deadline_seconds: int | None = None


class MachineDeploymentV1Beta2Status(KubeModel):
    conditions: list[Condition] | None = Field(default=None, max_length=32, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    ready_replicas: int | None = None
    available_replicas: int | None = None
    up_to_date_replicas: int | None = None


class MachineDeploymentStatus(KubeModel):
    observed_generation: int | None = None
    selector: str | None = None
    replicas: int | None = None
    updated_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    unavailable_replicas: int | None = None
    phase: str | None = None
    conditions: list[V1Beta1Condition] | None = None
    v1beta2: MachineDeploymentV1Beta2Status | None = Field(default=None, alias="v1beta2")


class MachineDeployment(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    spec: MachineDeploymentSpec | None = None
    status: MachineDeploymentStatus | None = None


# ------------------------------------------------------------------------------ MachineHealthCheck


class UnhealthyCondition(KubeModel):
    type: str = Field(min_length=1)
    status: str = Field(min_length=1)
    timeout: Duration


class MachineHealthCheckSpec(KubeModel):
    model_config = ConfigDict(json_schema_extra=validations(
        *rules.MHC_SELECTOR, *rules.SELECTOR_VALID, rules.CLUSTER_NAME_IMMUTABLE))
    cluster_name: str = Field(min_length=1)
    selector: LabelSelector
    unhealthy_conditions: list[UnhealthyCondition] | None = None
    max_unhealthy: IntOrString | None = Field(
        default=None, json_schema_extra=validations(rules.INT_OR_PERCENT))
    unhealthy_range: str | None = Field(default=None, pattern=r"^\[[0-9]+-[0-9]+\]$")
    node_startup_timeout: Duration | None = Field(
        default=None, json_schema_extra=validations(rules.MHC_NODE_STARTUP_TIMEOUT_DURATION))
    remediation_template: ObjectReference | None = None


class MachineHealthCheckStatus(KubeModel):
    expected_machines: int | None = Field(default=None, ge=0)
    current_healthy: int | None = Field(default=None, ge=0)
    remediations_allowed: int | None = Field(default=None, ge=0)
    observed_generation: int | None = None
    targets: list[str] | None = None
    conditions: list[V1Beta1Condition] | None = None
    v1beta2: V1Beta2Conditions | None = Field(default=None, alias="v1beta2")


class MachineHealthCheck(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMetaDict | None = None
    spec: MachineHealthCheckSpec | None = None
    status: MachineHealthCheckStatus | None = None


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
