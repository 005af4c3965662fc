"""The MachineSet controller: keep `spec.replicas` Machines stamped from `spec.template`.

Why: a MachineSet is the unit a MachineDeployment scales and replaces; everything a rollout or
a remediation does ends as "this set should have N machines" or "delete that machine". The
contract, as upstream Cluster API v1beta2 (`internal/controllers/machineset`):

- Machines matching `spec.selector` with no controller are adopted; those controlled by
  another owner are ignored. The selector must match the template's labels (else a terminal
  error: the set would never see its own machines).
- Machines being deleted still count (the set waits for them to go before replacing them).
- Scale up: for each missing machine, clone the bootstrap config template (`configRef`, e.g.
  KubeadmConfigTemplate → KubeadmConfig) and the infrastructure machine template
  (`.spec.template.spec` of the template, kind without the "Template" suffix), owned by the
  MachineSet until the Machine controller adopts them, then create the Machine named by
  `machineNaming.template` or `<ms-name>-<random5>`, labelled cluster-name / set-name /
  deployment-name plus the template's labels (with machine-template-hash). Skipped while the
  `cluster.x-k8s.io/disable-machine-create` annotation is set.
- Scale down: `deletion.order` Random (default) / Newest / Oldest, the delete-machine
  annotation and unhealthy machines first (`msutil.machines_to_delete`).
- Remediation: machines an MHC marked `OwnerRemediated=False` are deleted, no more at once
  than the owning MachineDeployment's `remediation.maxInFlight` allows.
- Labels, annotations and in-place spec fields of the template propagate to existing machines.
- Status: replicas, readyReplicas, availableReplicas, upToDateReplicas, selector (string form,
  used by the scale subresource), observedGeneration, ScalingUp/ScalingDown conditions.
- A finalizer holds deletion until every machine is gone; a paused Cluster or MachineSet is not
  reconciled.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Callable
from typing import Any

from shipyard.api.core.constants import (
    CLUSTER_NAME_LABEL,
    DISABLE_MACHINE_CREATE_ANNOTATION,
    MACHINE_DEPLOYMENT_NAME_LABEL,
    MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION,
    MACHINE_OWNER_REMEDIATED_CONDITION,
    MACHINE_SET_FINALIZER,
    MACHINE_SET_NAME_LABEL,
    MACHINE_UP_TO_DATE_CONDITION,
    MACHINES_READY_CONDITION,
    MACHINES_UP_TO_DATE_CONDITION,
    NO_REPLICAS_REASON,
    NOT_READY_REASON,
    NOT_SCALING_DOWN_REASON,
    NOT_SCALING_UP_REASON,
    NOT_UP_TO_DATE_REASON,
    READY_REASON,
    SCALING_DOWN_CONDITION,
    SCALING_DOWN_REASON,
    SCALING_UP_CONDITION,
    SCALING_UP_REASON,
    TEMPLATE_CLONED_FROM_GROUP_KIND_ANNOTATION,
    TEMPLATE_CLONED_FROM_NAME_ANNOTATION,
    UP_TO_DATE_REASON,
)
from shipyard.apimachinery.errors import Conflict, NotFound
from shipyard.apimachinery.selectors import label_selector_from_dict, label_selector_to_string
from shipyard.client.interfaces import GVK, Object, ReaderWriter
from shipyard.controllers import conditions, msutil, pausing, rollout
from shipyard.controllers.external import (
    ContractVersionNotFound,
    ExternalObjects,
    ensure_cluster_owns_templates,
)
from shipyard.controllers.ownership import (
    controller_of,
    ensure_owner_reference,
    owner_reference,
)
from shipyard.controllers.setup import Options
from shipyard.runtime import Manager, Request, Result, TerminalError, logs

API_VERSION = "cluster.x-k8s.io/v1beta2"
GROUP = "cluster.x-k8s.io"
MACHINE = (API_VERSION, "Machine")
MACHINE_SET = (API_VERSION, "MachineSet")
MACHINE_DEPLOYMENT = (API_VERSION, "MachineDeployment")
CLUSTER = (API_VERSION, "Cluster")

log = logs.get_logger(__name__)

CREATE_CONCURRENCY = 16
"""Machines a MachineSet reconcile creates at once when scaling up."""


def selector_string(obj: Object) -> str:
    return label_selector_to_string((obj.get("spec") or {}).get("selector") or {})


def owned_by_kind(obj: Object, kind: str) -> dict[str, Any] | None:
    ref = controller_of(obj)
    if ref is not None and ref.get("kind") == kind and GVK(
            str(ref.get("apiVersion", "")), kind).group == GROUP:
        return ref
    return None


def machine_up_to_date(machine: Object, ms: Object, md: Object | None) -> bool:
    """Upstream's UpToDate for a machine of a set: no deployment, or the set's template is the
    deployment's (ignoring in-place fields) and the machine is newer than rollout.after."""
    if md is None:
        return True
    md_spec = md.get("spec") or {}
    if not msutil.templates_equal((ms.get("spec") or {}).get("template") or {},
                                  md_spec.get("template") or {}):
        return False
    after = msutil.parse_time((md_spec.get("rollout") or {}).get("after"))
    created = msutil.parse_time((machine.get("metadata") or {}).get("creationTimestamp"))
    if after is not None and after <= msutil.now() and created is not None and created < after:
        return False
    return True


