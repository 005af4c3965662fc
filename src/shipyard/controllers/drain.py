"""Cordon and drain a workload cluster's Node before its Machine goes (upstream
`internal/controllers/machine/drain`).

Contract of `Drainer.drain(remote, node_name, started)`, one pass per reconcile:

- cordon the Node (``spec.unschedulable: true``);
- list its Pods (``fieldSelector=spec.nodeName=<node>``, all namespaces, pages of 100) and sort
  each (kubectl drain's filters, as upstream keeps them):

  * skipped: Pods of an existing DaemonSet, mirror Pods (annotation
    ``kubernetes.io/config.mirror``), Pods labelled ``cluster.x-k8s.io/drain: skip``, and Pods that
    already ``Succeeded`` or ``Failed`` (they hold no workload; upstream evicts them, which the
    API server turns into a plain delete);
  * waited for: Pods that already have a ``deletionTimestamp``;
  * evicted: everything else, DaemonSet Pods whose DaemonSet is gone included;

- evict through the Eviction API (POST ``pods/<name>/eviction``, policy/v1): 404 means done, 429
  (a PodDisruptionBudget) or any other error means "retry later", recorded per message;
- `DrainResult.completed` once no Pod is left to evict or wait for; otherwise `message` is the
  Machine's Deleting condition message in upstream's v1beta2 shape::

      Drain not completed yet (started at 2024-10-09T16:13:59Z):
      * Pods ns/a, ns/b: deletionTimestamp set, but still not removed from the Node
      * Pod ns/c: cannot evict pod as it would violate the pod's disruption budget. The
        disruption budget c-pdb needs 2 healthy pods and has 2 currently

MachineDrainRules (drain order, ``WaitCompleted``) are not supported: Shipyard serves no such CRD.
The caller owns the timing: ``spec.deletion.nodeDrainTimeoutSeconds``, the
``exclude-node-draining`` annotation and requeues (`DRAIN_RETRY_INTERVAL`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from shipyard.api.core import constants as c
from shipyard.apimachinery.errors import NotFound, StatusError
from shipyard.client.interfaces import NoKindMatchError, Object, ReaderWriter
from shipyard.controllers.kinds import NODE

DRAIN_RETRY_INTERVAL = 20.0
"""Seconds until a drain that is not complete is looked at again (upstream's
drainRetryInterval)."""
POD_PAGE = 100
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
MAX_LISTED = 3
MAX_FAILURES = 5


@runtime_checkable
class RawRequester(Protocol):
    """What the eviction call needs beyond `ReaderWriter`: a POST to a subresource
    (`shipyard.client.Client.request`)."""

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Any: ...


@dataclass
class DrainResult:
    completed: bool
    message: str = ""
    evicted: list[str] = field(default_factory=list)
    blocked: dict[str, list[str]] = field(default_factory=dict)  # failure message -> Pods


def pod_key(pod: Object) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _list_to_string(items: list[str], limit: int = MAX_LISTED) -> str:
    """util/log.ListToString: the first ``limit`` items, then "... (N more)"."""
    shown = items[:limit]
    if len(items) > limit:
        shown.append(f"... ({len(items) - limit} more)")
    return ", ".join(shown)


def _pods_phrase(pods: list[str]) -> str:
    return ("Pod " if len(pods) == 1 else "Pods ") + _list_to_string(pods)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def eviction_failure(err: StatusError) -> str:
    """How a failed eviction reads in the condition: a 429's message with its causes appended
    (upstream adds them so the budget's name shows), else "failed to evict Pod, <error>"."""
    if err.code == 429:
        causes = ",".join(cause.get("message", "") for cause in err.causes)
        return _lower_first(f"{err.message} {causes}" if causes else err.message)
    return f"failed to evict Pod, {err.message}"


def condition_message(started: str, waiting: list[str],
                      blocked: dict[str, list[str]]) -> str:
    lines = [f"Drain not completed yet (started at {started}):"]
    if waiting:
        lines.append(f"* {_pods_phrase(waiting)}: deletionTimestamp set, but still not removed "
                     "from the Node")
    failures = sorted(blocked)
    for failure in failures[:MAX_FAILURES]:
        lines.append(f"* {_pods_phrase(blocked[failure])}: {failure}")
    skipped = failures[MAX_FAILURES:]
    if skipped:
        count = sum(len(blocked[f]) for f in skipped)
        lines.append(f"* ... ({len(skipped)} more error{'s' if len(skipped) > 1 else ''} "
                     f"applying to {count} Pod{'s' if count > 1 else ''})")
    return "\n".join(lines)


def _terminal(pod: Object) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _controller_of(pod: Object) -> dict[str, Any] | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


class Drainer:
    """One drain pass over a Node of a workload cluster, reached through ``remote``."""

    async def drain(self, remote: ReaderWriter, node_name: str, started: str) -> DrainResult:
        await remote.patch(*NODE, node_name, {"spec": {"unschedulable": True}})
        to_evict, waiting = await self._pods_to_drain(remote, node_name)
        if not to_evict and not waiting:
            return DrainResult(True)
        result = DrainResult(False)
        for pod in sorted(to_evict, key=pod_key):
            try:
                await self._evict(remote, pod)
            except NotFound:
                continue
            except StatusError as e:
                result.blocked.setdefault(eviction_failure(e), []).append(pod_key(pod))
                continue
            except OSError as e:
                result.blocked.setdefault(f"failed to evict Pod, {e}", []).append(pod_key(pod))
                continue
            result.evicted.append(pod_key(pod))
        if result.evicted:
            # Pods usually go at once (no kubelet to wait for on Shipyard's workload clusters):
            # look again rather than wait a retry interval to find the Node empty.
            to_evict, waiting = await self._pods_to_drain(remote, node_name)
            if not to_evict and not waiting:
                return DrainResult(True, evicted=result.evicted)
        result.message = condition_message(started, waiting, result.blocked)
        return result

    async def _pods_to_drain(self, remote: ReaderWriter,
                             node_name: str) -> tuple[list[Object], list[str]]:
        """The Pods to evict, and those already being deleted (to wait for)."""
        to_evict: list[Object] = []
        waiting: list[str] = []
        for pod in await self._node_pods(remote, node_name):
            if await self._skipped(remote, pod):
                continue
            if (pod.get("metadata") or {}).get("deletionTimestamp"):
                waiting.append(pod_key(pod))
            else:
                to_evict.append(pod)
        return to_evict, sorted(waiting)

    async def _node_pods(self, remote: ReaderWriter, node_name: str) -> list[Object]:
        pods: list[Object] = []
        token: str | None = None
        while True:
            page = await remote.list("v1", "Pod", None, field_selector=f"spec.nodeName={node_name}",
                                     limit=POD_PAGE, continue_=token)
            pods.extend(page["items"])
            token = page["metadata"].get("continue") or None
            if not token:
                return pods

    async def _skipped(self, remote: ReaderWriter, pod: Object) -> bool:
        meta = pod.get("metadata") or {}
        if _terminal(pod):
            return True
        if MIRROR_POD_ANNOTATION in (meta.get("annotations") or {}):
            return True
        if (meta.get("labels") or {}).get(c.DRAIN_LABEL) == "skip":
            return True
        owner = _controller_of(pod)
        if owner is None or owner.get("kind") != "DaemonSet":
            return False
        try:
            await remote.get("apps/v1", "DaemonSet", str(owner.get("name", "")),
                             meta.get("namespace"))
        except (NotFound, NoKindMatchError):
            return False  # an orphaned DaemonSet Pod is evicted like any other
        return True

    async def _evict(self, remote: ReaderWriter, pod: Object) -> None:
        meta = pod["metadata"]
        if not isinstance(remote, RawRequester):
            raise StatusError("this client cannot create the pods/eviction subresource")
        path = (f"/api/v1/namespaces/{quote(meta['namespace'], safe='')}/pods/"
                f"{quote(meta['name'], safe='')}/eviction")
        await remote.request("POST", path, body={
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "deleteOptions": {}})
