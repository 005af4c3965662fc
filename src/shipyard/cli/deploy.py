"""The controllers as a workload of a real management cluster: the manifests `shipyard init`
applies when the management cluster is not the embedded plane.

One Deployment (`shipyard-controller-manager` in `capi-system`) runs `shipyard controllers`
for the recorded providers with leader election on a Lease in its namespace, under its own
ServiceAccount bound to a ClusterRole holding what the controllers touch: every
`*.cluster.x-k8s.io` kind, Secrets and ConfigMaps (kubeconfigs, bootstrap data, init locks),
Events, Leases, Namespaces and CRDs (read, and create for providers added later).
`apply(client, manifests)` creates each object or replaces its spec, so re-running `init`
converges rather than failing.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "capi-system"
NAME = "shipyard-controller-manager"
LABELS = {"cluster.x-k8s.io/provider": "cluster-api", "control-plane": "controller-manager"}


def manifests(image: str, provider_args: list[str]) -> list[dict[str, Any]]:
    rules = [
        {"apiGroups": ["cluster.x-k8s.io", "bootstrap.cluster.x-k8s.io",
                       "controlplane.cluster.x-k8s.io", "infrastructure.cluster.x-k8s.io",
                       "clusterctl.cluster.x-k8s.io"],
         "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"],
         "verbs": ["create", "patch", "update"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]},
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
         "verbs": ["get", "list", "watch", "create"]},
    ]
    command = ["shipyard", "controllers", "--leader-elect",
               "--leader-election-namespace", NAMESPACE,
               "--metrics-bind-address", "0.0.0.0:8080", *provider_args]
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": LABELS}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": NAME, "labels": LABELS}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": NAME, "labels": LABELS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": NAME},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": LABELS},
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": LABELS},
             "template": {
                 "metadata": {"labels": LABELS},
                 "spec": {
                     "serviceAccountName": NAME,
                     "terminationGracePeriodSeconds": 10,
                     "containers": [{
                         "name": "manager", "image": image, "command": command,
                         "ports": [{"name": "metrics", "containerPort": 8080}],
                         "securityContext": {"allowPrivilegeEscalation": False,
                                             "capabilities": {"drop": ["ALL"]},
                                             "runAsNonRoot": True},
                     }],
                 },
             },
         }},
    ]


async def apply(client: Any, objects: list[dict[str, Any]]) -> None:
    from shipyard.apimachinery.errors import AlreadyExists

    for obj in objects:
        try:
            await client.create(obj)
        except AlreadyExists:
            meta = obj["metadata"]
            current = await client.get(obj["apiVersion"], obj["kind"], meta["name"],
                                       meta.get("namespace"))
            for key in ("spec", "rules", "roleRef", "subjects"):
                if key in obj:
                    current[key] = obj[key]
            await client.update(current)