class MachineSetReconciler:
    def __init__(self, client: ReaderWriter, *, rng: random.Random | None = None) -> None:
        self.client = client
        self.external = ExternalObjects(client)
        self.rng = rng or random.Random()

    async def reconcile(self, req: Request) -> Result:
        try:
            ms = await self.client.get(*MACHINE_SET, req.name, req.namespace)
        except NotFound:
            return Result()
        spec = ms.get("spec") or {}
        cluster = await self._get_or_none(CLUSTER, str(spec.get("clusterName", "")),
                                          req.namespace)
        if pausing.is_paused(cluster, ms):
            before = copy.deepcopy(ms.get("status"))
            pausing.set_paused_condition(cluster, ms)
            if ms.get("status") != before:
                await self._patch_status(ms, ms["status"])
            return Result()
        machines = await self._machines(ms)
        if ms["metadata"].get("deletionTimestamp"):
            return await self._reconcile_delete(ms, machines)
        ms = await self._ensure_metadata(ms, cluster)
        if cluster is not None:
            await ensure_cluster_owns_templates(
                self.external, cluster, ((spec.get("template") or {}).get("spec") or {}),
                req.namespace)

        selector = label_selector_from_dict(spec.get("selector") or {})
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not selector.matches(template_labels):
            raise TerminalError(f"MachineSet {req}: spec.selector does not match "
                                f"spec.template.metadata.labels")

        md_ref = owned_by_kind(ms, "MachineDeployment")
        md = (await self._get_or_none(MACHINE_DEPLOYMENT, str(md_ref["name"]), req.namespace)
              if md_ref else None)
        await self._sync_machines(ms, md, machines)
        if await self._remediate(ms, md, machines):
            machines = await self._machines(ms)
        try:
            await self._sync_replicas(ms, md, machines)
        except (NotFound, ContractVersionNotFound) as e:
            # A missing template or an unknown kind: say so on ScalingUp, retry with backoff
            # (the template may yet be created).
            await self._update_status(ms, md, await self._machines(ms), blocked=str(e))
            raise
        machines = await self._machines(ms)
        await self._update_status(ms, md, machines)
        return Result()

    # ------------------------------------------------------------------ reading

    async def _get_or_none(self, gvk: tuple[str, str], name: str, namespace: str) -> Object | None:
        try:
            return await self.client.get(*gvk, name, namespace)
        except NotFound:
            return None

    async def _machines(self, ms: Object) -> list[Object]:
        """The set's machines, adopting orphans that match its selector."""
        meta = ms["metadata"]
        found = await self.client.list(*MACHINE, meta["namespace"],
                                       label_selector=selector_string(ms) or None)
        out = []
        for machine in found["items"]:
            ref = controller_of(machine)
            if ref is None:
                if machine["metadata"].get("deletionTimestamp") or meta.get("deletionTimestamp"):
                    continue
                ensure_owner_reference(machine, owner_reference(ms, controller=True))
                try:
                    machine = await self.client.update(machine)
                except (Conflict, NotFound):
                    continue
            elif ref.get("uid") != meta["uid"]:
                continue
            out.append(machine)
        return out

    # ------------------------------------------------------------------ writing

    async def _ensure_metadata(self, ms: Object, cluster: Object | None) -> Object:
        meta = ms["metadata"]
        changed = False
        finalizers = meta.setdefault("finalizers", [])
        if MACHINE_SET_FINALIZER not in finalizers:
            finalizers.append(MACHINE_SET_FINALIZER)
            changed = True
        labels = meta.setdefault("labels", {})
        cluster_name = str((ms.get("spec") or {}).get("clusterName", ""))
        if labels.get(CLUSTER_NAME_LABEL) != cluster_name:
            labels[CLUSTER_NAME_LABEL] = cluster_name
            changed = True
        if cluster is not None and owned_by_kind(ms, "MachineDeployment") is None:
            changed = ensure_owner_reference(ms, owner_reference(cluster)) or changed
        changed = msutil.default_selector(ms, MACHINE_SET_NAME_LABEL) or changed
        return await self.client.update(ms) if changed else ms

    async def _patch_status(self, obj: Object, status: dict[str, Any]) -> None:
        gvk = GVK.of(obj)
        await self.client.patch(*gvk, obj["metadata"]["name"], {"status": status},
                                obj["metadata"]["namespace"], subresource="status")

    async def _reconcile_delete(self, ms: Object, machines: list[Object]) -> Result:
        for machine in machines:
            if not msutil.is_deleting(machine):
                await self._delete_machine(machine)
        remaining = await self._machines(ms)
        if remaining:
            return Result()  # machine deletions wake us through the Machine watch
        finalizers = ms["metadata"].get("finalizers") or []
        if MACHINE_SET_FINALIZER in finalizers:
            ms["metadata"]["finalizers"] = [f for f in finalizers if f != MACHINE_SET_FINALIZER]
            try:
                await self.client.update(ms)
            except NotFound:
                pass
        return Result()

    async def _delete_machine(self, machine: Object) -> None:
        try:
            await self.client.delete(*MACHINE, machine["metadata"]["name"],
                                     machine["metadata"]["namespace"])
        except NotFound:
            pass

    async def _sync_machines(self, ms: Object, md: Object | None,
                             machines: list[Object]) -> None:
        """Propagate template labels/annotations and in-place spec fields to machines, and set
        their UpToDate condition (the Machine controller leaves it to the set's owner)."""
        template = (ms.get("spec") or {}).get("template") or {}
        t_meta = template.get("metadata") or {}
        t_spec = template.get("spec") or {}
        for machine in machines:
            if msutil.is_deleting(machine):
                continue
            changed = False
            meta = machine["metadata"]
            for key in ("labels", "annotations"):
                want = dict(t_meta.get(key) or {})
                have = meta.setdefault(key, {})
                for k, v in want.items():
                    if have.get(k) != v:
                        have[k] = v
                        changed = True
            m_spec = machine.setdefault("spec", {})
            for field in msutil.IN_PLACE_SPEC_FIELDS:
                if field in t_spec and m_spec.get(field) != t_spec[field]:
                    m_spec[field] = copy.deepcopy(t_spec[field])
                    changed = True
            if changed:
                try:
                    machine.update(await self.client.update(machine))
                except (Conflict, NotFound):
                    continue  # the next reconcile retries on fresh state
            before = copy.deepcopy(machine.get("status"))
            if machine_up_to_date(machine, ms, md):
                conditions.set_condition(machine, MACHINE_UP_TO_DATE_CONDITION, "True",
                                         UP_TO_DATE_REASON)
            else:
                conditions.set_condition(machine, MACHINE_UP_TO_DATE_CONDITION, "False",
                                         NOT_UP_TO_DATE_REASON,
                                         "Machine is not up-to-date with its MachineDeployment")
            if machine.get("status") != before:
                try:
                    machine.update(await self.client.update_status(machine))
                except (Conflict, NotFound):
                    pass

    async def _remediate(self, ms: Object, md: Object | None, machines: list[Object]) -> bool:
        """Delete machines the MHC handed to their owner (OwnerRemediated=False)."""
        unhealthy = [m for m in machines if not msutil.is_deleting(m)
                     and msutil.condition_status(m, MACHINE_OWNER_REMEDIATED_CONDITION) == "False"]
        if not unhealthy:
            return False
        allowed = len(unhealthy)
        if md is not None:
            md_spec = md.get("spec") or {}
            max_in_flight = (md_spec.get("remediation") or {}).get("maxInFlight")
            if max_in_flight is not None:
                limit = rollout.percent_of(max_in_flight, rollout.replicas_of(md_spec))
                in_flight = await self._remediations_in_flight(md)
                allowed = max(limit - in_flight, 0)
        for machine in sorted(unhealthy, key=lambda m: str(m["metadata"]["name"]))[:allowed]:
            log.info("remediating machine %s", machine["metadata"]["name"])
            await self._delete_machine(machine)
        return allowed > 0

    async def _remediations_in_flight(self, md: Object) -> int:
        found = await self.client.list(
            *MACHINE, md["metadata"]["namespace"],
            label_selector=f"{MACHINE_DEPLOYMENT_NAME_LABEL}={md['metadata']['name']}")
        return sum(1 for m in found["items"] if msutil.is_deleting(m) and msutil.condition_status(
            m, MACHINE_HEALTH_CHECK_SUCCEEDED_CONDITION) == "False")

    async def _sync_replicas(self, ms: Object, md: Object | None,
                             machines: list[Object]) -> None:
        spec = ms.get("spec") or {}
        replicas = rollout.replicas_of(spec)
        diff = len(machines) - replicas
        if diff < 0:
            if md is not None and not machine_up_to_date({}, ms, md) and rollout.strategy_of(
                    md.get("spec") or {})[0] == rollout.ON_DELETE:
                return  # OnDelete: an old set never replaces the machines users delete
            annotations = ms["metadata"].get("annotations") or {}
            if DISABLE_MACHINE_CREATE_ANNOTATION in annotations and str(
                    annotations[DISABLE_MACHINE_CREATE_ANNOTATION]).lower() == "true":
                return
            await self._create_machines(ms, md, -diff)
        elif diff > 0:
            order = str((spec.get("deletion") or {}).get("order") or "Random")
            for machine in msutil.machines_to_delete(machines, diff, order, rng=self.rng):
                if not msutil.is_deleting(machine):
                    await self._delete_machine(machine)

    async def _create_machines(self, ms: Object, md: Object | None, count: int) -> None:
        """Create `count` machines, up to `CREATE_CONCURRENCY` at once: each machine is three
        sequential POSTs (bootstrap config, infrastructure machine, Machine), so one after the
        other a set of 1,000 took ~40 s of round trips while both processes idled. Every
        creation is attempted; the first failure is raised after the rest finished."""
        semaphore = asyncio.Semaphore(CREATE_CONCURRENCY)

        async def one() -> None:
            async with semaphore:
                await self._create_machine(ms, md)

        results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _machine_labels(self, ms: Object) -> dict[str, str]:
        spec = ms.get("spec") or {}
        labels = dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
        labels[CLUSTER_NAME_LABEL] = str(spec.get("clusterName", ""))
        labels[MACHINE_SET_NAME_LABEL] = str(ms["metadata"]["name"])
        md_ref = owned_by_kind(ms, "MachineDeployment")
        if md_ref is not None:
            labels[MACHINE_DEPLOYMENT_NAME_LABEL] = str(md_ref["name"])
        elif MACHINE_DEPLOYMENT_NAME_LABEL in (ms["metadata"].get("labels") or {}):
            labels[MACHINE_DEPLOYMENT_NAME_LABEL] = ms["metadata"]["labels"][
                MACHINE_DEPLOYMENT_NAME_LABEL]
        return labels

    async def _clone(self, ref: dict[str, Any], ms: Object, name: str,
                     labels: dict[str, str]) -> dict[str, Any]:
        namespace = ms["metadata"]["namespace"]
        template = await self.external.get(ref, namespace)
        inner = ((template.get("spec") or {}).get("template") or {})
        kind = str(template["kind"]).removesuffix("Template")
        t_meta = inner.get("metadata") or {}
        annotations = dict(t_meta.get("annotations") or {})
        annotations[TEMPLATE_CLONED_FROM_NAME_ANNOTATION] = str(template["metadata"]["name"])
        annotations[TEMPLATE_CLONED_FROM_GROUP_KIND_ANNOTATION] = (
            f"{template['kind']}.{GVK.of(template).group}")
        obj: Object = {
            "apiVersion": template["apiVersion"], "kind": kind,
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {**(t_meta.get("labels") or {}), **labels},
                         "annotations": annotations,
                         "ownerReferences": [owner_reference(ms)]},
            "spec": copy.deepcopy(inner.get("spec") or {}),
        }
        await self.client.create(obj)
        return {"apiGroup": GVK.of(template).group, "kind": kind, "name": name}

    async def _create_machine(self, ms: Object, md: Object | None) -> None:
        spec = ms.get("spec") or {}
        template = spec.get("template") or {}
        namespace = ms["metadata"]["namespace"]
        name = msutil.machine_name(str(ms["metadata"]["name"]),
                                   (spec.get("machineNaming") or {}).get("template"),
                                   str(spec.get("clusterName", "")), self.rng)
        labels = self._machine_labels(ms)
        m_spec = copy.deepcopy(template.get("spec") or {})
        m_spec["clusterName"] = spec.get("clusterName")
        created: list[dict[str, Any]] = []
        try:
            bootstrap = m_spec.get("bootstrap") or {}
            if bootstrap.get("configRef"):
                bootstrap["configRef"] = await self._clone(bootstrap["configRef"], ms, name,
                                                           labels)
                created.append(bootstrap["configRef"])
            if m_spec.get("infrastructureRef"):
                m_spec["infrastructureRef"] = await self._clone(m_spec["infrastructureRef"], ms,
                                                                name, labels)
                created.append(m_spec["infrastructureRef"])
            machine: Object = {
                "apiVersion": API_VERSION, "kind": "Machine",
                "metadata": {"name": name, "namespace": namespace, "labels": labels,
                             "annotations": dict((template.get("metadata") or {}).get(
                                 "annotations") or {}),
                             "ownerReferences": [owner_reference(ms, controller=True)]},
                "spec": m_spec,
            }
            await self.client.create(machine)
        except Exception:
            for ref in created:  # no orphans left behind by a failed creation
                try:
                    await self.external.delete(ref, namespace)
                except Exception:  # noqa: BLE001 - best effort; the original error matters
                    log.info("cleanup after failed creation of machine %s failed", name)
            raise
        log.info("created machine %s", name)

    async def _update_status(self, ms: Object, md: Object | None,
                             machines: list[Object], *, blocked: str | None = None) -> None:
        spec = ms.get("spec") or {}
        replicas = rollout.replicas_of(spec)
        status = copy.deepcopy(ms.get("status") or {})
        ready = sum(1 for m in machines if msutil.is_ready(m))
        available = sum(1 for m in machines if msutil.is_available(m))
        status.update(
            selector=selector_string(ms), replicas=len(machines), readyReplicas=ready,
            availableReplicas=available,
            upToDateReplicas=sum(1 for m in machines if machine_up_to_date(m, ms, md)))
        generation = ms["metadata"].get("generation")
        if generation:
            status["observedGeneration"] = generation
        v1 = status.setdefault("deprecated", {}).setdefault("v1beta1", {})
        v1.update(readyReplicas=ready, availableReplicas=available,
                  fullyLabeledReplicas=len(machines))
        holder: Object = {"metadata": ms["metadata"], "status": status}
        summarize_machines(holder, MACHINES_READY_CONDITION, machines, msutil.is_ready,
                           READY_REASON, NOT_READY_REASON, "not ready")
        summarize_machines(holder, MACHINES_UP_TO_DATE_CONDITION, machines,
                           lambda m: machine_up_to_date(m, ms, md), UP_TO_DATE_REASON,
                           NOT_UP_TO_DATE_REASON, "not up-to-date")
        current = len(machines)
        if current < replicas:
            message = f"Scaling up from {current} to {replicas} replicas"
            if blocked:
                message += f" is blocked because:\n* {blocked}"
            conditions.set_condition(holder, SCALING_UP_CONDITION, "True", SCALING_UP_REASON,
                                     message)
        else:
            conditions.set_condition(holder, SCALING_UP_CONDITION, "False",
                                     NOT_SCALING_UP_REASON)
        if current > replicas:
            conditions.set_condition(holder, SCALING_DOWN_CONDITION, "True",
                                     SCALING_DOWN_REASON,
                                     f"Scaling down from {current} to {replicas} replicas")
        else:
            conditions.set_condition(holder, SCALING_DOWN_CONDITION, "False",
                                     NOT_SCALING_DOWN_REASON)
        pausing.set_paused_condition(None, holder)
        if status != ms.get("status"):
            await self._patch_status(ms, status)


