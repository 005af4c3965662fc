"""The InMemoryBootstrapConfig controller: renders bootstrap data into a Secret.

Contract (v1beta1 BootstrapConfig contract): once a Machine owns the config (ownerReference of
kind Machine) and its Cluster's infrastructure is provisioned (as kubeadm's provider waits), it
writes the Secret named after the config (deterministic), type `cluster.x-k8s.io/secret`,
labelled `cluster.x-k8s.io/cluster-name`, controller-owned by the config (so garbage collection
removes it with the config), with `value` = a cloud-config document (`write_files` from
`spec.files`, `runcmd` from `spec.commands`) and `format` = `cloud-config`; then sets
`status.dataSecretName`, `status.ready`, `status.initialization.dataSecretCreated` and a Ready
condition. The data is written once: later spec changes do not rewrite it (as upstream, a
Machine's bootstrap data is immutable once consumed). Paused objects are left alone.
"""

from __future__ import annotations

from typing import Any

import yaml

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import AlreadyExists
from shipyard.client.interfaces import Object, ReaderWriter
from shipyard.controllers import conditions, ownership, pausing
from shipyard.controllers.kinds import CLUSTER, MACHINE
from shipyard.controllers.ownership import owner_machine_name
from shipyard.controllers.patching import patch, snapshot
from shipyard.controllers.predicates import cluster_update_relevant
from shipyard.runtime import Manager, Request, Result, logs

from . import types

log = logs.get_logger(__name__)


def render_cloud_config(spec: dict[str, Any]) -> str:
    doc: dict[str, Any] = {}
    files = [{k: f[k] for k in ("path", "content", "permissions") if k in f}
             for f in spec.get("files") or []]
    if files:
        doc["write_files"] = files
    commands = list(spec.get("commands") or [])
    if commands:
        doc["runcmd"] = commands
    return "## template: jinja\n#cloud-config\n" + (
        yaml.safe_dump(doc, sort_keys=False) if doc else "{}\n")



class InMemoryBootstrapConfigReconciler:
    def __init__(self, mgr: Manager) -> None:
        self.client: ReaderWriter = mgr.client
        self.configs = mgr.informer(types.CONFIG).cache
        self.machines = mgr.informer(MACHINE).cache
        self.clusters = mgr.informer(CLUSTER).cache

    def map_cluster(self, cluster: Object) -> list[Request]:
        namespace = cluster["metadata"]["namespace"]
        return [Request(namespace, o["metadata"]["name"]) for o in self.configs.list(
            namespace, f"{c.CLUSTER_NAME_LABEL}={cluster['metadata']['name']}")]

    async def reconcile(self, req: Request) -> Result:
        cached = self.configs.get(req.name, req.namespace)
        if cached is None or cached["metadata"].get("deletionTimestamp"):
            return Result()
        before, config = snapshot(cached), snapshot(cached)
        machine_name = owner_machine_name(config)
        machine = self.machines.get(machine_name, req.namespace) if machine_name else None
        cluster_name = str(machine["spec"]["clusterName"]) if machine else None
        cluster = self.clusters.get(cluster_name, req.namespace) if cluster_name else None
        if pausing.is_paused(cluster, config):
            return Result()
        if cluster is None or cluster_name is None:
            conditions.set_condition(config, c.READY_CONDITION, "False", "WaitingForMachine",
                                     "Waiting for a Machine to own this config")
            await patch(self.client, before, config)
            return Result()
        if (config.get("status") or {}).get("dataSecretName"):
            return Result()
        init = (cluster.get("status") or {}).get("initialization") or {}
        if not init.get("infrastructureProvisioned"):
            conditions.set_condition(config, c.READY_CONDITION, "False",
                                     "WaitingForClusterInfrastructure",
                                     "Waiting for the Cluster's infrastructure")
            await patch(self.client, before, config)
            return Result()
        secret: Object = {
            "apiVersion": "v1", "kind": "Secret", "type": c.CLUSTER_SECRET_TYPE,
            "metadata": {"name": req.name, "namespace": req.namespace,
                         "labels": {c.CLUSTER_NAME_LABEL: cluster_name},
                         "ownerReferences": [ownership.owner_reference(config, controller=True)]},
            "stringData": {"value": render_cloud_config(config.get("spec") or {}),
                           "format": "cloud-config"},
        }
        try:
            await self.client.create(secret)
        except AlreadyExists:
            pass
        status = config.setdefault("status", {})
        status["dataSecretName"] = req.name
        status["ready"] = True
        status["initialization"] = {"dataSecretCreated": True}
        conditions.set_condition(config, c.READY_CONDITION, "True", c.READY_REASON)
        await patch(self.client, before, config)
        return Result()


async def setup(mgr: Manager, concurrency: int = 10) -> None:
    reconciler = InMemoryBootstrapConfigReconciler(mgr)
    controller = await mgr.new_controller("inmemorybootstrapconfig", reconciler,
                                          for_=types.CONFIG,
                                          max_concurrent_reconciles=concurrency)
    # Only Cluster changes a config acts on (pause, infrastructure provisioned), not the status
    # counters that change with every Machine: waking all configs each time is quadratic.
    controller.watch(mgr.informer(CLUSTER), reconciler.map_cluster,
                     update_predicate=cluster_update_relevant)
