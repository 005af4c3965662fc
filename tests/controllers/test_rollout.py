"""Rollout arithmetic (upstream mdutil): fenceposts, surge/unavailable, the new MachineSet's
target and the scale-down of old MachineSets that never drops availability below the floor."""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.controllers.rollout import (
    MachineSetState,
    deployment_phase,
    max_replicas_annotation,
    max_surge,
    max_unavailable,
    new_ms_new_replicas,
    plan_old_scale_down,
    resolve_fenceposts,
    scaled_value,
)


def md(replicas: int, surge: Any = None, unavailable: Any = None,
       kind: str = "RollingUpdate") -> dict[str, Any]:
    rolling: dict[str, Any] = {}
    if surge is not None:
        rolling["maxSurge"] = surge
    if unavailable is not None:
        rolling["maxUnavailable"] = unavailable
    return {"replicas": replicas,
            "rollout": {"strategy": {"type": kind, "rollingUpdate": rolling}}}


@pytest.mark.parametrize(("value", "total", "up", "want"), [
    (3, 10, True, 3), ("25%", 10, True, 3), ("25%", 10, False, 2), ("25%", 4, False, 1),
    ("33%", 3, True, 1), ("33%", 3, False, 0), ("100%", 7, False, 7), ("0%", 5, True, 0),
    (None, 5, True, 0),
])
def test_scaled_value(value: Any, total: int, up: bool, want: int) -> None:
    assert scaled_value(value, total, up) == want


@pytest.mark.parametrize("bad", ["3", "abc%", True])
def test_scaled_value_rejects_non_percent_strings(bad: Any) -> None:
    with pytest.raises(ValueError):
        scaled_value(bad, 10, True)


@pytest.mark.parametrize(("surge", "unavailable", "desired", "want"), [
    (None, None, 3, (1, 0)),          # defaults 1 / 0
    ("0%", "0%", 3, (0, 1)),          # both zero: unavailable becomes 1
    (0, 0, 0, (0, 1)),
    ("10%", "10%", 5, (1, 0)),        # surge rounds up, unavailable down
    ("50%", "50%", 5, (3, 2)),
    (2, "30%", 10, (2, 3)),
])
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int,
                            want: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == want


def test_max_surge_and_unavailable() -> None:
    assert (max_surge(md(3)), max_unavailable(md(3))) == (1, 0)
    assert max_unavailable(md(2, 0, 5)) == 2            # capped at replicas
    assert max_unavailable(md(0, 1, 1)) == 0            # nothing to make unavailable
    assert (max_surge(md(3, kind="OnDelete")), max_unavailable(md(3, kind="OnDelete"))) == (0, 0)
    assert max_surge({"replicas": 4}) == 1              # no rollout block at all
    assert max_replicas_annotation(md(3, 2)) == 5


@pytest.mark.parametrize(("spec", "total", "new", "want"), [
    (md(3), 3, 0, 1),                 # surge 1: one new machine
    (md(3), 4, 1, 1),                 # at the ceiling: wait
    (md(3, 2), 3, 0, 2),
    (md(3, 5), 3, 0, 3),              # never beyond replicas
    (md(3), 2, 2, 3),                 # old gone: complete the new set
    (md(3, 0, 1), 3, 0, 0),           # no surge: must scale old down first
    (md(3, kind="OnDelete"), 3, 0, 0),
    (md(3, kind="OnDelete"), 2, 0, 1),
    (md(3, kind="OnDelete"), 1, 1, 3),
])
def test_new_ms_new_replicas(spec: dict[str, Any], total: int, new: int, want: int) -> None:
    assert new_ms_new_replicas(spec, total, new) == want


def S(name: str, replicas: int, available: int, created: str = "") -> MachineSetState:
    return MachineSetState(name, replicas, available, created or name)


def test_old_scale_down_waits_for_new_availability() -> None:
    # surge 1 / unavailable 0, new machine not available yet: nothing may go.
    assert plan_old_scale_down(md(3), S("new", 1, 0), [S("old", 3, 3)]) == {}
    # new machine available: one old machine may go.
    assert plan_old_scale_down(md(3), S("new", 1, 1), [S("old", 3, 3)]) == {"old": 2}


def test_old_scale_down_removes_unavailable_first() -> None:
    # Two old machines unavailable: removing them costs no availability.
    assert plan_old_scale_down(md(3), S("new", 1, 1), [S("old", 3, 1)]) == {"old": 2}
    assert plan_old_scale_down(md(3, 1, 1), S("new", 1, 1), [S("old", 3, 1)]) == {"old": 1}
    # As upstream: the budget is all(4) - minAvailable(3) - newUnavailable(1) = 0, so even the
    # unavailable old machines wait for the new one.
    assert plan_old_scale_down(md(3), S("new", 1, 0), [S("old", 3, 1)]) == {}


def test_old_scale_down_with_max_unavailable() -> None:
    assert plan_old_scale_down(md(4, 0, 2), S("new", 0, 0), [S("old", 4, 4)]) == {"old": 2}
    assert plan_old_scale_down(md(4, 0, "50%"), S("new", 2, 0), [S("old", 2, 2)]) == {}


def test_old_scale_down_oldest_first() -> None:
    plan = plan_old_scale_down(md(3, 0, 2), S("new", 0, 0),
                               [S("b", 2, 2, "2026-01-02"), S("a", 1, 1, "2026-01-01")])
    assert plan == {"a": 0, "b": 1}


def test_old_scale_down_never_breaks_the_floor() -> None:
    # Exhaustive small search: after applying the plan, worst-case available (all removed
    # machines were available) never drops below replicas - maxUnavailable.
    for replicas in range(0, 5):
        for surge in range(0, 3):
            for unav in range(0, 3):
                spec = md(replicas, surge, unav)
                floor = replicas - max_unavailable(spec)
                for new_r in range(0, replicas + 1):
                    for new_a in range(0, new_r + 1):
                        for old_r in range(0, replicas + surge + 1):
                            for old_a in range(0, old_r + 1):
                                plan = plan_old_scale_down(spec, S("new", new_r, new_a),
                                                           [S("old", old_r, old_a)])
                                removed = old_r - plan.get("old", old_r)
                                assert removed >= 0
                                unhealthy = old_r - old_a
                                lost = max(removed - unhealthy, 0)
                                before = new_a + old_a
                                if before >= floor:
                                    assert before - lost >= floor, (spec, new_r, new_a,
                                                                    old_r, old_a, plan)


def test_deployment_phase() -> None:
    assert deployment_phase(3, 3, 3) == "Running"
    assert deployment_phase(3, 3, 1) == "ScalingUp"
    assert deployment_phase(3, 5, 3) == "ScalingDown"
