"""The KubeadmControlPlane controller end to end on the session's API server: the core Cluster
and Machine controllers, the kubeadm bootstrap provider and the in-memory infrastructure provider
(whose machines register Ready Nodes in a real, per-cluster workload API server) run in-process
with the KCP controller. The in-memory machines run no etcd, so etcd membership is
`FakeEtcdMembership` (the gateway implementation is tested on a real etcd in test_etcd.py).

Covered: 1 → 3 → 1 replicas one Machine at a time with a Node each; a version rollout with
maxSurge 1 that never exceeds replicas + 1; remediation of a machine marked OwnerRemediated=False
(and its refusal with one replica); the kubeconfig Secret, certificates and status contract.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound
from shipyard.bootstrap.kubeadm import controller as kubeadm_bootstrap
from shipyard.bootstrap.kubeadm import types as kubeadm_types
from shipyard.client import Client, Object
from shipyard.controllers import setup as core
from shipyard.controlplane.kubeadm import controller as kcp_controller
from shipyard.controlplane.kubeadm import types
from shipyard.controlplane.kubeadm.etcd import EtcdTarget, FakeEtcdMembership
from shipyard.providers.inmemory import setup as inmemory
from shipyard.providers.inmemory import types as infra_types
from shipyard.runtime import Manager, Metrics
from tests.kube import Server
from tests.providers.harness import capi, condition, eventually, install_crd  # noqa: F401

V2 = "cluster.x-k8s.io/v1beta2"
KCP = types.API_VERSION
SETUPS = ["shipyard.controllers.cluster:setup", "shipyard.controllers.machine:setup"]


@pytest.fixture(scope="module")
def kcp_crds(capi: Server) -> Iterator[Server]:  # noqa: F811
    api = capi.client()
    for manifest in [*kubeadm_types.crd_manifests(), *types.crd_manifests()]:
        install_crd(api, manifest)
    yield capi
    api.pool.clear()


@dataclass
class Env:
    mgr: Manager
    kube: Client
    namespace: str
    etcd: FakeEtcdMembership

    async def get(self, api_version: str, kind: str, name: str) -> Object | None:
        try:
            return await self.kube.get(api_version, kind, name, self.namespace)
        except NotFound:
            return None

    async def machines(self) -> list[Object]:
        out = await self.kube.list(V2, "Machine", self.namespace,
                                   label_selector=f"{c.MACHINE_CONTROL_PLANE_NAME_LABEL}=cp")
        return list(out["items"])


@contextlib.asynccontextmanager
async def running(server: Server, namespace: str) -> AsyncIterator[Env]:
    kube = Client.from_kubeconfig(server.kubeconfig)
    options = core.Options()
    mgr = await core.build(kube, namespace=namespace, options=options, setups=SETUPS,
                           metrics=Metrics(CollectorRegistry()), graceful_shutdown_timeout=5,
                           informer_options={"backoff_initial": 0.05})
    workloads = await inmemory.setup(mgr, inmemory.InMemoryOptions())
    bootstrap = await kubeadm_bootstrap.setup(mgr)
    etcd = FakeEtcdMembership()
    kcp = await kcp_controller.setup(mgr, kcp_controller.KubeadmControlPlaneOptions(etcd=etcd))
    task = asyncio.create_task(mgr.run())
    try:
        yield Env(mgr, kube, namespace, etcd)
    finally:
        mgr.stop()
        with contextlib.suppress(Exception):
            await task
        await kcp.aclose()
        await bootstrap.aclose()
        await options.aclose()
        await workloads.aclose()
        await kube.close()


@pytest.fixture
async def env(kcp_crds: Server, namespace: str) -> AsyncIterator[Env]:
    async with running(kcp_crds, namespace) as e:
        yield e


async def create_cluster(env: Env, replicas: int, failure_domains: list[str] | None = None,
                         **spec: Any) -> None:
    ns = env.namespace
    for obj in [
        {"apiVersion": infra_types.API_VERSION, "kind": "InMemoryCluster",
         "metadata": {"name": "c1"},
         "spec": {"failureDomains": failure_domains} if failure_domains else {}},
        {"apiVersion": infra_types.API_VERSION, "kind": "InMemoryMachineTemplate",
         "metadata": {"name": "cp"}, "spec": {"template": {"spec": {}}}},
        {"apiVersion": KCP, "kind": "KubeadmControlPlane", "metadata": {"name": "cp"},
         "spec": {"replicas": replicas, "version": "v1.33.0",
                  "machineTemplate": {"spec": {"infrastructureRef": {
                      "apiGroup": infra_types.GROUP, "kind": "InMemoryMachineTemplate",
                      "name": "cp"}}},
                  "kubeadmConfigSpec": {"clusterConfiguration": {"apiServer": {}}},
                  **spec}},
        {"apiVersion": V2, "kind": "Cluster", "metadata": {"name": "c1"},
         "spec": {"infrastructureRef": {"apiGroup": infra_types.GROUP,
                                        "kind": "InMemoryCluster", "name": "c1"},
                  "controlPlaneRef": {"apiGroup": types.GROUP, "kind": "KubeadmControlPlane",
                                      "name": "cp"}}},
    ]:
        obj["metadata"]["namespace"] = ns
        await env.kube.create(obj)


def _node_ready_count(machines: list[Object]) -> int:
    return sum(1 for m in machines if ((m.get("status") or {}).get("nodeRef") or {}).get("name"))


class Watcher:
    """Samples the control-plane Machines until stopped: the largest count seen, and the most
    Machines seen at once without a Node or deleting (a bound on concurrent operations)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.max_machines = 0
        self.max_in_flight = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            machines = await self.env.machines()
            self.max_machines = max(self.max_machines, len(machines))
            in_flight = sum(1 for m in machines if m["metadata"].get("deletionTimestamp")
                            or not ((m.get("status") or {}).get("nodeRef") or {}).get("name"))
            self.max_in_flight = max(self.max_in_flight, in_flight)
            await asyncio.sleep(0.02)

    def __enter__(self) -> Watcher:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def settled(env: Env, replicas: int, version: str = "v1.33.0") -> list[Object]:
    """All `replicas` Machines have a Node and the KCP reports them ready and up to date."""
    async def check() -> list[Object] | None:
        machines = await env.machines()
        kcp = await env.get(KCP, "KubeadmControlPlane", "cp")
        status = (kcp or {}).get("status") or {}
        if len(machines) == replicas and _node_ready_count(machines) == replicas and \
                all(m["spec"]["version"] == version for m in machines) and \
                status.get("replicas") == replicas and \
                status.get("upToDateReplicas") == replicas and \
                status.get("readyReplicas") == replicas:
            return machines
        return None
    return await eventually(check, f"{replicas} ready control-plane machines", timeout=60)