def summarize_machines(holder: Object, type_: str, machines: list[Object],
                       good: Callable[[Object], bool], ok: str, not_ok: str,
                       what: str) -> None:
    """Upstream's MachinesReady/MachinesUpToDate: True when every machine is good (reason
    NoReplicas without machines), else False naming the first few that are not."""
    bad = sorted(str(m["metadata"]["name"]) for m in machines if not good(m))
    if not machines:
        conditions.set_condition(holder, type_, "True", NO_REPLICAS_REASON)
    elif bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        conditions.set_condition(holder, type_, "False", not_ok,
                                 f"Machines {', '.join(bad[:3])}{more} {what}")
    else:
        conditions.set_condition(holder, type_, "True", ok)


def machine_set_of_machine(obj: Object) -> list[Request]:
    ref = owned_by_kind(obj, "MachineSet")
    if ref is None:
        return []
    return [Request(str(obj["metadata"].get("namespace") or ""), str(ref["name"]))]


async def setup(mgr: Manager, options: Options) -> None:
    """Register the MachineSet controller (setup registry signature)."""
    informer = mgr.informer(MACHINE_SET)

    def sets_of_cluster(cluster: Object) -> list[Request]:
        meta = cluster.get("metadata") or {}
        return [Request(str(ms["metadata"]["namespace"]), str(ms["metadata"]["name"]))
                for ms in informer.cache.list(
                    meta.get("namespace"), f"{CLUSTER_NAME_LABEL}={meta.get('name')}")]

    def sets_of_deployment(md: Object) -> list[Request]:
        meta = md.get("metadata") or {}
        return [Request(str(ms["metadata"]["namespace"]), str(ms["metadata"]["name"]))
                for ms in informer.cache.list(meta.get("namespace"))
                if (owned_by_kind(ms, "MachineDeployment") or {}).get("uid") == meta.get("uid")]

    concurrency = options.concurrency.get("machineset", 10)
    await mgr.new_controller(
        "machineset", MachineSetReconciler(mgr.client), for_=MACHINE_SET,
        watches=[(MACHINE, machine_set_of_machine), (CLUSTER, sets_of_cluster),
                 (MACHINE_DEPLOYMENT, sets_of_deployment)],
        max_concurrent_reconciles=concurrency)
