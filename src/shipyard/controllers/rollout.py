"""MachineDeployment rollout arithmetic, as upstream's `mdutil` and rolling-update reconciler.

Why a module of its own: the numbers decide how many machines a rollout may add or remove at
once, i.e. whether a user's workload keeps its capacity. They are pure functions of replica
counts, so they are unit-tested exhaustively here and the controller only applies the plan.

Contract (upstream Cluster API `internal/controllers/machinedeployment/mdutil/util.go` and
`machinedeployment_rolling.go`, behaviour only):

- `scaled_value(v, total, round_up)`: an int-or-percent ("25%") scaled against `total`;
- `resolve_fenceposts(max_surge, max_unavailable, desired)`: surge rounds up, unavailable rounds
  down; if both come to 0, unavailable becomes 1 so a rollout can always progress;
- `max_surge` / `max_unavailable` of a MachineDeployment spec (RollingUpdate only; defaults 1
  and 0; unavailable is capped at the replicas);
- `new_ms_new_replicas`: the new MachineSet's target, min(replicas + surge - Σ spec.replicas,
  replicas - new) added to it (OnDelete: fill the gap up to replicas);
- `plan_old_scale_down`: the new spec.replicas of the old MachineSets, first removing their
  unavailable machines, then available ones, oldest MachineSet first, never letting the
  available count fall below replicas - maxUnavailable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

IntOrString = int | str

DEFAULT_MAX_SURGE: IntOrString = 1
DEFAULT_MAX_UNAVAILABLE: IntOrString = 0
ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"


def scaled_value(value: IntOrString | None, total: int, round_up: bool) -> int:
    """apimachinery's GetScaledValueFromIntOrPercent (a bare numeric string is invalid)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ValueError(f'invalid value for IntOrString: invalid type: string is not a '
                         f'percentage: "{value}"')
    try:
        percent = int(value[:-1])
    except ValueError:
        raise ValueError(f'invalid value "{value}": invalid percentage') from None
    # Integer arithmetic keeps 25% of 4 exactly 1 (no float fuzz).
    if round_up:
        return -((-percent * total) // 100)
    return (percent * total) // 100


def resolve_fenceposts(max_surge: IntOrString | None, max_unavailable: IntOrString | None,
                       desired: int) -> tuple[int, int]:
    surge = scaled_value(DEFAULT_MAX_SURGE if max_surge is None else max_surge, desired, True)
    unavailable = scaled_value(
        DEFAULT_MAX_UNAVAILABLE if max_unavailable is None else max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        # Validation forbids 0/0; resolving 0%/0% against a small count must still progress.
        unavailable = 1
    return surge, unavailable


def strategy_of(spec: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """(strategy type, rollingUpdate) of a MachineDeployment spec, defaulted."""
    strategy = (spec.get("rollout") or {}).get("strategy") or {}
    return str(strategy.get("type") or ROLLING_UPDATE), strategy.get("rollingUpdate") or {}


def replicas_of(spec: Mapping[str, Any]) -> int:
    value = spec.get("replicas")
    return 1 if value is None else int(value)


def max_surge(spec: Mapping[str, Any]) -> int:
    kind, rolling = strategy_of(spec)
    if kind != ROLLING_UPDATE:
        return 0
    surge, _ = resolve_fenceposts(rolling.get("maxSurge"), rolling.get("maxUnavailable"),
                                  replicas_of(spec))
    return surge


def max_unavailable(spec: Mapping[str, Any]) -> int:
    kind, rolling = strategy_of(spec)
    replicas = replicas_of(spec)
    if kind != ROLLING_UPDATE or replicas == 0:
        return 0
    _, unavailable = resolve_fenceposts(rolling.get("maxSurge"), rolling.get("maxUnavailable"),
                                        replicas)
    return min(unavailable, replicas)


def new_ms_new_replicas(spec: Mapping[str, Any], total_spec_replicas: int,
                        new_ms_replicas: int) -> int:
    """The new MachineSet's next spec.replicas, given Σ spec.replicas over all MachineSets."""
    kind, _ = strategy_of(spec)
    replicas = replicas_of(spec)
    if kind == ROLLING_UPDATE:
        max_total = replicas + max_surge(spec)
        if total_spec_replicas >= max_total:
            return new_ms_replicas
        scale_up = min(max_total - total_spec_replicas, replicas - new_ms_replicas)
        return new_ms_replicas + max(scale_up, 0)
    if kind == ON_DELETE:
        if total_spec_replicas >= replicas:
            return new_ms_replicas
        return new_ms_replicas + (replicas - total_spec_replicas)
    raise ValueError(f"unsupported rollout strategy type {kind!r}")


@dataclass(frozen=True)
class MachineSetState:
    """What the planner needs of one MachineSet: spec.replicas and status.availableReplicas.
    `created` orders old sets (RFC 3339 strings sort chronologically), name breaks ties."""

    name: str
    replicas: int
    available: int
    created: str = ""


def _oldest_first(sets: Sequence[MachineSetState]) -> list[MachineSetState]:
    return sorted(sets, key=lambda s: (s.created, s.name))


def plan_old_scale_down(spec: Mapping[str, Any], new: MachineSetState | None,
                        old: Sequence[MachineSetState]) -> dict[str, int]:
    """New spec.replicas for the old MachineSets that should shrink now (others unchanged).

    Step 1 (cleanupUnhealthyReplicas): at most `max_scaled_down` unavailable machines of old
    sets go first, since removing them costs no availability. Step 2
    (scaleDownOldMachineSetsForRollingUpdate): available ones go while the total available stays
    above replicas - maxUnavailable.
    """
    replicas = replicas_of(spec)
    min_available = replicas - max_unavailable(spec)
    all_sets = [*old, *([new] if new is not None else [])]
    all_count = sum(s.replicas for s in all_sets)
    new_unavailable = max(new.replicas - new.available, 0) if new is not None else 0
    max_scaled_down = all_count - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}

    targets: dict[str, int] = {}
    current = {s.name: s for s in old}
    cleaned = 0
    for ms in _oldest_first(old):
        if cleaned >= max_scaled_down:
            break
        if ms.replicas == 0 or ms.replicas <= ms.available:
            continue
        unhealthy = ms.replicas - ms.available
        count = min(max_scaled_down - cleaned, unhealthy)
        targets[ms.name] = ms.replicas - count
        current[ms.name] = MachineSetState(ms.name, ms.replicas - count, ms.available,
                                           ms.created)
        cleaned += count

    available = sum(s.available for s in current.values())
    if new is not None:
        available += new.available
    if available <= min_available:
        return targets
    budget = available - min_available
    scaled = 0
    for ms in _oldest_first(list(current.values())):
        if scaled >= budget:
            break
        if ms.replicas == 0:
            continue
        count = min(ms.replicas, budget - scaled)
        targets[ms.name] = ms.replicas - count
        scaled += count
    return targets


def max_replicas_annotation(spec: Mapping[str, Any]) -> int:
    """machinedeployment.clusters.x-k8s.io/max-replicas: replicas + maxSurge."""
    return replicas_of(spec) + max_surge(spec)


def percent_of(value: IntOrString | None, total: int) -> int:
    """remediation.maxInFlight resolved against replicas (rounds up, as upstream)."""
    if value is None:
        return total
    return scaled_value(value, total, True)


def deployment_phase(desired: int, replicas: int, ready: int) -> str:
    """status.phase as upstream computes it: Running when ready == desired, ScalingUp when
    fewer are ready, ScalingDown when more machines exist than desired (checked last)."""
    phase = "Running" if desired == ready else "Unknown"
    if desired > ready:
        phase = "ScalingUp"
    if replicas > desired:
        phase = "ScalingDown"
    return phase


__all__ = [
    "DEFAULT_MAX_SURGE", "DEFAULT_MAX_UNAVAILABLE", "ON_DELETE", "ROLLING_UPDATE",
    "MachineSetState", "deployment_phase", "max_replicas_annotation", "max_surge",
    "max_unavailable", "new_ms_new_replicas", "percent_of", "plan_old_scale_down",
    "replicas_of", "resolve_fenceposts", "scaled_value", "strategy_of",
]
