"""The MachineDeployment controller: roll a set of machines from one template to the next.

Why: a MachineDeployment is how users say "N workers like this"; changing "like this" must
replace machines without dropping below the capacity the user allowed. The contract, as
upstream Cluster API v1beta2 (`internal/controllers/machinedeployment`):

- MachineSets matching `spec.selector` with no controller are adopted. The *new* MachineSet is
  the oldest one whose template equals the deployment's, ignoring labels, annotations and the
  in-place fields (`msutil.templates_equal`), and, once `rollout.after` has passed, created after
  it. With none, one is created: name `<md>-<random5>`, label `machine-template-hash` =
  "<template hash>-<random5>" added to its selector and template labels.
- RollingUpdate: the new set grows by `rollout.new_ms_new_replicas` (maxSurge), the old sets
  shrink by `rollout.plan_old_scale_down` (maxUnavailable); old sets at zero are deleted.
- OnDelete: old sets shrink only as their machines are deleted by someone else (or when the
  deployment scales down, oldest first); the new set fills the gap.
- Annotations on MachineSets: `machinedeployment.clusters.x-k8s.io/revision` (the new set gets
  max(old)+1), `desired-replicas` and `max-replicas` (replicas + maxSurge); the deployment
  carries the revision too.
- Template labels/annotations and in-place spec fields, `deletion.order` and `machineNaming`
  propagate to the new MachineSet without a rollout (its controller passes them to machines).
- `spec.paused`: status only. A paused Cluster/annotation: nothing but the Paused condition.
- Status: replicas, readyReplicas, availableReplicas, upToDateReplicas (sums over the sets),
  selector, phase (ScalingUp/ScalingDown/Running), observedGeneration, RollingOut/ScalingUp/
  ScalingDown/Available conditions, and the v1beta1 counters under status.deprecated.
- A finalizer holds deletion until every MachineSet is gone.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from shipyard.api.core.constants import (
    AVAILABLE_CONDITION,
    AVAILABLE_REASON,
    CLUSTER_NAME_LABEL,
    DESIRED_REPLICAS_ANNOTATION,
    MACHINE_DEPLOYMENT_FINALIZER,
    MACHINE_DEPLOYMENT_NAME_LABEL,
    MACHINE_DEPLOYMENT_UNIQUE_LABEL,
    MACHINE_SET_NAME_LABEL,
    MACHINES_READY_CONDITION,
    MACHINES_UP_TO_DATE_CONDITION,
    MAX_REPLICAS_ANNOTATION,
    NO_REPLICAS_REASON,
    NOT_AVAILABLE_REASON,
    NOT_READY_REASON,
    NOT_ROLLING_OUT_REASON,
    NOT_SCALING_DOWN_REASON,
    NOT_SCALING_UP_REASON,
    NOT_UP_TO_DATE_REASON,
    READY_REASON,
    REVISION_ANNOTATION,
    ROLLING_OUT_CONDITION,
    ROLLING_OUT_REASON,
    SCALING_DOWN_CONDITION,
    SCALING_DOWN_REASON,
    SCALING_UP_CONDITION,
    SCALING_UP_REASON,
    UP_TO_DATE_REASON,
)
from shipyard.apimachinery.errors import Conflict, NotFound
from shipyard.apimachinery.selectors import label_selector_from_dict
from shipyard.client.interfaces import Object, ReaderWriter
from shipyard.controllers import conditions, msutil, pausing, rollout
from shipyard.controllers.external import ExternalObjects, ensure_cluster_owns_templates
from shipyard.controllers.machineset import (
    API_VERSION,
    CLUSTER,
    MACHINE,
    MACHINE_DEPLOYMENT,
    MACHINE_SET,
    owned_by_kind,
    selector_string,
)
from shipyard.controllers.ownership import (
    controller_of,
    ensure_owner_reference,
    owner_reference,
)
from shipyard.controllers.setup import Options
from shipyard.runtime import Manager, Request, Result, TerminalError, logs

log = logs.get_logger(__name__)


def revision_of(ms: Object) -> int:
    value = ((ms.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def created_key(obj: Object) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("creationTimestamp") or ""), str(meta.get("name") or "")


def find_new_machine_set(md: Object, sets: list[Object]) -> Object | None:
    spec = md.get("spec") or {}
    after = msutil.parse_time((spec.get("rollout") or {}).get("after"))
    rollout_due = after is not None and after <= msutil.now()
    for ms in sorted(sets, key=created_key):
        if msutil.is_deleting(ms):
            continue
        if not msutil.templates_equal((ms.get("spec") or {}).get("template") or {},
                                      spec.get("template") or {}):
            continue
        created = msutil.parse_time((ms.get("metadata") or {}).get("creationTimestamp"))
        if rollout_due and created is not None and after is not None and created < after:
            continue
        return ms
    return None


def state_of(ms: Object) -> rollout.MachineSetState:
    return rollout.MachineSetState(
        name=str(ms["metadata"]["name"]), replicas=rollout.replicas_of(ms.get("spec") or {}),
        available=int((ms.get("status") or {}).get("availableReplicas") or 0),
        created=str(ms["metadata"].get("creationTimestamp") or ""))

INVALID_SPEC_REASON = "InvalidSpec"


def spec_problem(spec: dict[str, Any]) -> str | None:
    """Why the controller cannot act on `spec` (upstream's webhook rejects these), or None."""
    selector = label_selector_from_dict(spec.get("selector") or {})
    if not selector.matches(((spec.get("template") or {}).get("metadata") or {}).get(
            "labels") or {}):
        return "spec.selector does not match spec.template.metadata.labels"
    _, rolling = rollout.strategy_of(spec)
    for field in ("maxSurge", "maxUnavailable"):
        try:
            rollout.scaled_value(rolling.get(field), rollout.replicas_of(spec), True)
        except ValueError as e:
            return (f"spec.rollout.strategy.rollingUpdate.{field}: Invalid value: "
                    f"{rolling.get(field)!r}: must be either an int or a percentage: {e}")
    return None


class MachineDeploymentReconciler:
    def __init__(self, client: ReaderWriter, *, rng: random.Random | None = None) -> None:
        self.client = client
        self.rng = rng or random.Random()
        self.external = ExternalObjects(client)

    async def reconcile(self, req: Request) -> Result:
        try:
            md = await self.client.get(*MACHINE_DEPLOYMENT, req.name, req.namespace)
        except NotFound:
            return Result()
        spec = md.get("spec") or {}
        try:
            cluster: Object | None = await self.client.get(
                *CLUSTER, str(spec.get("clusterName", "")), req.namespace)
        except NotFound:
            cluster = None
        if pausing.is_paused(cluster, md):
            holder: Object = {"metadata": md["metadata"],
                              "status": copy.deepcopy(md.get("status") or {})}
            if pausing.set_paused_condition(cluster, holder):
                await self._patch_status(md, holder["status"])
            return Result()
        sets = await self._machine_sets(md)
        if md["metadata"].get("deletionTimestamp"):
            return await self._reconcile_delete(md, sets)
        md = await self._ensure_metadata(md, cluster)
        spec = md.get("spec") or {}
        if cluster is not None:
            await ensure_cluster_owns_templates(
                self.external, cluster, ((spec.get("template") or {}).get("spec") or {}),
                req.namespace)
        problem = spec_problem(spec)
        if problem is not None:
            await self._report_invalid(md, problem)
            raise TerminalError(f"MachineDeployment {req}: {problem}")
        if not spec.get("paused"):
            sets = await self._rollout(md, sets)
        await self._update_status(md, sets)
        return Result()

    # ------------------------------------------------------------------ plumbing

    async def _machine_sets(self, md: Object) -> list[Object]:
        meta = md["metadata"]
        found = await self.client.list(*MACHINE_SET, meta["namespace"],
                                       label_selector=selector_string(md) or None)
        out = []
        for ms in found["items"]:
            ref = controller_of(ms)
            if ref is None:
                if msutil.is_deleting(ms) or meta.get("deletionTimestamp"):
                    continue
                ensure_owner_reference(ms, owner_reference(md, controller=True))
                try:
                    ms = await self.client.update(ms)
                except (Conflict, NotFound):
                    continue
            elif ref.get("uid") != meta["uid"]:
                continue
            out.append(ms)
        return out

    async def _ensure_metadata(self, md: Object, cluster: Object | None) -> Object:
        meta = md["metadata"]
        changed = False
        finalizers = meta.setdefault("finalizers", [])
        if MACHINE_DEPLOYMENT_FINALIZER not in finalizers:
            finalizers.append(MACHINE_DEPLOYMENT_FINALIZER)
            changed = True
        labels = meta.setdefault("labels", {})
        cluster_name = str((md.get("spec") or {}).get("clusterName", ""))
        if labels.get(CLUSTER_NAME_LABEL) != cluster_name:
            labels[CLUSTER_NAME_LABEL] = cluster_name
            changed = True
        if cluster is not None:
            changed = ensure_owner_reference(md, owner_reference(cluster)) or changed
        changed = msutil.default_selector(md, MACHINE_DEPLOYMENT_NAME_LABEL) or changed
        return await self.client.update(md) if changed else md

    async def _report_invalid(self, md: Object, problem: str) -> None:
        """A spec the controller cannot act on (what upstream's webhook would have refused)
        is reported on the Available condition, so that users see it without the logs."""
        holder: Object = {"metadata": md["metadata"],
                          "status": copy.deepcopy(md.get("status") or {})}
        conditions.set_condition(holder, AVAILABLE_CONDITION, "False", INVALID_SPEC_REASON,
                                 problem)
        if holder["status"] != md.get("status"):
            await self._patch_status(md, holder["status"])

    async def _patch_status(self, obj: Object, status: dict[str, Any]) -> None:
        await self.client.patch(str(obj["apiVersion"]), str(obj["kind"]),
                                obj["metadata"]["name"], {"status": status},
                                obj["metadata"]["namespace"], subresource="status")

    async def _reconcile_delete(self, md: Object, sets: list[Object]) -> Result:
        for ms in sets:
            if not msutil.is_deleting(ms):
                try:
                    await self.client.delete(*MACHINE_SET, ms["metadata"]["name"],
                                             ms["metadata"]["namespace"])
                except NotFound:
                    pass
        if await self._machine_sets(md):
            return Result()
        md["metadata"]["finalizers"] = [f for f in md["metadata"].get("finalizers") or []
                                        if f != MACHINE_DEPLOYMENT_FINALIZER]
        try:
            await self.client.update(md)
        except NotFound:
            pass
        return Result()

    async def _scale(self, ms: Object, md: Object, replicas: int | None = None) -> Object:
        """Patch spec.replicas (if given) and the desired/max-replicas annotations."""
        spec = md.get("spec") or {}
        patch: dict[str, Any] = {"metadata": {"annotations": {
            DESIRED_REPLICAS_ANNOTATION: str(rollout.replicas_of(spec)),
            MAX_REPLICAS_ANNOTATION: str(rollout.max_replicas_annotation(spec))}}}
        if replicas is not None:
            patch["spec"] = {"replicas": replicas}
        annotations = ms["metadata"].get("annotations") or {}
        if replicas == rollout.replicas_of(ms.get("spec") or {}) or replicas is None:
            if all(annotations.get(k) == v for k, v in patch["metadata"]["annotations"].items()):
                return ms
        return await self.client.patch(*MACHINE_SET, ms["metadata"]["name"], patch,
                                       ms["metadata"]["namespace"])

    # ------------------------------------------------------------------ rollout

    async def _rollout(self, md: Object, sets: list[Object]) -> list[Object]:
        spec = md.get("spec") or {}
        kind, _ = rollout.strategy_of(spec)
        new = find_new_machine_set(md, sets)
        old = [ms for ms in sets if new is None or ms["metadata"]["uid"] != new["metadata"]["uid"]]
        max_old_revision = max((revision_of(ms) for ms in old), default=0)
        if new is None:
            total = sum(rollout.replicas_of(ms.get("spec") or {}) for ms in old)
            new = await self._create_new_set(md, rollout.new_ms_new_replicas(spec, total, 0),
                                             max_old_revision + 1)
        else:
            new = await self._sync_new_set(md, new, max_old_revision)
        revision = str(revision_of(new))
        if (md["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) != revision:
            md.update(await self.client.patch(*MACHINE_DEPLOYMENT, md["metadata"]["name"], {
                "metadata": {"annotations": {REVISION_ANNOTATION: revision}}},
                md["metadata"]["namespace"]))

        replicas = rollout.replicas_of(spec)
        new_replicas = rollout.replicas_of(new.get("spec") or {})
        if kind == rollout.ON_DELETE:
            old = await self._scale_old_on_delete(md, old)
        if new_replicas > replicas:
            new = await self._scale(new, md, replicas)
        elif new_replicas < replicas:
            total = sum(rollout.replicas_of(ms.get("spec") or {}) for ms in [*old, new])
            new = await self._scale(new, md, rollout.new_ms_new_replicas(spec, total,
                                                                         new_replicas))
        if kind == rollout.ROLLING_UPDATE:
            plan = rollout.plan_old_scale_down(spec, state_of(new), [state_of(ms) for ms in old])
            old = [await self._scale(ms, md, plan.get(str(ms["metadata"]["name"])))
                   for ms in old]
        elif kind != rollout.ON_DELETE:
            raise TerminalError(f"unsupported rollout strategy {kind!r}")
        return [new, *await self._cleanup(old)]

    async def _create_new_set(self, md: Object, replicas: int, revision: int) -> Object:
        spec = md.get("spec") or {}
        meta = md["metadata"]
        template = copy.deepcopy(spec.get("template") or {})
        unique = f"{msutil.template_hash(template)}-{msutil.random_suffix(rng=self.rng)}"
        t_meta = template.setdefault("metadata", {})
        t_meta.setdefault("labels", {})[MACHINE_DEPLOYMENT_UNIQUE_LABEL] = unique
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[MACHINE_DEPLOYMENT_UNIQUE_LABEL] = unique
        labels = {**(t_meta.get("labels") or {}),
                  CLUSTER_NAME_LABEL: str(spec.get("clusterName", "")),
                  MACHINE_DEPLOYMENT_NAME_LABEL: str(meta["name"])}
        ms_spec: dict[str, Any] = {"clusterName": spec.get("clusterName"), "replicas": replicas,
                                   "selector": selector, "template": template}
        for field in ("machineNaming", "deletion"):
            if spec.get(field):
                ms_spec[field] = copy.deepcopy(spec[field])
        ms: Object = {
            "apiVersion": API_VERSION, "kind": "MachineSet",
            "metadata": {"name": f"{meta['name']}-{msutil.random_suffix(rng=self.rng)}",
                         "namespace": meta["namespace"], "labels": labels,
                         "annotations": {
                             REVISION_ANNOTATION: str(revision),
                             DESIRED_REPLICAS_ANNOTATION: str(rollout.replicas_of(spec)),
                             MAX_REPLICAS_ANNOTATION: str(
                                 rollout.max_replicas_annotation(spec))},
                         "ownerReferences": [owner_reference(md, controller=True)]},
            "spec": ms_spec,
        }
        log.info("creating MachineSet %s (revision %d)", ms["metadata"]["name"], revision)
        return await self.client.create(ms)

    async def _sync_new_set(self, md: Object, ms: Object, max_old_revision: int) -> Object:
        """Propagate in-place changes and bump the revision of a set that became new again."""
        spec = md.get("spec") or {}
        updated = copy.deepcopy(ms)
        ms_spec = updated.setdefault("spec", {})
        template = ms_spec.setdefault("template", {})
        md_template = spec.get("template") or {}
        t_meta = template.setdefault("metadata", {})
        unique = (t_meta.get("labels") or {}).get(MACHINE_DEPLOYMENT_UNIQUE_LABEL)
        md_meta = md_template.get("metadata") or {}
        labels = dict(md_meta.get("labels") or {})
        if unique is not None:
            labels[MACHINE_DEPLOYMENT_UNIQUE_LABEL] = unique
        t_meta["labels"] = labels
        t_meta["annotations"] = dict(md_meta.get("annotations") or {})
        if not t_meta["annotations"]:
            del t_meta["annotations"]
        t_spec = template.setdefault("spec", {})
        md_t_spec = md_template.get("spec") or {}
        for field in msutil.IN_PLACE_SPEC_FIELDS:
            if field in md_t_spec:
                t_spec[field] = copy.deepcopy(md_t_spec[field])
            else:
                t_spec.pop(field, None)
        for field in ("machineNaming", "deletion"):
            if spec.get(field):
                ms_spec[field] = copy.deepcopy(spec[field])
            else:
                ms_spec.pop(field, None)
        annotations = updated["metadata"].setdefault("annotations", {})
        if revision_of(ms) <= max_old_revision:
            annotations[REVISION_ANNOTATION] = str(max_old_revision + 1)
        if updated != ms:
            return await self.client.update(updated)
        return ms

    async def _scale_old_on_delete(self, md: Object, old: list[Object]) -> list[Object]:
        """OnDelete: old sets follow their machines' deletions, and shrink (oldest first)
        when the deployment has more machines than replicas."""
        out = []
        for ms in old:
            machines = (await self.client.list(
                *MACHINE, ms["metadata"]["namespace"],
                label_selector=f"{MACHINE_SET_NAME_LABEL}={ms['metadata']['name']}"))["items"]
            alive = sum(1 for m in machines if not msutil.is_deleting(m))
            current = rollout.replicas_of(ms.get("spec") or {})
            out.append(await self._scale(ms, md, min(current, alive)))
        excess = (sum(rollout.replicas_of(ms.get("spec") or {}) for ms in out)
                  - rollout.replicas_of(md.get("spec") or {}))
        result = []
        for ms in sorted(out, key=created_key):
            current = rollout.replicas_of(ms.get("spec") or {})
            if excess > 0 and current > 0:
                cut = min(current, excess)
                excess -= cut
                ms = await self._scale(ms, md, current - cut)
            result.append(ms)
        return result

    async def _cleanup(self, old: list[Object]) -> list[Object]:
        """Delete old sets that reached zero machines (no revision history is kept)."""
        kept = []
        for ms in old:
            if (rollout.replicas_of(ms.get("spec") or {}) == 0
                    and int((ms.get("status") or {}).get("replicas") or 0) == 0
                    and (ms.get("status") or {}).get("observedGeneration")
                    == ms["metadata"].get("generation") and not msutil.is_deleting(ms)):
                try:
                    await self.client.delete(*MACHINE_SET, ms["metadata"]["name"],
                                             ms["metadata"]["namespace"])
                except NotFound:
                    pass
                continue
            kept.append(ms)
        return kept

    # ------------------------------------------------------------------ status

    async def _update_status(self, md: Object, sets: list[Object]) -> None:
        spec = md.get("spec") or {}
        desired = rollout.replicas_of(spec)

        def total(field: str) -> int:
            return sum(int((ms.get("status") or {}).get(field) or 0) for ms in sets)

        replicas, ready, available = (total("replicas"), total("readyReplicas"),
                                      total("availableReplicas"))
        up_to_date = total("upToDateReplicas")
        status = copy.deepcopy(md.get("status") or {})
        status.update(selector=selector_string(md), replicas=replicas, readyReplicas=ready,
                      availableReplicas=available, upToDateReplicas=up_to_date,
                      phase=rollout.deployment_phase(desired, replicas, ready))
        if md["metadata"].get("generation"):
            status["observedGeneration"] = md["metadata"]["generation"]
        status.setdefault("deprecated", {})["v1beta1"] = {
            **((status.get("deprecated") or {}).get("v1beta1") or {}),
            "updatedReplicas": up_to_date, "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": max(replicas - available, 0)}
        holder: Object = {"metadata": md["metadata"], "status": status}
        for type_, ok, not_ok in ((MACHINES_READY_CONDITION, READY_REASON, NOT_READY_REASON),
                                  (MACHINES_UP_TO_DATE_CONDITION, UP_TO_DATE_REASON,
                                   NOT_UP_TO_DATE_REASON)):
            _summarize_sets(holder, type_, sets, ok, not_ok)
        if up_to_date < replicas:
            conditions.set_condition(holder, ROLLING_OUT_CONDITION, "True", ROLLING_OUT_REASON,
                                     f"Rolling out: {replicas - up_to_date} not up-to-date")
        else:
            conditions.set_condition(holder, ROLLING_OUT_CONDITION, "False",
                                     NOT_ROLLING_OUT_REASON)
        spec_total = sum(rollout.replicas_of(ms.get("spec") or {}) for ms in sets)
        if replicas < desired or spec_total < desired:
            message = f"Scaling up from {replicas} to {desired} replicas"
            blocked = [f"* MachineSet {ms['metadata']['name']}: {reason}" for ms in sets
                       for reason in _blocked_reasons(ms)]
            if blocked:
                message += " is blocked because:\n" + "\n".join(blocked)
            conditions.set_condition(holder, SCALING_UP_CONDITION, "True", SCALING_UP_REASON,
                                     message)
        else:
            conditions.set_condition(holder, SCALING_UP_CONDITION, "False",
                                     NOT_SCALING_UP_REASON)
        if replicas > desired:
            conditions.set_condition(holder, SCALING_DOWN_CONDITION, "True",
                                     SCALING_DOWN_REASON,
                                     f"Scaling down from {replicas} to {desired} replicas")
        else:
            conditions.set_condition(holder, SCALING_DOWN_CONDITION, "False",
                                     NOT_SCALING_DOWN_REASON)
        floor = desired - rollout.max_unavailable(spec)
        if available >= floor:
            conditions.set_condition(holder, AVAILABLE_CONDITION, "True", AVAILABLE_REASON)
        else:
            conditions.set_condition(holder, AVAILABLE_CONDITION, "False", NOT_AVAILABLE_REASON,
                                     f"{available} available replicas, at least {floor} "
                                     f"required")
        pausing.set_paused_condition(None, holder)
        if status != md.get("status"):
            await self._patch_status(md, status)


def _summarize_sets(holder: Object, type_: str, sets: list[Object], ok: str,
                    not_ok: str) -> None:
    """MachinesReady/MachinesUpToDate of a deployment from those of its MachineSets (each
    summarizes its machines): True when all are True, else the worst, with their messages."""
    worst, messages = "True", []
    for ms in sets:
        cond = conditions.get_condition(ms, type_) or {}
        status = str(cond.get("status") or "Unknown")
        if status != "True":
            messages.append(f"MachineSet {ms['metadata']['name']}: "
                            f"{cond.get('message') or status}")
            worst = "False" if status == "False" or worst == "False" else "Unknown"
    if not sets:
        conditions.set_condition(holder, type_, "True", NO_REPLICAS_REASON)
    elif worst == "True":
        conditions.set_condition(holder, type_, "True", ok)
    else:
        conditions.set_condition(holder, type_, worst,  # type: ignore[arg-type]
                                 not_ok if worst == "False" else f"{ok}Unknown",
                                 "; ".join(messages))


def _blocked_reasons(ms: Object) -> list[str]:
    """The reasons a MachineSet's ScalingUp condition gives for being blocked."""
    message = str((conditions.get_condition(ms, SCALING_UP_CONDITION) or {}).get("message")
                  or "")
    _, sep, reasons = message.partition(" is blocked because:\n")
    return [r.removeprefix("* ") for r in reasons.splitlines()] if sep else []


async def setup(mgr: Manager, options: Options) -> None:
    """Register the MachineDeployment controller (setup registry signature)."""
    informer = mgr.informer(MACHINE_DEPLOYMENT)

    def deployments_of_cluster(cluster: Object) -> list[Request]:
        meta = cluster.get("metadata") or {}
        return [Request(str(md["metadata"]["namespace"]), str(md["metadata"]["name"]))
                for md in informer.cache.list(
                    meta.get("namespace"), f"{CLUSTER_NAME_LABEL}={meta.get('name')}")]

    def deployment_of_set(ms: Object) -> list[Request]:
        ref = owned_by_kind(ms, "MachineDeployment")
        if ref is None:
            return []
        return [Request(str(ms["metadata"].get("namespace") or ""), str(ref["name"]))]

    concurrency = options.concurrency.get("machinedeployment", 10)
    await mgr.new_controller(
        "machinedeployment", MachineDeploymentReconciler(mgr.client), for_=MACHINE_DEPLOYMENT,
        watches=[(MACHINE_SET, deployment_of_set), (CLUSTER, deployments_of_cluster)],
        max_concurrent_reconciles=concurrency)
