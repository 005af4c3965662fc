"""The init lock: exactly one control-plane machine of a cluster runs `kubeadm init`.

Why: Machines of a new control plane are reconciled concurrently; two `kubeadm init`s would make
two clusters. As upstream's `pkg/locking` (control_plane_init_mutex.go), the lock is a ConfigMap
`<cluster>-lock` in the Cluster's namespace, owned by the Cluster (so it goes with it),
labelled `cluster.x-k8s.io/cluster-name`, whose `lock-information` is `{"machineName": ...}`.
Creating it is the atomic step (AlreadyExists = someone else holds it).

Contract: `lock(client, cluster, machine_name)` is True if this machine holds the lock (it
created it now or earlier). If the holder Machine no longer exists the stale lock is released
and False returned (the next attempt can take it). `unlock(client, cluster)` deletes it
(idempotent); the reconciler unlocks once the control plane is initialized, or when rendering
the init data failed.
"""

from __future__ import annotations

import json
from typing import Final

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import AlreadyExists, NotFound
from shipyard.client.interfaces import Object, ReaderWriter

LOCK_INFORMATION_KEY: Final = "lock-information"


def lock_name(cluster_name: str) -> str:
    return f"{cluster_name}-lock"


def _config_map(cluster: Object, machine_name: str) -> Object:
    meta = cluster["metadata"]
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": lock_name(meta["name"]), "namespace": meta["namespace"],
                         "labels": {c.CLUSTER_NAME_LABEL: meta["name"]},
                         "ownerReferences": [{"apiVersion": cluster["apiVersion"],
                                              "kind": "Cluster", "name": meta["name"],
                                              "uid": meta["uid"]}]},
            "data": {LOCK_INFORMATION_KEY: json.dumps({"machineName": machine_name})}}


def holder(config_map: Object) -> str | None:
    raw = (config_map.get("data") or {}).get(LOCK_INFORMATION_KEY)
    try:
        name = json.loads(raw).get("machineName") if raw else None
    except (ValueError, AttributeError):
        return None
    return str(name) if name else None


async def lock(client: ReaderWriter, cluster: Object, machine_name: str) -> bool:
    namespace = cluster["metadata"]["namespace"]
    name = lock_name(cluster["metadata"]["name"])
    try:
        existing = await client.get("v1", "ConfigMap", name, namespace)
    except NotFound:
        existing = None
    if existing is not None:
        owner = holder(existing)
        if owner == machine_name:
            return True
        if owner is not None:
            try:
                await client.get(c.GROUP + "/v1beta2", "Machine", owner, namespace)
                return False
            except NotFound:
                pass
        await unlock(client, cluster)  # the holder is gone (or unreadable): release
        return False
    try:
        await client.create(_config_map(cluster, machine_name))
    except AlreadyExists:
        return False
    return True


async def unlock(client: ReaderWriter, cluster: Object) -> None:
    try:
        await client.delete("v1", "ConfigMap", lock_name(cluster["metadata"]["name"]),
                            cluster["metadata"]["namespace"])
    except NotFound:
        pass
