"""The machine's kubelet, reduced to what Cluster API observes: its Node, Ready, and a Lease.

Why: Cluster API's Machine controller finds a machine's Node by ``spec.providerID`` and reads
its Ready condition; MachineHealthCheck replaces machines whose Node is NotReady or Unknown.
A process machine runs no containers, so its kubelet only has to register the Node and keep it
fresh, as the real kubelet does, so that when the machine dies the Node goes Unknown.

Contract (`run(root)`, a daemon started by ``kubeadm init``/``join``; configuration in
``root/var/lib/kubelet/config.json``, credentials in the kubeconfig it names):
- registers the Node (``spec.providerID``, labels ``kubernetes.io/hostname``/``os``/``arch`` plus
  ``node-role.kubernetes.io/control-plane`` on control-plane machines and the kubeadm
  ``nodeRegistration`` labels/taints, addresses InternalIP and Hostname), then every
  `HEARTBEAT` seconds sets Ready=True (reason KubeletReady) and the pressure conditions False
  with a fresh ``lastHeartbeatTime``, and renews the Lease ``kube-node-lease/<node>``
  (``leaseDurationSeconds`` 40, holder the node).
- on control-plane machines it also runs `nodelifecycle.reconcile` (Nodes whose Lease is older
  than 40 s become Ready=Unknown, as kube-controller-manager does) and
  `signer.sign_pending` (node client certificates for joining workers) and
  `bootstrapsigner.sign` (cluster-info's JWS signatures) every `CONTROL_LOOP` s.
- runs the static Pods of ``/etc/kubernetes/manifests`` as processes (`staticpods`), as the
  real kubelet runs a kubeadm control plane's components; they stop with the kubelet.
- API errors are logged and retried on the next tick; the loop never exits on its own.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import json
import logging
import platform
from pathlib import Path
from typing import Any, Final, NotRequired, TypedDict

from shipyard.apimachinery.errors import AlreadyExists, Conflict, NotFound
from shipyard.client import Client
from shipyard.node.machine import rooted
from shipyard.node.staticpods import StaticPods

log = logging.getLogger(__name__)

CONFIG_PATH: Final = "/var/lib/kubelet/config.json"
HEARTBEAT: Final = 10.0
CONTROL_LOOP: Final = 2.0
LEASE_DURATION: Final = 40
NODE_LEASE_NAMESPACE: Final = "kube-node-lease"
CONTROL_PLANE_LABEL: Final = "node-role.kubernetes.io/control-plane"


class KubeletConfig(TypedDict):
    nodeName: str
    providerID: str
    address: str
    hostname: str
    kubeconfig: str
    kubeletVersion: str
    controlPlane: bool
    labels: dict[str, str]
    taints: list[dict[str, Any]]
    annotations: dict[str, str]
    nodeMonitorGracePeriodSeconds: NotRequired[float]


def save_config(root: Path, config: KubeletConfig) -> None:
    path = rooted(root, CONFIG_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))


def load_config(root: Path) -> KubeletConfig:
    config: KubeletConfig = json.loads(rooted(root, CONFIG_PATH).read_text())
    return config


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def conditions(heartbeat: str, transitions: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """The kubelet's four node conditions, healthy; ``transitions`` keeps each type's last
    (status, lastTransitionTime) so a transition time only moves when the status does."""
    wanted = (("MemoryPressure", "False", "KubeletHasSufficientMemory",
               "kubelet has sufficient memory available"),
              ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
              ("PIDPressure", "False", "KubeletHasSufficientPID",
               "kubelet has sufficient PID available"),
              ("Ready", "True", "KubeletReady", "kubelet is posting ready status"))
    out = []
    for type_, status, reason, message in wanted:
        previous = transitions.get(type_)
        since = previous[1] if previous and previous[0] == status else heartbeat
        out.append({"type": type_, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": heartbeat, "lastTransitionTime": since})
    return out


def node_manifest(config: KubeletConfig) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": config["hostname"], "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
              "beta.kubernetes.io/arch": "amd64", **config["labels"]}
    if config["controlPlane"]:
        labels[CONTROL_PLANE_LABEL] = ""
    spec: dict[str, Any] = {"providerID": config["providerID"]}
    if config["taints"]:
        spec["taints"] = config["taints"]
    meta: dict[str, Any] = {"name": config["nodeName"], "labels": labels}
    if config["annotations"]:
        meta["annotations"] = dict(config["annotations"])
    return {"apiVersion": "v1", "kind": "Node", "metadata": meta, "spec": spec}


@functools.cache
def os_image() -> str:
    """What the kubelet reports as the Node's OS image: os-release's PRETTY_NAME of the system
    it runs on (the node image's Debian in a container machine, the host's for a process
    machine)."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "PRETTY_NAME":
                return value.strip().strip('"')
    except OSError:
        pass
    return "Shipyard"


