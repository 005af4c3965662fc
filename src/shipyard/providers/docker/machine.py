"""The DockerMachine controller: a Machine as a container running Shipyard's node agent.

Contract (CAPD's DockerMachine, v1beta2 InfraMachine contract): once its owner Machine has set
an ownerReference, a DockerMachine gets the finalizer
`dockermachine.infrastructure.cluster.x-k8s.io` and `spec.providerID`
``docker:////<container>`` (the container and its hostname are the Machine's name, as CAPD
names them). When the cluster's infrastructure is provisioned (its DockerCluster made the
network and load balancer) and the Machine's bootstrap data Secret exists:
1. the container is created and started from ``spec.customImage`` (default: Shipyard's node
   image, `shipyard build node-image`) on the cluster's network, with ``spec.extraMounts`` as
   bind mounts and CAPD's labels (cluster, role) plus our owner label →
   ``ContainerProvisioned`` True; control-plane containers are added to the load balancer;
2. the bootstrap data is applied from outside (`bootstrap`: files copied in, commands executed
   one by one) → ``BootstrapExecSucceeded`` True, once: a container whose success sentinel
   exists is never bootstrapped again (a restarted controller neither), one whose bootstrap
   began and never finished is failed (``BootstrapInterrupted``), never re-run half-way;
3. `status.addresses` (InternalIP and ExternalIP = the container's address; Hostname and
   InternalDNS = its name), `status.initialization.provisioned` and Ready True.
A running machine is re-checked every `RECHECK` seconds: a container that stopped or died gets
Ready False, reason ``ContainerNotRunning``, and stays so (never restarted, as a dead VM is not):
its Node goes NotReady and MachineHealthCheck remediates it.

Bad input: no engine (``DockerEngineUnreachable``), a missing image (``ImageNotFound``), a
container of that name that is not ours (``ContainerNameConflict``; it is never touched), a
container that exits at start (``ContainerExited`` with its last log lines), bootstrap data that
fails (``BootstrapFailed`` with the failing command's output) — each a condition with its reason.
Deletion removes the container (and its anonymous volumes), refreshes the load balancer and
drops the finalizer.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Final

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound
from shipyard.client.interfaces import Object
from shipyard.controllers import conditions
from shipyard.controllers.kinds import SECRET
from shipyard.controllers.patching import add_finalizer, patch, remove_finalizer
from shipyard.providers import contract
from shipyard.providers.docker import bootstrap, types
from shipyard.providers.docker import engine as eng
from shipyard.providers.docker.cluster import DockerClusterReconciler, cluster_labels
from shipyard.providers.docker.engine import ContainerSpec, Engine, EngineError
from shipyard.runtime import Manager, Request, Result, logs

log = logs.get_logger(__name__)

BOOTSTRAP_DATA_KEY: Final = "value"
RECHECK: Final = 5.0
RETRY: Final = 5.0


class DockerMachineReconciler(contract.MachineReconcilerBase):
    def __init__(self, mgr: Manager, engine: Engine, node_image: str,
                 clusters: DockerClusterReconciler) -> None:
        super().__init__(mgr, types.MACHINE)
        self.engine = engine
        self.node_image = node_image
        self.lb = clusters

    async def reconcile(self, req: Request) -> Result:
        loaded = self.load(req)
        if loaded is None or loaded.paused:
            return Result()
        before, infra, machine, cluster = (loaded.before, loaded.infra, loaded.machine,
                                           loaded.cluster)
        cluster_name = loaded.cluster_name or (infra["metadata"].get("labels") or {}).get(
            c.CLUSTER_NAME_LABEL)
        if loaded.deleting:
            return await self._delete(before, infra, machine, cluster_name)
        if machine is None or cluster_name is None or cluster is None:
            return Result()  # waiting for the Machine controller to adopt us
        changed = add_finalizer(infra, types.MACHINE_FINALIZER)
        spec = infra.setdefault("spec", {})
        container = container_name(machine)
        if not spec.get("providerID"):
            spec["providerID"] = types.provider_id(container)
            changed = True
        if changed:
            await patch(self.client, before, infra)
            return Result()
        requeue = await self._observe(req.namespace, cluster_name, cluster, infra, machine)
        await patch(self.client, before, infra)
        return Result(requeue_after=requeue)

    async def _observe(self, namespace: str, cluster_name: str, cluster: Object, infra: Object,
                       machine: Object) -> float | None:
        name = container_name(machine)
        owner = eng.owner_key(namespace, cluster_name)
        try:
            state = await asyncio.to_thread(self.engine.container, name, owner)
        except EngineError as e:
            self._set(infra, types.CONTAINER_PROVISIONED, "False", e.reason, str(e))
            return RETRY
        provisioned = ((infra.get("status") or {}).get("initialization") or {}).get(
            "provisioned")
        if state is None and provisioned:
            conditions.set_condition(infra, c.READY_CONDITION, "False", "ContainerNotFound",
                                     f"container {name} is gone; it is not re-created")
            return None
        if state is None:
            initialization = (cluster.get("status") or {}).get("initialization") or {}
            if not initialization.get("infrastructureProvisioned"):
                self._set(infra, types.CONTAINER_PROVISIONED, "False",
                          "WaitingForClusterInfrastructure",
                          "Waiting for the DockerCluster to be provisioned")
                return None
            secret_name = (machine["spec"].get("bootstrap") or {}).get("dataSecretName")
            if not secret_name:
                self._set(infra, types.CONTAINER_PROVISIONED, "False",
                          "WaitingForBootstrapData", "Waiting for the Machine's bootstrap data")
                return None
            try:
                state = await asyncio.to_thread(self._create, namespace, cluster_name, infra,
                                                machine)
            except EngineError as e:
                self._set(infra, types.CONTAINER_PROVISIONED, "False", e.reason, str(e))
                return RETRY
        if not state.running or not state.address:
            return await self._not_running(infra, name, state)
        conditions.set_condition(infra, types.CONTAINER_PROVISIONED, "True",
                                 types.CONTAINER_PROVISIONED_REASON)
        status = infra.setdefault("status", {})
        status["addresses"] = [{"type": "InternalIP", "address": state.address},
                               {"type": "ExternalIP", "address": state.address},
                               {"type": "Hostname", "address": name},
                               {"type": "InternalDNS", "address": name}]
        if _is_control_plane(machine):
            await asyncio.to_thread(self.lb.refresh, namespace, cluster_name)
        boot = conditions.get_condition(infra, types.BOOTSTRAP_EXEC_SUCCEEDED) or {}
        if boot.get("status") == "False" and boot.get("reason") not in (
                "Bootstrapping", "WaitingForBootstrapData"):
            return None  # failed for good: MachineHealthCheck's business
        if boot.get("status") != "True":
            failure = await self._bootstrap(namespace, infra, machine, name, state.address)
            if failure is not None:
                reason, message = failure
                if reason == "WaitingForBootstrapData":
                    self._set(infra, types.BOOTSTRAP_EXEC_SUCCEEDED, "False", reason, message)
                    return RETRY
                self._set(infra, types.BOOTSTRAP_EXEC_SUCCEEDED, "False", reason, message)
                conditions.set_condition(infra, c.READY_CONDITION, "False", reason, message)
                return None
            conditions.set_condition(infra, types.BOOTSTRAP_EXEC_SUCCEEDED, "True",
                                     types.BOOTSTRAP_EXEC_SUCCEEDED_REASON)
        status["initialization"] = {"provisioned": True}
        conditions.set_condition(infra, c.READY_CONDITION, "True", c.READY_REASON)
        return RECHECK

    async def _not_running(self, infra: Object, name: str, state: eng.ContainerState
                           ) -> float | None:
        provisioned = ((infra.get("status") or {}).get("initialization") or {}).get(
            "provisioned")
        try:
            tail = await asyncio.to_thread(self.engine.logs, name)
        except EngineError:
            tail = ""
        detail = f"container {name} is {state.status} (exit code {state.exit_code})" + (
            f": {tail[-500:]}" if tail else "")
        if provisioned:
            conditions.set_condition(infra, c.READY_CONDITION, "False", "ContainerNotRunning",
                                     detail)
            return None
        self._set(infra, types.CONTAINER_PROVISIONED, "False", "ContainerExited", detail)
        return None

    def _create(self, namespace: str, cluster: str, infra: Object, machine: Object
                ) -> eng.ContainerState:
        spec = infra.get("spec") or {}
        image = str(spec.get("customImage") or self.node_image)
        name = container_name(machine)
        if not self.engine.image_present(image):
            hint = (" (build it with `shipyard build node-image`)" if image == self.node_image
                    else "")
            raise eng.ImageNotFound(f"image {image} is not in the engine{hint}")
        binds = []
        for mount in spec.get("extraMounts") or []:
            if mount.get("hostPath") and mount.get("containerPath"):
                suffix = ":ro" if mount.get("readOnly") else ""
                binds.append(f"{mount['hostPath']}:{mount['containerPath']}{suffix}")
        role = eng.ROLE_CONTROL_PLANE if _is_control_plane(machine) else eng.ROLE_WORKER
        labels = cluster_labels(namespace, cluster, role)
        labels[eng.MACHINE_LABEL] = str(machine["metadata"]["name"])
        state = self.engine.run(ContainerSpec(
            name=name, image=image, network=eng.network_name(namespace, cluster),
            labels=labels, command=["shipyard", "node", "init"], hostname=name, binds=binds))
        log.info("container %s started for machine %s/%s", name, namespace,
                 machine["metadata"]["name"])
        return state

    async def _bootstrap(self, namespace: str, infra: Object, machine: Object, name: str,
                         address: str) -> tuple[str, str] | None:
        """Apply the bootstrap data once; (reason, message) on failure."""
        try:
            done = await asyncio.to_thread(bootstrap.state, self.engine, name)
        except EngineError as e:
            return e.reason, str(e)
        if done == "Succeeded":
            return None
        if done == "Started":
            return ("BootstrapInterrupted",
                    "the bootstrap began and never finished (controller restarted?); "
                    "it is not re-run half-way")
        secret_name = str((machine["spec"].get("bootstrap") or {}).get("dataSecretName"))
        try:
            secret = await self.client.get(*SECRET, secret_name, namespace)
        except NotFound:
            return "WaitingForBootstrapData", f"bootstrap data Secret {secret_name} is missing"
        value = (secret.get("data") or {}).get(BOOTSTRAP_DATA_KEY)
        if not value:
            return "BootstrapFailed", f"bootstrap data Secret {secret_name} has no value"
        user_data = base64.b64decode(value).decode(errors="replace")
        info: Any = {"root": "/", "providerID": str(infra["spec"]["providerID"]),
                     "address": address, "hostname": name}
        try:
            steps = bootstrap.plan(user_data, info)
            if steps.ignored:
                log.info("machine %s: cloud-init modules not applied in a container: %s",
                         name, ", ".join(steps.ignored))
            await asyncio.to_thread(bootstrap.apply, self.engine, name, steps)
        except bootstrap.BootstrapError as e:
            log.info("machine %s: bootstrap failed: %s", name, e.message)
            return e.reason, e.message
        except EngineError as e:
            return "BootstrapFailed", str(e)
        log.info("machine %s/%s bootstrapped", namespace, name)
        return None

    @staticmethod
    def _set(infra: Object, condition: str, status: conditions.Status, reason: str,
             message: str) -> None:
        conditions.set_condition(infra, condition, status, reason, message)
        conditions.set_condition(infra, c.READY_CONDITION, status, reason, message)

    async def _delete(self, before: Object, infra: Object, machine: Object | None,
                      cluster: str | None) -> Result:
        if types.MACHINE_FINALIZER not in (infra["metadata"].get("finalizers") or []):
            return Result()
        namespace = infra["metadata"]["namespace"]
        provider_id = str((infra.get("spec") or {}).get("providerID") or "")
        name = (provider_id.removeprefix(types.PROVIDER_ID_PREFIX) if provider_id
                else container_name(machine) if machine else "")
        if name and cluster:
            owner = eng.owner_key(namespace, cluster)
            try:
                await asyncio.to_thread(self.engine.remove, name, owner)
                await asyncio.to_thread(self.lb.refresh, namespace, cluster)
            except EngineError as e:
                conditions.set_condition(infra, c.READY_CONDITION, "False", e.reason,
                                         f"cannot remove container {name}: {e}")
                try:
                    await patch(self.client, before, infra)
                except NotFound:
                    return Result()
                return Result(requeue_after=RETRY)
            log.info("container %s removed", name)
        remove_finalizer(infra, types.MACHINE_FINALIZER)
        try:
            await patch(self.client, before, infra)
        except NotFound:
            pass
        return Result()


def container_name(machine: Object) -> str:
    return str(machine["metadata"]["name"])


def _is_control_plane(machine: Object) -> bool:
    return c.MACHINE_CONTROL_PLANE_LABEL in (machine["metadata"].get("labels") or {})
