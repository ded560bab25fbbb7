"""The symbolic oracle: plans that `skills.registry.apply` executes to the goal, and no shorter ones exist."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from embodied.planners.oracle import OracleAgent, OraclePlanner, analyse, heuristic, plan
from embodied.world.predicates import goal_satisfied
from embodied.world.scene import COLOR_NAMES, LOCATION_NAMES, TABLE_Z, ObjectState, SceneState
from embodied.world.symbolic import SymbolicState
from embodied.world.tasks import SceneSpec, Task
from envs.generator import FAMILY_NAMES, generate
from skills import apply
from skills.base import SkillCall

R, B, G, Y = "red block", "blue block", "green block", "yellow block"


def initial_state(task: Task) -> SymbolicState:
    return SymbolicState({f"{c} block": "table" for c in task.scene.blocks},
                         tuple(f"{c} bowl" for c in task.scene.bowls))


def execute(state: SymbolicState, calls: list[SkillCall]) -> SymbolicState:
    for call in calls:
        state, why = apply(state, call)
        assert why is None, (call, why)
    return state


def moves_needed(goal: list[list]) -> int:
    """From the all-on-table start: one move per in/at/on subject, n - 1 per tower of n."""
    subjects = {p[1] for p in goal if p[0] != "stacked"}
    towers = [len(p[1]) - 1 for p in goal if p[0] == "stacked"]
    return max([len(subjects), *towers])


def shortest(state: SymbolicState, goal: list[list], limit: int) -> int | None:
    """Breadth-first search over every call `apply` accepts: the true optimum (small states only)."""
    targets = state.blocks + list(state.bowls) + list(LOCATION_NAMES)
    frontier, seen = [state], {state.key()}
    for depth in range(limit + 1):
        if any(goal_satisfied(goal, s) for s in frontier):
            return depth
        nxt = []
        for s in frontier:
            calls = [("place", {"target": t}) for t in targets] if s.held else [
                ("pick_and_place", {"block": b, "target": t}) for b in s.blocks for t in targets]
            for name, args in calls:
                s2, why = apply(s, SkillCall(name, args))
                if why is None and s2.key() not in seen:
                    seen.add(s2.key())
                    nxt.append(s2)
        frontier = nxt
    return None


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_family_plans_optimally(family: str) -> None:
    worst = 0.0
    for seed in range(30):
        task = generate(family, seed)
        start = initial_state(task)
        t0 = time.perf_counter()
        calls = plan(start, task.goal)
        worst = max(worst, time.perf_counter() - t0)
        assert calls is not None, task.id
        assert all(c.name == "pick_and_place" for c in calls)
        assert goal_satisfied(task.goal, execute(start, calls)), task.id
        assert len(calls) == moves_needed(task.goal), task.id
        assert 2 * len(calls) + 2 <= task.max_steps
    assert worst < 0.5  # typically ~1 ms; generous for slow machines


def test_clearing_move_when_block_is_under_another() -> None:
    state = SymbolicState({R: B, B: "table", G: "table"}, ("green bowl",))
    calls = plan(state, [["in", B, "green bowl"]])
    assert calls is not None and len(calls) == 2
    assert calls[0].args["block"] == R and calls[1].args == {"block": B, "target": "green bowl"}
    assert goal_satisfied([["in", B, "green bowl"]], execute(state, calls))


def test_tower_rebuild_and_blocked_target() -> None:
    state = SymbolicState({G: "table", B: G, R: B}, ())
    reverse = [["stacked", [R, B, G]], ["on", B, R], ["on", G, B]]  # red at the bottom now
    assert len(plan(state, reverse)) == 3
    # the target carries another block: clear it first
    state = SymbolicState({R: "table", B: "table", G: B}, ())
    assert len(plan(state, [["on", R, B]])) == 2
    # a block that must end above a block that must move: off and back on
    state = SymbolicState({R: "table", B: "red bowl", G: B, Y: G}, ("red bowl",))
    goal = [["on", B, R], ["on", G, B], ["on", Y, G]]
    assert len(plan(state, goal)) == heuristic(state, goal) == 5  # the lower bound proves it optimal


def test_held_block_is_placed_first() -> None:
    state = SymbolicState({R: "hand", B: "table"}, ("green bowl",), held=R)
    calls = plan(state, [["on", B, R]])
    assert calls is not None and calls[0].name == "place"
    assert goal_satisfied([["on", B, R]], execute(state, calls)) and len(calls) == 2
    assert plan(state, [["in", R, "green bowl"]]) == [SkillCall("place", {"target": "green bowl"})]


def test_unreachable_goals_return_none(caplog: pytest.LogCaptureFixture) -> None:
    state = SymbolicState({R: "table", B: "table", G: "table"}, ("green bowl",))
    t0 = time.perf_counter()
    assert plan(state, [["on", R, B], ["on", B, R]]) is None
    assert plan(state, [["on", R, G], ["on", B, G]]) is None
    assert plan(state, [["stacked", [R, B]], ["in", R, "green bowl"], ["at", B, "middle"]]) is None
    assert plan(state, [["in", Y, "green bowl"]]) is None  # not in the scene
    assert plan(SymbolicState({R: "unknown", B: "table"}), [["on", R, B]]) is None  # fallen over
    assert plan(SymbolicState({R: "table", B: "unknown"}), [["on", R, B]]) is None
    assert time.perf_counter() - t0 < 0.5
    assert analyse([["on", R, B], ["on", B, R]], state).conflict is not None
    with caplog.at_level(logging.WARNING):
        assert plan(state, [["stacked", [R, B, G]]], max_nodes=1) is None
    assert "gave up" in caplog.text


def test_already_satisfied() -> None:
    state = SymbolicState({R: B, B: "table"})
    assert plan(state, [["on", R, B]]) == []
    assert OraclePlanner([["on", R, B]]).next_call(state) == SkillCall("done")


def test_matches_breadth_first_search_on_random_states() -> None:
    rng = np.random.default_rng(0)
    for _ in range(60):
        colors = list(rng.choice(COLOR_NAMES, 3, replace=False))
        blocks, bowls = [f"{c} block" for c in colors], (f"{rng.choice(COLOR_NAMES)} bowl",)
        support: dict[str, str] = {}
        for b in blocks:
            free = [x for x in [*support, *LOCATION_NAMES] if x not in support.values()]
            support[b] = str(rng.choice(["table", "table", bowls[0], *free]))
        state = SymbolicState(support, bowls)
        p = list(rng.permutation(blocks))
        goal = [[["in", p[0], bowls[0]], ["on", p[1], p[0]]], [["stacked", p]],
                [["stacked", p], ["on", p[1], p[0]], ["on", p[2], p[1]]],
                [["at", p[0], "middle"], ["on", p[2], p[1]]]][int(rng.integers(4))]
        calls = plan(state, goal)
        best = shortest(state, goal, 6)
        assert (None if calls is None else len(calls)) == best, (support, goal)
        if calls is not None:
            assert goal_satisfied(goal, execute(state, calls))
            assert heuristic(state, goal) <= best


def test_planner_recovers_after_failed_skills() -> None:
    rng = np.random.default_rng(1)
    for seed in range(10):
        task = generate("ordered_tower", seed)
        planner, state = OraclePlanner(task.goal), initial_state(task)
        for _ in range(30):
            call = planner.next_call(state)
            assert call is not None
            if call.name == "done":
                break
            if rng.random() < 0.3:  # the physical skill dropped the block on the table
                state = state.copy()
                state.support[call.args["block"]] = "table"
            else:
                state = execute(state, [call])
        assert goal_satisfied(task.goal, state)
    assert OraclePlanner([["on", R, B], ["on", B, R]]).next_call(SymbolicState({R: "table", B: "table"})) is None


def test_oracle_agent_reads_the_scene() -> None:
    rest = TABLE_Z + 0.02
    scene = SceneState(objects={
        R: ObjectState(R, "block", "red", (0.4, 0.1, rest)),
        "green bowl": ObjectState("green bowl", "bowl", "green", (0.5, -0.1, TABLE_Z)),
    })
    task = Task("t", "put the red block in the green bowl", SceneSpec(["red"], ["green"]), [["in", R, "green bowl"]])
    agent = OracleAgent()
    agent.reset(task)
    assert agent.step(scene).call == SkillCall("pick_and_place", {"block": R, "target": "green bowl"})
