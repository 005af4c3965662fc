"""The ProcessMachine controller: boots a Machine as a local process tree running the node
agent, and reports what the agent reported.

Contract (the v1beta2 InfraMachine contract): once its owner Machine has set an ownerReference,
a ProcessMachine gets the finalizer `processmachine.infrastructure.cluster.x-k8s.io` and
`spec.providerID` `process://<cluster>/<machine>`. When the Machine's bootstrap data Secret
(`spec.bootstrap.dataSecretName`, key `value`) exists, the `Supervisor` allocates the machine's
loopback address and directory and starts ``shipyard node run`` with that user-data (once: a
machine is never started twice, nor restarted). `status.addresses` then lists InternalIP (the
address), Hostname and InternalDNS (the Machine's name, also the Node's).

Conditions follow the agent's ``status.json``: while it boots, `BootstrapSucceeded` and `Ready`
are False with reason `Bootstrapping`; a failed boot makes both False with the agent's reason
(`RuncmdFailed`, `InvalidUserData`, ...) and message; a successful one sets
`status.initialization.provisioned` and both True. A machine whose process has gone (killed,
crashed) gets Ready=False, reason `ProcessExited`, and stays dead, as a dead VM does: the
Machine's Node goes NotReady and MachineHealthCheck remediates it. A running machine is
re-checked every `RECHECK` seconds.

Deletion stops the machine's process tree, removes its files (freeing its address) and drops
the finalizer; its Node stays until the Machine controller deletes it.
"""

from __future__ import annotations

import asyncio
import base64

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound
from shipyard.client.interfaces import Object
from shipyard.controllers import conditions
from shipyard.controllers.kinds import SECRET
from shipyard.controllers.patching import add_finalizer, patch, remove_finalizer
from shipyard.providers import contract
from shipyard.providers.process import types
from shipyard.providers.process.supervisor import Supervisor
from shipyard.runtime import Manager, Request, Result, logs

log = logs.get_logger(__name__)

BOOTSTRAP_DATA_KEY = "value"
BOOT_POLL = 0.5
RECHECK = 5.0




class ProcessMachineReconciler(contract.MachineReconcilerBase):
    def __init__(self, mgr: Manager, supervisor: Supervisor) -> None:
        super().__init__(mgr, types.MACHINE)
        self.supervisor = supervisor

    async def reconcile(self, req: Request) -> Result:
        loaded = self.load(req)
        if loaded is None or loaded.paused:
            return Result()
        before, infra, machine = loaded.before, loaded.infra, loaded.machine
        cluster_name = loaded.cluster_name
        if infra["metadata"].get("deletionTimestamp"):
            return await self._delete(before, infra)
        if machine is None or cluster_name is None:
            return Result()  # waiting for the Machine controller to adopt us
        changed = add_finalizer(infra, types.MACHINE_FINALIZER)
        spec = infra.setdefault("spec", {})
        if not spec.get("providerID"):
            spec["providerID"] = types.provider_id(cluster_name, str(machine["metadata"]["name"]))
            changed = True
        if changed:
            await patch(self.client, before, infra)
            return Result()
        requeue = await self._observe(req, infra, machine)
        await patch(self.client, before, infra)
        return Result(requeue_after=requeue)

    async def _observe(self, req: Request, infra: Object, machine: Object) -> float | None:
        namespace, name = req.namespace, req.name
        hostname = str(machine["metadata"]["name"])
        if not self.supervisor.started(namespace, name):
            secret_name = (machine["spec"].get("bootstrap") or {}).get("dataSecretName")
            user_data = await self._user_data(namespace, secret_name) if secret_name else None
            if user_data is None:
                self._set(infra, "False", "WaitingForBootstrapData",
                          "Waiting for the Machine's bootstrap data secret")
                return None
            pid = await asyncio.to_thread(
                self.supervisor.start, namespace, name, user_data=user_data,
                provider_id=str(infra["spec"]["providerID"]), hostname=hostname)
            log.info("started machine %s/%s (pid %d)", namespace, name, pid)
        address = self.supervisor.address(namespace, name)
        status = infra.setdefault("status", {})
        status["addresses"] = [{"type": "InternalIP", "address": address},
                               {"type": "Hostname", "address": hostname},
                               {"type": "InternalDNS", "address": hostname}]
        boot = self.supervisor.status(namespace, name) or {}
        alive = self.supervisor.alive(namespace, name)
        phase = boot.get("phase")
        if phase == "Failed":
            reason = str(boot.get("reason") or "BootstrapFailed")
            self._set(infra, "False", reason, str(boot.get("message") or ""))
            return None
        if phase == "Running":
            status["initialization"] = {"provisioned": True}
            conditions.set_condition(infra, types.BOOTSTRAP_SUCCEEDED_CONDITION, "True",
                                     c.READY_REASON)
            if alive:
                conditions.set_condition(infra, c.READY_CONDITION, "True", c.READY_REASON)
            else:
                conditions.set_condition(infra, c.READY_CONDITION, "False", "ProcessExited",
                                         "The machine's process tree is gone")
                return None
            return RECHECK
        if not alive:
            self._set(infra, "False", "ProcessExited",
                      "The machine's process exited before it finished booting")
            return None
        self._set(infra, "False", "Bootstrapping", "Applying the bootstrap data")
        return BOOT_POLL

    @staticmethod
    def _set(infra: Object, status: conditions.Status, reason: str, message: str) -> None:
        conditions.set_condition(infra, types.BOOTSTRAP_SUCCEEDED_CONDITION, status, reason,
                                 message)
        conditions.set_condition(infra, c.READY_CONDITION, status, reason, message)

    async def _user_data(self, namespace: str, secret_name: str) -> bytes | None:
        try:
            secret = await self.client.get(*SECRET, secret_name, namespace)
        except NotFound:
            return None
        value = (secret.get("data") or {}).get(BOOTSTRAP_DATA_KEY)
        return base64.b64decode(value) if value else None

    async def _delete(self, before: Object, infra: Object) -> Result:
        namespace, name = infra["metadata"]["namespace"], infra["metadata"]["name"]
        if types.MACHINE_FINALIZER not in (infra["metadata"].get("finalizers") or []):
            return Result()
        await asyncio.to_thread(self.supervisor.remove, namespace, name)
        log.info("machine %s/%s stopped and removed", namespace, name)
        remove_finalizer(infra, types.MACHINE_FINALIZER)
        try:
            await patch(self.client, before, infra)
        except NotFound:
            pass
        return Result()
