"""kube-controller-manager's node lifecycle controller, reduced to what makes a dead machine
visible: a Node whose kubelet stopped renewing its Lease becomes Ready=Unknown.

Why: Cluster API (MachineHealthCheck, KubeadmControlPlane) reads a Node's Ready condition to
decide a machine is gone. On real Kubernetes that verdict comes from kube-controller-manager;
a Shipyard workload control plane has none, so every control-plane kubelet runs `reconcile`
(idempotent, so several running at once agree).

Contract, as upstream's monitorNodeHealth with the default grace period (40 s): a Node whose
Lease ``kube-node-lease/<node>`` (or, without one, its Ready ``lastHeartbeatTime``) is older
than the grace period (`GRACE_PERIOD`, or kube-controller-manager's
``--node-monitor-grace-period`` from the ClusterConfiguration's ``controllerManager.extraArgs``)
gets every condition the kubelet posted set to ``Unknown`` with reason
``NodeStatusUnknown`` and message "Kubelet stopped posting node status.", and the taints
``node.kubernetes.io/unreachable`` NoSchedule and NoExecute. A Node Ready=True again (its
kubelet came back) loses those taints.
"""

from __future__ import annotations

import datetime
from typing import Any, Final

from shipyard.apimachinery.errors import Conflict, NotFound
from shipyard.client import Client

GRACE_PERIOD: Final = datetime.timedelta(seconds=40)
UNREACHABLE_TAINT: Final = "node.kubernetes.io/unreachable"
UNKNOWN_REASON: Final = "NodeStatusUnknown"
UNKNOWN_MESSAGE: Final = "Kubelet stopped posting node status."


def _parse(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def last_seen(node: dict[str, Any], lease: dict[str, Any] | None) -> datetime.datetime | None:
    times = [_parse((lease or {}).get("spec", {}).get("renewTime"))]
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            times.append(_parse(condition.get("lastHeartbeatTime")))
    seen = [t for t in times if t is not None]
    return max(seen) if seen else None


def ready_status(node: dict[str, Any]) -> str:
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status", "Unknown"))
    return "Unknown"


def _unreachable_taints(now: str) -> list[dict[str, Any]]:
    return [{"key": UNREACHABLE_TAINT, "effect": "NoSchedule", "timeAdded": now},
            {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": now}]


async def reconcile(client: Client, now: datetime.datetime | None = None,
                    grace: datetime.timedelta = GRACE_PERIOD) -> None:
    now = now or datetime.datetime.now(datetime.UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    leases = {lease["metadata"]["name"]: lease for lease in
              (await client.list("coordination.k8s.io/v1", "Lease", "kube-node-lease"))["items"]}
    for node in (await client.list("v1", "Node"))["items"]:
        node.update(apiVersion="v1", kind="Node")  # list items carry neither
        name = node["metadata"]["name"]
        seen = last_seen(node, leases.get(name))
        taints = (node.get("spec") or {}).get("taints") or []
        tainted = any(t.get("key") == UNREACHABLE_TAINT for t in taints)
        try:
            if seen is not None and now - seen > grace:
                if ready_status(node) != "Unknown":
                    for condition in node["status"]["conditions"]:
                        condition.update(status="Unknown", reason=UNKNOWN_REASON,
                                         message=UNKNOWN_MESSAGE, lastTransitionTime=stamp)
                    await client.update_status(node)
                    node = await client.get("v1", "Node", name)
                if not tainted:
                    node.setdefault("spec", {})["taints"] = [
                        *((node.get("spec") or {}).get("taints") or []),
                        *_unreachable_taints(stamp)]
                    await client.update(node)
            elif tainted and ready_status(node) == "True":
                node["spec"]["taints"] = [t for t in taints if t.get("key") != UNREACHABLE_TAINT]
                await client.update(node)
        except (Conflict, NotFound):
            continue  # the kubelet wrote meanwhile, or the Node went: next pass
