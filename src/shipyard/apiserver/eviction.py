"""The ``pods/eviction`` subresource: delete a Pod unless that would break its disruption budget.

This is what ``kubectl drain`` and Cluster API's Machine deletion call (POST a policy/v1
``Eviction``, policy/v1beta1 accepted too), following kube-apiserver's EvictionREST
(pkg/registry/core/pod/storage/eviction.go):

- the Eviction's name must be the URL's (400), its namespace the request's (400);
  ``?dryRun`` and ``deleteOptions.dryRun`` must agree when both are given (400);
- a Pod that is ``Pending``, ``Succeeded``, ``Failed`` or already being deleted is deleted without
  looking at budgets;
- otherwise the PodDisruptionBudgets of its namespace whose (non-empty) selector matches it are
  found: more than one is a 500 Status, none means delete; with one, an unready Pod goes when the
  budget is met anyway (``currentHealthy >= desiredHealthy > 0``, or the budget's
  ``unhealthyPodEvictionPolicy`` is ``AlwaysAllow``), a ready one only while
  ``disruptionsAllowed > 0``, else 429 TooManyRequests "Cannot evict pod as it would violate the
  pod's disruption budget." with a ``DisruptionBudget`` cause naming the budget;
- success answers 201 with a Success Status; the deletion honours ``deleteOptions``
  (preconditions, propagation, dry run).

Where kube reads the budget's status as last written by kube-controller-manager (and answers 429
"still being processed" while it is stale), Shipyard computes it afresh from the namespace's Pods
under a per-namespace lock, so concurrent evictions cannot both spend the last disruption. Pods
are deleted at once: there is no kubelet to wait for (docs/differences.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from shipyard.apimachinery import errors
from shipyard.apiserver import codec
from shipyard.apiserver import meta as metarules
from shipyard.apiserver.handlers import write_options
from shipyard.apiserver.http import Request, Send, respond_json
from shipyard.apiserver.objects import Objects, WriteOptions
from shipyard.apiserver.pods import (
    disruption_status,
    pdb_selects,
    pod_phase,
    pod_ready,
    unready_pod_may_go,
)
from shipyard.apiserver.registry import Registry
from shipyard.apiserver.resources import ResourceInfo

Obj = dict[str, Any]

EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_BUDGETS = ("This pod has more than one PodDisruptionBudget, which the eviction "
                    "subresource does not support.")


class Evictions:
    def __init__(self, objects: Objects, registry: Registry) -> None:
        self.objects = objects
        self.registry = registry
        self._locks: dict[str, asyncio.Lock] = {}

    async def serve(
        self, request: Request, send: Send, pods: ResourceInfo, namespace: str, name: str
    ) -> None:
        write_options(request)  # validates ?dryRun as CreateOptions do
        eviction = codec.decode_object(await request.body(), request.content_type, "Eviction")
        code, body = await self.evict(pods, namespace, name, eviction,
                                      request.query.get("dryRun", []))
        await respond_json(send, code, body)

    async def evict(
        self, pods: ResourceInfo, namespace: str, name: str, eviction: Obj,
        dry_run: list[str],
    ) -> tuple[int, Obj]:
        """Evict ``namespace/name``; the HTTP code and Status to answer, or raise."""
        _check_eviction(eviction, namespace, name)
        options = _delete_options(eviction, dry_run)
        opts = WriteOptions(dry_run=bool(options.get("dryRun")), field_manager="")
        lock = self._locks.setdefault(namespace, asyncio.Lock())
        async with lock:
            pod = self.objects.get(pods, namespace, name)
            if not _can_ignore_budgets(pod):
                refusal = self._check_budgets(namespace, pod)
                if refusal is not None:
                    return refusal
            await self.objects.delete(pods, namespace, name, options, opts)
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                     "code": 201}

    def _check_budgets(self, namespace: str, pod: Obj) -> tuple[int, Obj] | None:
        """None when the budgets allow the eviction; else the answer (or raise 429)."""
        pdbs_info = self.registry.lookup("policy", "v1", "poddisruptionbudgets")
        pods_info = self.registry.lookup("", "v1", "pods")
        if pdbs_info is None or pods_info is None:
            return None
        budgets = [entry.object() for entry in
                   self.objects.store.list(pdbs_info.prefix(namespace))[0]]
        matching = [b for b in budgets if pdb_selects(b, pod)]
        if len(matching) > 1:
            return 500, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                         "status": "Failure", "message": MULTIPLE_BUDGETS, "code": 500}
        if not matching:
            return None
        budget = matching[0]
        neighbours = [entry.object() for entry in
                      self.objects.store.list(pods_info.prefix(namespace))[0]]
        status = disruption_status(budget, neighbours, metarules.now())
        if not pod_ready(pod) and unready_pod_may_go(budget, status):
            return None
        if status["disruptionsAllowed"] <= 0:
            raise errors.TooManyRequests(VIOLATION, details={"causes": [{
                "reason": "DisruptionBudget",
                "message": f"The disruption budget {budget['metadata']['name']} needs "
                           f"{status['desiredHealthy']} healthy pods and has "
                           f"{status['currentHealthy']} currently",
            }]})
        return None


def _can_ignore_budgets(pod: Obj) -> bool:
    return pod_phase(pod) in ("Pending", "Succeeded", "Failed") or bool(
        (pod.get("metadata") or {}).get("deletionTimestamp"))


def _check_eviction(eviction: Obj, namespace: str, name: str) -> None:
    api_version, kind = eviction.get("apiVersion"), eviction.get("kind")
    if kind not in (None, "Eviction") or api_version not in (None, *EVICTION_VERSIONS):
        raise errors.BadRequest(
            f"the body of the request was not a policy/v1 Eviction: {api_version} {kind}")
    meta = eviction.get("metadata") or {}
    if not isinstance(meta, dict) or meta.get("name", "") != name:
        raise errors.BadRequest("name in URL does not match name in Eviction object")
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise errors.BadRequest("the namespace of the provided object does not match the "
                                "namespace sent on the request")


def _delete_options(eviction: Obj, dry_run: list[str]) -> Obj:
    """The Eviction's deleteOptions with the request's dryRun folded in (propagateDryRun)."""
    options = eviction.get("deleteOptions")
    if options is None:
        return {"dryRun": list(dry_run)} if dry_run else {}
    if not isinstance(options, dict):
        raise errors.BadRequest("deleteOptions must be an object")
    options = dict(options)
    given = options.get("dryRun") or []
    if not given:
        if dry_run:
            options["dryRun"] = list(dry_run)
    elif dry_run and list(dry_run) != list(given):
        raise errors.BadRequest(
            f"Non-matching dry-run options in request and content: {_go(dry_run)} and "
            f"{_go(given)}")
    elif any(value != "All" for value in given):
        raise errors.invalid("DeleteOptions", "meta.k8s.io", "", [{
            "reason": "FieldValueNotSupported", "field": "dryRun",
            "message": f"Unsupported value: {_go(given)}: supported values: \"All\""}])
    return options


def _go(values: list[str]) -> str:
    return "[" + " ".join(values) + "]"