async def workload_nodes(env: Env) -> set[str]:
    secret = await env.kube.get("v1", "Secret", "c1-kubeconfig", env.namespace)
    import base64

    from shipyard.controllers.remote import client_from_kubeconfig
    remote = client_from_kubeconfig(base64.b64decode(secret["data"]["value"]).decode())
    try:
        nodes = await remote.list("v1", "Node")
        return {n["metadata"]["name"] for n in nodes["items"]}
    finally:
        await remote.close()


async def test_scale_one_three_one(env: Env) -> None:
    await create_cluster(env, 1)
    [first] = await settled(env, 1)
    kcp = await env.get(KCP, "KubeadmControlPlane", "cp")
    assert kcp is not None
    assert kcp["status"]["initialization"]["controlPlaneInitialized"] is True
    assert condition(kcp, "Initialized")["status"] == "True"
    assert kcp["status"]["selector"] == "cluster.x-k8s.io/cluster-name=c1,cluster.x-k8s.io/" \
                                        "control-plane"
    labels = first["metadata"]["labels"]
    assert labels[c.CLUSTER_NAME_LABEL] == "c1" and labels[c.MACHINE_CONTROL_PLANE_NAME_LABEL] \
        == "cp" and c.MACHINE_CONTROL_PLANE_LABEL in labels
    assert first["metadata"]["ownerReferences"][0]["kind"] == "KubeadmControlPlane"
    config = await env.get(kubeadm_types.API_VERSION, "KubeadmConfig", first["metadata"]["name"])
    assert config is not None
    assert "initConfiguration" in config["spec"] and "joinConfiguration" not in config["spec"]
    for purpose in ("ca", "etcd", "proxy", "sa"):
        assert await env.get("v1", "Secret", f"c1-{purpose}") is not None

    async def cluster_sees_initialized() -> bool:
        cluster = await env.get(V2, "Cluster", "c1")
        return bool((((cluster or {}).get("status") or {}).get("initialization") or {}).get(
            "controlPlaneInitialized"))
    await eventually(cluster_sees_initialized, "Cluster status.initialization."
                                               "controlPlaneInitialized")

    with Watcher(env) as watcher:
        await env.kube.patch(KCP, "KubeadmControlPlane", "cp", {"spec": {"replicas": 3}},
                             env.namespace)
        machines = await settled(env, 3)
    assert watcher.max_in_flight <= 1, "machines were added more than one at a time"
    assert watcher.max_machines == 3
    joined = [m for m in machines if m["metadata"]["name"] != first["metadata"]["name"]]
    for m in joined:
        cfg = await env.get(kubeadm_types.API_VERSION, "KubeadmConfig", m["metadata"]["name"])
        assert cfg is not None and "controlPlane" in cfg["spec"]["joinConfiguration"]
    assert await workload_nodes(env) == {m["metadata"]["name"] for m in machines}
    kcp = await env.get(KCP, "KubeadmControlPlane", "cp")
    assert kcp is not None
    assert condition(kcp, "EtcdClusterHealthy")["status"] == "True"
    assert condition(kcp, "Available")["status"] == "True"

    # A member no Machine owns (a machine lost without cleanup) is removed.
    env.etcd.add_member(EtcdTarget(env.namespace, "c1"), "ghost")
    await env.kube.patch(KCP, "KubeadmControlPlane", "cp",
                         {"metadata": {"annotations": {"touch": "1"}}}, env.namespace)

    async def ghost_removed() -> bool:
        return ("remove", "ghost") in env.etcd.log
    await eventually(ghost_removed, "stale etcd member removed")
    env.etcd.log.clear()

    with Watcher(env) as watcher:
        await env.kube.patch(KCP, "KubeadmControlPlane", "cp", {"spec": {"replicas": 1}},
                             env.namespace)
        [left] = await settled(env, 1)
    assert watcher.max_in_flight <= 1, "machines were removed more than one at a time"
    removed = [name for op, name in env.etcd.log if op == "remove"]
    assert sorted(removed) == sorted(m["metadata"]["name"] for m in machines
                                     if m["metadata"]["name"] != left["metadata"]["name"])
    # The oldest goes first (creationTimestamp has 1 s resolution: any of the oldest).
    oldest = min(m["metadata"]["creationTimestamp"] for m in machines)
    assert removed[0] in {m["metadata"]["name"] for m in machines
                          if m["metadata"]["creationTimestamp"] == oldest}
    assert await eventually(lambda: _nodes_equal(env, {left["metadata"]["name"]}),
                            "removed Nodes gone")

    # One replica: remediation is refused with upstream's reason.
    await mark_unhealthy(env, left["metadata"]["name"])

    async def refused() -> dict[str, Any] | None:
        m = await env.get(V2, "Machine", left["metadata"]["name"])
        cond = condition(m, "OwnerRemediated")
        return cond if cond.get("reason") == "CannotBeRemediated" else None
    cond = await eventually(refused, "remediation refused")
    assert "less or equal to 1" in cond["message"]


