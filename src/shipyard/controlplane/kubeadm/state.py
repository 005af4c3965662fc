"""What one KubeadmControlPlane reconcile observed, shared by its steps and its status summary,
and the small readings of a KCP or Machine they all need.

Contract: `State` holds the KCP and Cluster (mutable copies, patched at the end), the owned
Machines, which of them are outdated (with reasons) or have a Ready Node, and the etcd view
(members, leader, or the error that hid it). A member belongs to the Machine whose Node (or
own) name it carries; it is healthy when that Machine's Node is Ready, the Machine is not
deleting and no MachineHealthCheck failed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shipyard.api.core import constants as c
from shipyard.client.interfaces import GVK, Object
from shipyard.controllers import conditions

from . import machines as m
from .etcd import EtcdMember, EtcdTarget


@dataclass
class State:
    """What one reconcile learned, shared by the steps and the status summary."""
    kcp: Object
    cluster: Object
    machines: list[Object]
    outdated: dict[str, list[str]] = field(default_factory=dict)
    node_ready: set[str] = field(default_factory=set)
    members: list[EtcdMember] | None = None
    leader: str | None = None
    etcd_error: str = ""
    target: EtcdTarget | None = None
    waiting: str = ""

    @property
    def namespace(self) -> str:
        return str(self.kcp["metadata"]["namespace"])

    @property
    def cluster_name(self) -> str:
        return str(self.cluster["metadata"]["name"])

    def member_of(self, machine: Object) -> EtcdMember | None:
        node = node_name(machine)
        for member in self.members or []:
            if member["name"] in (node, machine["metadata"]["name"]):
                return member
        return None

    def healthy_members(self) -> set[str]:
        out = set()
        for machine in self.machines:
            member = self.member_of(machine)
            if member is not None and healthy(machine, self.node_ready):
                out.add(member["id"])
        return out


def node_name(machine: Object) -> str:
    return str(((machine.get("status") or {}).get("nodeRef") or {}).get("name") or "")


def healthy(machine: Object, node_ready: set[str]) -> bool:
    return (machine["metadata"]["name"] in node_ready and not m.is_deleting(machine)
            and not conditions.is_false(machine, c.MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION))


def external_etcd(kcp: Object) -> bool:
    spec = (kcp.get("spec") or {}).get("kubeadmConfigSpec") or {}
    return bool(((spec.get("clusterConfiguration") or {}).get("etcd") or {}).get("external"))


def max_surge(kcp: Object) -> int:
    strategy = ((kcp.get("spec") or {}).get("rollout") or {}).get("strategy") or {}
    return 0 if str((strategy.get("rollingUpdate") or {}).get("maxSurge", 1)) == "0" else 1


def owner_cluster(kcp: Object) -> str | None:
    for ref in kcp["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == "Cluster" and GVK(str(ref.get("apiVersion")), "").group == c.GROUP:
            return str(ref["name"])
    return None


def version_key(version: str) -> tuple[int, ...]:
    core = version.lstrip("v").split("-")[0].split("+")[0]
    return tuple(int(p) if p.isdigit() else 0 for p in core.split("."))




def initialized(s: State) -> bool:
    return bool(((s.kcp.get("status") or {}).get("initialization") or {}).get(
        "controlPlaneInitialized"))
