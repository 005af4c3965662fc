"""Cluster API's well-known strings: labels, annotations, finalizers, conditions, phases, Secrets.

Why: controllers, providers and tools (clusterctl, autoscalers, dashboards) find each other's
objects through these exact strings, so they are upstream's, character for character, and live
in one place (``api/core/v1beta2/common_types.go``, ``condition_consts.go``, ``*_types.go``,
``util/secret/consts.go``).
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "cluster.x-k8s.io"

# ----------------------------------------------------------------------------------- labels
CLUSTER_NAME_LABEL: Final = "cluster.x-k8s.io/cluster-name"
CLUSTER_TOPOLOGY_OWNED_LABEL: Final = "topology.cluster.x-k8s.io/owned"
MACHINE_CONTROL_PLANE_LABEL: Final = "cluster.x-k8s.io/control-plane"
MACHINE_CONTROL_PLANE_NAME_LABEL: Final = "cluster.x-k8s.io/control-plane-name"
MACHINE_DEPLOYMENT_NAME_LABEL: Final = "cluster.x-k8s.io/deployment-name"
MACHINE_SET_NAME_LABEL: Final = "cluster.x-k8s.io/set-name"
MACHINE_POOL_NAME_LABEL: Final = "cluster.x-k8s.io/pool-name"
WATCH_LABEL: Final = "cluster.x-k8s.io/watch-filter"
PROVIDER_NAME_LABEL: Final = "cluster.x-k8s.io/provider"
MANAGED_BY_LABEL: Final = "cluster.x-k8s.io/managed-by"
MACHINE_DEPLOYMENT_UNIQUE_LABEL: Final = "machine-template-hash"
NODE_ROLE_LABEL_PREFIX: Final = "node-role.kubernetes.io"
NODE_LABEL_DOMAIN: Final = "node.cluster.x-k8s.io"
DRAIN_LABEL: Final = "cluster.x-k8s.io/drain"

CONTRACT_LABEL_PREFIX: Final = "cluster.x-k8s.io/"
"""A provider CRD labelled ``cluster.x-k8s.io/<contract>: <versions>`` (versions joined by
``_``) declares which of its versions implement that Cluster API contract."""

# ----------------------------------------------------------------------------------- annotations
PAUSED_ANNOTATION: Final = "cluster.x-k8s.io/paused"
DELETE_MACHINE_ANNOTATION: Final = "cluster.x-k8s.io/delete-machine"
SKIP_REMEDIATION_ANNOTATION: Final = "cluster.x-k8s.io/skip-remediation"
REMEDIATE_MACHINE_ANNOTATION: Final = "cluster.x-k8s.io/remediate-machine"
DISABLE_MACHINE_CREATE_ANNOTATION: Final = "cluster.x-k8s.io/disable-machine-create"
EXCLUDE_NODE_DRAINING_ANNOTATION: Final = "machine.cluster.x-k8s.io/exclude-node-draining"
EXCLUDE_WAIT_FOR_NODE_VOLUME_DETACH_ANNOTATION: Final = (
    "machine.cluster.x-k8s.io/exclude-wait-for-node-volume-detach")
PRE_DRAIN_DELETE_HOOK_ANNOTATION_PREFIX: Final = "pre-drain.delete.hook.machine.cluster.x-k8s.io"
PRE_TERMINATE_DELETE_HOOK_ANNOTATION_PREFIX: Final = (
    "pre-terminate.delete.hook.machine.cluster.x-k8s.io")
MACHINE_SET_SKIP_PREFLIGHT_CHECKS_ANNOTATION: Final = (
    "machineset.cluster.x-k8s.io/skip-preflight-checks")
REVISION_ANNOTATION: Final = "machinedeployment.clusters.x-k8s.io/revision"
DESIRED_REPLICAS_ANNOTATION: Final = "machinedeployment.clusters.x-k8s.io/desired-replicas"
MAX_REPLICAS_ANNOTATION: Final = "machinedeployment.clusters.x-k8s.io/max-replicas"
CLUSTER_NAME_ANNOTATION: Final = "cluster.x-k8s.io/cluster-name"
CLUSTER_NAMESPACE_ANNOTATION: Final = "cluster.x-k8s.io/cluster-namespace"
MACHINE_ANNOTATION: Final = "cluster.x-k8s.io/machine"
OWNER_KIND_ANNOTATION: Final = "cluster.x-k8s.io/owner-kind"
OWNER_NAME_ANNOTATION: Final = "cluster.x-k8s.io/owner-name"
CONVERSION_DATA_ANNOTATION: Final = "cluster.x-k8s.io/conversion-data"
TEMPLATE_CLONED_FROM_NAME_ANNOTATION: Final = "cluster.x-k8s.io/cloned-from-name"
TEMPLATE_CLONED_FROM_GROUP_KIND_ANNOTATION: Final = "cluster.x-k8s.io/cloned-from-groupkind"
AUTOSCALER_MIN_SIZE_ANNOTATION: Final = (
    "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size")
AUTOSCALER_MAX_SIZE_ANNOTATION: Final = (
    "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size")
CLUSTERCTL_MOVE_ANNOTATION: Final = "clusterctl.cluster.x-k8s.io/move"
CLUSTERCTL_MOVE_HIERARCHY_ANNOTATION: Final = "clusterctl.cluster.x-k8s.io/move-hierarchy"
CLUSTERCTL_BLOCK_MOVE_ANNOTATION: Final = "clusterctl.cluster.x-k8s.io/block-move"
CLUSTERCTL_DELETE_FOR_MOVE_ANNOTATION: Final = "clusterctl.cluster.x-k8s.io/delete-for-move"

# ----------------------------------------------------------------------------------- finalizers
CLUSTER_FINALIZER: Final = "cluster.cluster.x-k8s.io"
MACHINE_FINALIZER: Final = "machine.cluster.x-k8s.io"
MACHINE_SET_FINALIZER: Final = "cluster.x-k8s.io/machineset"
MACHINE_DEPLOYMENT_FINALIZER: Final = "cluster.x-k8s.io/machinedeployment"
MACHINE_SET_TOPOLOGY_FINALIZER: Final = "machineset.topology.cluster.x-k8s.io"
MACHINE_DEPLOYMENT_TOPOLOGY_FINALIZER: Final = "machinedeployment.topology.cluster.x-k8s.io"

# ----------------------------------------------------------------------------------- conditions
# v1beta2 (metav1.Condition) types shared across kinds.
AVAILABLE_CONDITION: Final = "Available"
READY_CONDITION: Final = "Ready"
BOOTSTRAP_CONFIG_READY_CONDITION: Final = "BootstrapConfigReady"
INFRASTRUCTURE_READY_CONDITION: Final = "InfrastructureReady"
MACHINES_READY_CONDITION: Final = "MachinesReady"
MACHINES_UP_TO_DATE_CONDITION: Final = "MachinesUpToDate"
ROLLING_OUT_CONDITION: Final = "RollingOut"
SCALING_UP_CONDITION: Final = "ScalingUp"
SCALING_DOWN_CONDITION: Final = "ScalingDown"
REMEDIATING_CONDITION: Final = "Remediating"
DELETING_CONDITION: Final = "Deleting"
PAUSED_CONDITION: Final = "Paused"
# Cluster
CLUSTER_CONTROL_PLANE_INITIALIZED_CONDITION: Final = "ControlPlaneInitialized"
CLUSTER_CONTROL_PLANE_AVAILABLE_CONDITION: Final = "ControlPlaneAvailable"
CLUSTER_WORKERS_AVAILABLE_CONDITION: Final = "WorkersAvailable"
CLUSTER_CONTROL_PLANE_MACHINES_READY_CONDITION: Final = "ControlPlaneMachinesReady"
CLUSTER_WORKER_MACHINES_READY_CONDITION: Final = "WorkerMachinesReady"
CLUSTER_CONTROL_PLANE_MACHINES_UP_TO_DATE_CONDITION: Final = "ControlPlaneMachinesUpToDate"
CLUSTER_WORKER_MACHINES_UP_TO_DATE_CONDITION: Final = "WorkerMachinesUpToDate"
CLUSTER_REMOTE_CONNECTION_PROBE_CONDITION: Final = "RemoteConnectionProbe"
CLUSTER_TOPOLOGY_RECONCILED_CONDITION: Final = "TopologyReconciled"
# Machine
MACHINE_UP_TO_DATE_CONDITION: Final = "UpToDate"
MACHINE_UPDATING_CONDITION: Final = "Updating"
MACHINE_NODE_HEALTHY_CONDITION: Final = "NodeHealthy"
MACHINE_NODE_READY_CONDITION: Final = "NodeReady"
MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION: Final = "HealthCheckSucceeded"
MACHINE_OWNER_REMEDIATED_CONDITION: Final = "OwnerRemediated"
MACHINE_EXTERNALLY_REMEDIATED_CONDITION: Final = "ExternallyRemediated"

# Reasons shared across kinds.
AVAILABLE_REASON: Final = "Available"
NOT_AVAILABLE_REASON: Final = "NotAvailable"
AVAILABLE_UNKNOWN_REASON: Final = "AvailableUnknown"
READY_REASON: Final = "Ready"
NOT_READY_REASON: Final = "NotReady"
READY_UNKNOWN_REASON: Final = "ReadyUnknown"
UP_TO_DATE_REASON: Final = "UpToDate"
NOT_UP_TO_DATE_REASON: Final = "NotUpToDate"
UP_TO_DATE_UNKNOWN_REASON: Final = "UpToDateUnknown"
ROLLING_OUT_REASON: Final = "RollingOut"
NOT_ROLLING_OUT_REASON: Final = "NotRollingOut"
SCALING_UP_REASON: Final = "ScalingUp"
NOT_SCALING_UP_REASON: Final = "NotScalingUp"
SCALING_DOWN_REASON: Final = "ScalingDown"
NOT_SCALING_DOWN_REASON: Final = "NotScalingDown"
REMEDIATING_REASON: Final = "Remediating"
NOT_REMEDIATING_REASON: Final = "NotRemediating"
DELETING_REASON: Final = "Deleting"
NOT_DELETING_REASON: Final = "NotDeleting"
DELETION_COMPLETED_REASON: Final = "DeletionCompleted"
PAUSED_REASON: Final = "Paused"
NOT_PAUSED_REASON: Final = "NotPaused"
NO_REPLICAS_REASON: Final = "NoReplicas"
WAITING_FOR_REPLICAS_SET_REASON: Final = "WaitingForReplicasSet"
INTERNAL_ERROR_REASON: Final = "InternalError"
MACHINE_DELETING_WAITING_FOR_PRE_DRAIN_HOOK_REASON: Final = "WaitingForPreDrainHook"
MACHINE_DELETING_DRAINING_NODE_REASON: Final = "DrainingNode"
MACHINE_DELETING_WAITING_FOR_VOLUME_DETACH_REASON: Final = "WaitingForVolumeDetach"
MACHINE_DELETING_WAITING_FOR_PRE_TERMINATE_HOOK_REASON: Final = "WaitingForPreTerminateHook"
MACHINE_DELETING_WAITING_FOR_INFRASTRUCTURE_DELETION_REASON: Final = (
    "WaitingForInfrastructureDeletion")
MACHINE_DELETING_WAITING_FOR_BOOTSTRAP_DELETION_REASON: Final = "WaitingForBootstrapDeletion"
MACHINE_DELETING_DELETING_NODE_REASON: Final = "DeletingNode"

# v1beta1 condition types (kept under status.deprecated.v1beta1 in v1beta2).
V1BETA1_READY_CONDITION: Final = "Ready"
V1BETA1_INFRASTRUCTURE_READY_CONDITION: Final = "InfrastructureReady"
V1BETA1_BOOTSTRAP_READY_CONDITION: Final = "BootstrapReady"
V1BETA1_CONTROL_PLANE_READY_CONDITION: Final = "ControlPlaneReady"
V1BETA1_CONTROL_PLANE_INITIALIZED_CONDITION: Final = "ControlPlaneInitialized"
V1BETA1_DRAINING_SUCCEEDED_CONDITION: Final = "DrainingSucceeded"
V1BETA1_PRE_DRAIN_DELETE_HOOK_SUCCEEDED_CONDITION: Final = "PreDrainDeleteHookSucceeded"
V1BETA1_PRE_TERMINATE_DELETE_HOOK_SUCCEEDED_CONDITION: Final = "PreTerminateDeleteHookSucceeded"
V1BETA1_VOLUME_DETACH_SUCCEEDED_CONDITION: Final = "VolumeDetachSucceeded"
V1BETA1_MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION: Final = "HealthCheckSucceeded"
V1BETA1_MACHINE_OWNER_REMEDIATED_CONDITION: Final = "OwnerRemediated"
V1BETA1_MACHINES_CREATED_CONDITION: Final = "MachinesCreated"
V1BETA1_MACHINES_READY_CONDITION: Final = "MachinesReady"
V1BETA1_RESIZED_CONDITION: Final = "Resized"
V1BETA1_MACHINE_DEPLOYMENT_AVAILABLE_CONDITION: Final = "Available"
V1BETA1_REMEDIATION_ALLOWED_CONDITION: Final = "RemediationAllowed"
V1BETA1_NODE_HEALTHY_CONDITION: Final = "NodeHealthy"
# v1beta1 severities.
CONDITION_SEVERITY_ERROR: Final = "Error"
CONDITION_SEVERITY_WARNING: Final = "Warning"
CONDITION_SEVERITY_INFO: Final = "Info"

# ----------------------------------------------------------------------------------- phases
CLUSTER_PHASES: Final = ("Pending", "Provisioning", "Provisioned", "Deleting", "Failed", "Unknown")
MACHINE_PHASES: Final = ("Pending", "Provisioning", "Provisioned", "Running", "Updating",
                         "Deleting", "Deleted", "Failed", "Unknown")
MACHINE_DEPLOYMENT_PHASES: Final = ("ScalingUp", "ScalingDown", "Running", "Failed", "Unknown")

# ----------------------------------------------------------------------------------- Secrets
CLUSTER_SECRET_TYPE: Final = "cluster.x-k8s.io/secret"
KUBECONFIG_DATA_KEY: Final = "value"
KUBECONFIG_SECRET_PURPOSE: Final = "kubeconfig"
CA_SECRET_PURPOSE: Final = "ca"
ETCD_CA_SECRET_PURPOSE: Final = "etcd"
SERVICE_ACCOUNT_SECRET_PURPOSE: Final = "sa"
FRONT_PROXY_CA_SECRET_PURPOSE: Final = "proxy"
APISERVER_ETCD_CLIENT_SECRET_PURPOSE: Final = "apiserver-etcd-client"


def secret_name(cluster: str, purpose: str) -> str:
    """``<cluster>-<purpose>``, e.g. ``secret_name("c1", KUBECONFIG_SECRET_PURPOSE)``."""
    return f"{cluster}-{purpose}"


def kubeconfig_secret_name(cluster: str) -> str:
    return secret_name(cluster, KUBECONFIG_SECRET_PURPOSE)


def ca_secret_name(cluster: str) -> str:
    return secret_name(cluster, CA_SECRET_PURPOSE)
