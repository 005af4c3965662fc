"""Which control-plane Machine comes or goes next: pure functions over plain dicts, the decisions
of upstream's `controlplane/kubeadm/internal` (`control_plane.go`, `filters.go`,
`failure_domain.go`, `scale.go`) without I/O, so they are unit-testable.

Contract:
- `outdated_reasons(machine, kcp, infra, config, now)` lists why a Machine is not up to date
  (empty: up to date): a different `spec.version`; an infrastructure machine cloned from another
  template than `machineTemplate.spec.infrastructureRef` (the `cloned-from` annotations); a
  KubeadmConfig whose spec differs from `kubeadmConfigSpec` outside the init/join
  configurations (those differ by role and are completed by the bootstrap provider); created
  before `rollout.after` once that time has passed; certificates expiring within
  `rollout.before.certificatesExpiryDays`.
- `failure_domain_for_new_machine(domains, machines)` is the control-plane failure domain with
  fewest machines (ties by name), or None when the Cluster lists none.
- `machine_to_delete(machines, outdated)` picks as upstream: among machines carrying the
  `cluster.x-k8s.io/delete-machine` annotation (outdated ones first), else the outdated ones,
  else all; then the failure domain holding most of those candidates, and in it the oldest.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from shipyard.api.core import constants as c
from shipyard.client.interfaces import GVK, Object

from . import types

ROLE_SPECIFIC = ("initConfiguration", "joinConfiguration")


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def created(machine: Object) -> datetime:
    return parse_time(machine["metadata"].get("creationTimestamp")) or datetime.now(UTC)


def is_deleting(obj: Object) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def comparable_config(spec: dict[str, Any] | None) -> dict[str, Any]:
    """The parts of a KubeadmConfigSpec that a rollout compares."""
    return {k: v for k, v in (spec or {}).items() if k not in ROLE_SPECIFIC and v not in
            (None, {}, [])}


def outdated_reasons(machine: Object, kcp: Object, infra: Object | None, config: Object | None,
                     now: datetime | None = None) -> list[str]:
    now = now or datetime.now(UTC)
    spec = kcp.get("spec") or {}
    reasons: list[str] = []
    want, have = spec.get("version"), (machine.get("spec") or {}).get("version")
    if want and have != want:
        reasons.append(f"Version {have} should be updated to {want}")
    ref = ((spec.get("machineTemplate") or {}).get("spec") or {}).get("infrastructureRef") or {}
    if infra is not None and ref:
        annotations = (infra.get("metadata") or {}).get("annotations") or {}
        cloned_name = annotations.get(c.TEMPLATE_CLONED_FROM_NAME_ANNOTATION)
        cloned_kind = annotations.get(c.TEMPLATE_CLONED_FROM_GROUP_KIND_ANNOTATION)
        if cloned_name is not None and (cloned_name != ref.get("name") or
                                        cloned_kind != f"{ref.get('kind')}.{ref.get('apiGroup')}"):
            reasons.append(f"{ref.get('kind')} is not up-to-date")
    if config is not None and comparable_config(config.get("spec")) != comparable_config(
            spec.get("kubeadmConfigSpec")):
        reasons.append("KubeadmConfig is not up-to-date")
    after = parse_time((spec.get("rollout") or {}).get("after"))
    if after is not None and after <= now and created(machine) < after:
        reasons.append("Machine rollout.after expired")
    days = ((spec.get("rollout") or {}).get("before") or {}).get("certificatesExpiryDays")
    expiry = parse_time((machine.get("status") or {}).get("certificatesExpiryDate"))
    if days and expiry is not None and expiry <= now + timedelta(days=int(days)):
        reasons.append("Certificates will expire soon")
    return reasons


def control_plane_failure_domains(cluster: Object) -> list[str]:
    domains = (cluster.get("status") or {}).get("failureDomains") or []
    if isinstance(domains, dict):  # v1beta1 shape: name -> {controlPlane, attributes}
        return sorted(n for n, d in domains.items() if (d or {}).get("controlPlane"))
    return sorted(str(d["name"]) for d in domains if d.get("controlPlane") and d.get("name"))


def failure_domain_of(machine: Object) -> str:
    return str((machine.get("spec") or {}).get("failureDomain") or "")


def failure_domain_for_new_machine(domains: list[str], machines: list[Object]) -> str | None:
    if not domains:
        return None
    counts = Counter(failure_domain_of(m) for m in machines)
    return min(domains, key=lambda d: (counts[d], d))


def _oldest_in_busiest_domain(candidates: list[Object]) -> Object:
    counts = Counter(failure_domain_of(m) for m in candidates)
    busiest = max(counts, key=lambda d: (counts[d], d))
    in_domain = [m for m in candidates if failure_domain_of(m) == busiest]
    return min(in_domain, key=lambda m: (created(m), m["metadata"]["name"]))


def machine_to_delete(machines: list[Object], outdated: set[str]) -> Object | None:
    live = [m for m in machines if not is_deleting(m)]
    if not live:
        return None
    marked = [m for m in live if c.DELETE_MACHINE_ANNOTATION in
              (m["metadata"].get("annotations") or {})]
    old = [m for m in live if m["metadata"]["name"] in outdated]
    for group in ([m for m in marked if m["metadata"]["name"] in outdated], marked, old, live):
        if group:
            return _oldest_in_busiest_domain(group)
    return None


def owned(machines: list[Object], kcp: Object) -> list[Object]:
    """The Machines this KCP controls (controller ownerReference by UID, or by kind and name
    when the cache entry predates the UID)."""
    uid, name = kcp["metadata"].get("uid"), kcp["metadata"]["name"]
    out = []
    for m in machines:
        for ref in m["metadata"].get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == types.CONTROL_PLANE.kind and \
                    GVK(str(ref.get("apiVersion")), "").group == types.GROUP and \
                    (ref.get("uid") == uid or (not uid and ref.get("name") == name)):
                out.append(m)
                break
    return out