def node_status(config: KubeletConfig, previous: dict[str, Any] | None) -> dict[str, Any]:
    heartbeat = now_rfc3339()
    transitions = {c["type"]: (c.get("status", ""), c.get("lastTransitionTime", heartbeat))
                   for c in ((previous or {}).get("conditions") or [])}
    return {
        "addresses": [{"type": "InternalIP", "address": config["address"]},
                      {"type": "Hostname", "address": config["hostname"]}],
        "conditions": conditions(heartbeat, transitions),
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"kubeletVersion": config["kubeletVersion"],
                     "kubeProxyVersion": config["kubeletVersion"],
                     "operatingSystem": "linux", "architecture": "amd64",
                     "containerRuntimeVersion": "shipyard://process", "osImage": os_image(),
                     "kernelVersion": platform.release(), "machineID": "", "systemUUID": "",
                     "bootID": ""},
    }


async def register(client: Client, config: KubeletConfig) -> dict[str, Any]:
    """Create the Node if absent (as the kubelet's registerWithAPIServer, with its first
    status already in it, so no reader ever sees a Node without one); returns it."""
    manifest = {**node_manifest(config), "status": node_status(config, None)}
    try:
        node: dict[str, Any] = await client.create(manifest)
    except AlreadyExists:
        node = await client.get("v1", "Node", config["nodeName"])
        if node.get("spec", {}).get("providerID") != config["providerID"]:
            # A Node left by an earlier machine of the same name: take it over, as the
            # kubelet does when its providerID/externalID would otherwise clash.
            await client.delete("v1", "Node", config["nodeName"])
            node = await client.create(manifest)
    return node


async def heartbeat(client: Client, config: KubeletConfig) -> None:
    """Post Ready status and renew the Lease."""
    name = config["nodeName"]
    try:
        node = await client.get("v1", "Node", name)
    except NotFound:
        node = await register(client, config)
    node["status"] = node_status(config, node.get("status"))
    await client.update_status(node)
    await renew_lease(client, name)


async def renew_lease(client: Client, name: str) -> None:
    spec = {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION,
            "renewTime": now_micro()}
    try:
        lease = await client.get("coordination.k8s.io/v1", "Lease", name, NODE_LEASE_NAMESPACE)
    except NotFound:
        try:
            await client.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                 "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE},
                                 "spec": spec})
        except AlreadyExists:
            pass
        return
    lease["spec"] = {**(lease.get("spec") or {}), **spec}
    try:
        await client.update(lease)
    except Conflict:
        pass


async def run(root: Path) -> None:
    """The kubelet's main loop (see the module doc)."""
    config = load_config(root)
    kubeconfig = rooted(root, config["kubeconfig"])
    static_pods = StaticPods(root, node_name=config["nodeName"], host_ip=config["address"])
    try:  # on SIGTERM `shipyard node kubelet` exits and asyncio cancels this: pods stop too
        await _loop(root, config, kubeconfig, static_pods)
    finally:
        await asyncio.to_thread(static_pods.stop)


async def _loop(root: Path, config: KubeletConfig, kubeconfig: Path,
                static_pods: StaticPods) -> None:
    from shipyard.node import bootstrapsigner, nodelifecycle, signer

    grace = datetime.timedelta(seconds=config.get("nodeMonitorGracePeriodSeconds")
                               or nodelifecycle.GRACE_PERIOD.total_seconds())
    loop = asyncio.get_running_loop()
    next_heartbeat = 0.0
    async with Client.from_kubeconfig(kubeconfig, request_timeout=10.0) as client:
        while True:
            await asyncio.to_thread(static_pods.sync)
            if loop.time() >= next_heartbeat:
                try:
                    await heartbeat(client, config)
                    next_heartbeat = loop.time() + HEARTBEAT
                except Exception as e:  # a daemon: log, retry next tick
                    log.warning("heartbeat failed: %s", e)
                    next_heartbeat = loop.time() + 1.0
            if config["controlPlane"]:
                try:
                    await nodelifecycle.reconcile(client, grace=grace)
                    await signer.sign_pending(client, root)
                    await bootstrapsigner.sign(client)
                except Exception as e:  # a daemon: log, retry next tick
                    log.warning("control-plane loop failed: %s", e)
            await asyncio.sleep(CONTROL_LOOP if config["controlPlane"] else 1.0)