async def _nodes_equal(env: Env, names: set[str]) -> bool:
    return await workload_nodes(env) == names


async def mark_unhealthy(env: Env, name: str) -> None:
    """What a MachineHealthCheck does to a machine it wants its owner to remediate."""
    now = "2026-01-01T00:00:00Z"
    machine = await env.kube.get(V2, "Machine", name, env.namespace)
    conds = [x for x in machine["status"].get("conditions") or []
             if x["type"] not in ("HealthCheckSucceeded", "OwnerRemediated")]
    conds += [{"type": "HealthCheckSucceeded", "status": "False", "reason": "UnhealthyNode",
               "message": "Node Ready is False", "lastTransitionTime": now},
              {"type": "OwnerRemediated", "status": "False", "reason": "WaitingForRemediation",
               "message": "Waiting for remediation", "lastTransitionTime": now}]
    await env.kube.patch(V2, "Machine", name, {"status": {"conditions": conds}}, env.namespace,
                         subresource="status")


async def test_version_rollout_with_max_surge_one(env: Env) -> None:
    await create_cluster(env, 3)
    before = {m["metadata"]["name"] for m in await settled(env, 3)}
    with Watcher(env) as watcher:
        await env.kube.patch(KCP, "KubeadmControlPlane", "cp",
                             {"spec": {"version": "v1.33.1"}}, env.namespace)

        async def rolling() -> bool:
            kcp = await env.get(KCP, "KubeadmControlPlane", "cp")
            return condition(kcp, "RollingOut").get("status") == "True"
        await eventually(rolling, "RollingOut=True")
        after = await settled(env, 3, "v1.33.1")
    assert watcher.max_machines <= 4, "rollout exceeded replicas + maxSurge"
    assert watcher.max_machines == 4
    assert watcher.max_in_flight <= 1
    assert not before & {m["metadata"]["name"] for m in after}
    kcp = await env.get(KCP, "KubeadmControlPlane", "cp")
    assert kcp is not None
    assert kcp["status"]["version"] == "v1.33.1"
    assert kcp["status"]["versions"] == [{"version": "v1.33.1", "replicas": 3}]
    assert condition(kcp, "RollingOut")["status"] == "False"
    assert condition(kcp, "MachinesUpToDate")["status"] == "True"


async def test_remediation_replaces_an_unhealthy_machine(env: Env) -> None:
    await create_cluster(env, 3, remediation={"maxRetry": 2})
    machines = await settled(env, 3)
    victim = machines[1]["metadata"]["name"]

    async def remediation_started() -> bool:
        m = await env.get(V2, "Machine", victim)
        if m is None or m["metadata"].get("deletionTimestamp"):
            return True
        if condition(m, "HealthCheckSucceeded").get("status") != "False":
            await mark_unhealthy(env, victim)  # again, if a concurrent status write lost it
        return False
    await eventually(remediation_started, "remediation started")

    async def replaced() -> list[Object] | None:
        ms = await env.machines()
        names = {m["metadata"]["name"] for m in ms}
        return ms if victim not in names and len(ms) == 3 and \
            _node_ready_count(ms) == 3 else None
    after = await eventually(replaced, "unhealthy machine replaced", timeout=60)
    new = [m for m in after if m["metadata"]["name"] not in
           {x["metadata"]["name"] for x in machines}]
    assert len(new) == 1
    assert victim in new[0]["metadata"]["annotations"][types.REMEDIATION_FOR_ANNOTATION]
    assert ("remove", victim) in env.etcd.log
    kcp = await env.get(KCP, "KubeadmControlPlane", "cp")
    assert kcp is not None
    assert kcp["status"]["lastRemediation"]["machine"] == victim
    assert types.REMEDIATION_IN_PROGRESS_ANNOTATION not in (
        kcp["metadata"].get("annotations") or {})


async def test_remediation_refused_when_etcd_would_lose_quorum(env: Env) -> None:
    await create_cluster(env, 3)
    machines = await settled(env, 3)
    first, second = machines[0]["metadata"]["name"], machines[1]["metadata"]["name"]
    # Two machines go unhealthy "at once": pause the KCP so it does not act on the first alone.
    paused = {"metadata": {"annotations": {c.PAUSED_ANNOTATION: ""}}}
    await env.kube.patch(KCP, "KubeadmControlPlane", "cp", paused, env.namespace)

    async def kcp_paused() -> bool:
        kcp = await env.get(KCP, "KubeadmControlPlane", "cp")
        return condition(kcp, "Paused").get("status") == "True"
    await eventually(kcp_paused, "KCP paused")

    async def both_marked() -> bool:
        # The Machine controller may write a status computed before our patch (conditions
        # are replaced whole): mark again until both conditions stick on both machines.
        done = True
        for name in (first, second):
            if condition(await env.get(V2, "Machine", name),
                         "HealthCheckSucceeded").get("status") != "False":
                await mark_unhealthy(env, name)
                done = False
        return done
    await eventually(both_marked, "both machines marked unhealthy")
    await env.kube.patch(KCP, "KubeadmControlPlane", "cp",
                         {"metadata": {"annotations": {c.PAUSED_ANNOTATION: None}}},
                         env.namespace)

    async def refused() -> dict[str, Any] | None:
        for name in (first, second):
            cond = condition(await env.get(V2, "Machine", name), "OwnerRemediated")
            if cond.get("reason") == "CannotBeRemediated":
                return cond
        return None
    cond = await eventually(refused, "remediation refused for quorum")
    assert cond["message"] == ("KubeadmControlPlane can't remediate this Machine because this "
                               "could result in etcd loosing quorum")
    assert {m["metadata"]["name"] for m in await env.machines()} == \
        {m["metadata"]["name"] for m in machines}
    assert not [x for x in env.etcd.log if x[0] == "remove"]

    async def kcp_reports() -> bool:
        kcp = await env.get(KCP, "KubeadmControlPlane", "cp")
        return (condition(kcp, "Remediating").get("status") == "True"
                and condition(kcp, "EtcdClusterHealthy").get("status") == "False"
                # 1 healthy member of 3: no majority
                and condition(kcp, "Available").get("status") == "False")
    await eventually(kcp_reports, "KCP reports remediation, etcd unhealthy, not available")


async def test_rollout_with_max_surge_zero_spreads_failure_domains_and_deletes(env: Env) -> None:
    await create_cluster(env, 3, failure_domains=["fd-a", "fd-b", "fd-c"],
                         rollout={"strategy": {"type": "RollingUpdate",
                                               "rollingUpdate": {"maxSurge": 0}}})
    machines = await settled(env, 3)
    assert sorted(m["spec"].get("failureDomain") for m in machines) == ["fd-a", "fd-b", "fd-c"]
    with Watcher(env) as watcher:
        await env.kube.patch(KCP, "KubeadmControlPlane", "cp",
                             {"spec": {"version": "v1.33.1"}}, env.namespace)
        after = await settled(env, 3, "v1.33.1")
    assert watcher.max_machines == 3, "maxSurge 0 must never add a machine above replicas"
    assert watcher.max_in_flight <= 1
    assert sorted(m["spec"].get("failureDomain") for m in after) == ["fd-a", "fd-b", "fd-c"]

    # Deleting the KCP removes its Machines, then its finalizer. (Deleting the Cluster first
    # waits forever: shipyard's Cluster controller waits for control-plane Machines before it
    # deletes the control plane, where upstream leaves them to the control plane; reported.)
    await env.kube.delete(KCP, "KubeadmControlPlane", "cp", env.namespace)

    async def gone() -> bool:
        return not await env.machines() and \
            await env.get(KCP, "KubeadmControlPlane", "cp") is None
    await eventually(gone, "control plane and its machines deleted", timeout=30)
    await env.kube.delete(V2, "Cluster", "c1", env.namespace)

    async def cluster_gone() -> bool:
        return await env.get(V2, "Cluster", "c1") is None
    await eventually(cluster_gone, "Cluster deleted", timeout=30)
