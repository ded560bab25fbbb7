"""``place_at``: a primitive added as one file plus one registry line, picked up by the oracle, SayCan and the
library with no other edit; and the point form of the ``at`` predicate it serves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embodied.library.api import API_METHODS, DryRunAPI
from embodied.library.executor import run_skill
from embodied.planners.oracle import OracleAgent, plan
from embodied.planners.saycan import candidate_calls
from embodied.world.errors import PredicateError, TaskError
from embodied.world.predicates import describe, goal_satisfied, holds, validate_goal
from embodied.world.scene import LOCATIONS, ObjectState, SceneState
from embodied.world.symbolic import AT_XY_TOL, SymbolicState, abstract, parse_point, point_text
from embodied.world.tasks import Task
from skills import SkillCall, apply, call_text, get_skill
from tests.conftest import make_task

R, B, G = "red block", "blue block", "green block"


def call(block: str, point: str) -> SkillCall:
    return SkillCall("place_at", {"block": block, "point": point})


def scene(held: str | None = None) -> SceneState:
    objs = {R: ObjectState(R, "block", "red", (0.40, 0.00, 0.645)),
            B: ObjectState(B, "block", "blue", (0.55, 0.15, 0.645)),
            "green bowl": ObjectState("green bowl", "bowl", "green", (0.45, -0.20, 0.626))}
    return SceneState(objects=objs, ee_position=(0.3, 0.0, 1.0), held=held)


def test_points_parse_and_print() -> None:
    assert parse_point([0.5, 0.1]) == parse_point("0.50,0.10") == parse_point("(0.5, 0.1)") == (0.5, 0.1)
    mx, my = LOCATIONS["middle"]
    assert parse_point("middle+0.05,-0.10") == pytest.approx((mx + 0.05, my - 0.10))
    assert point_text([0.5, 0.1]) == "0.50,0.10" and point_text("middle+0.05,-0.1") == "middle+0.05,-0.10"
    assert point_text([0.125, -0.2]) == "0.125,-0.20"
    for bad in ([0.5], [0.5, "a"], "0.5", "midle+0.1,0.1", [0.5, float("nan")], {"x": 0.5}):
        with pytest.raises(ValueError):
            parse_point(bad)


def test_text_affordance_and_effect() -> None:
    assert call_text(call(R, "0.50,0.10")) == "pick up the red block and place it at (0.50, 0.10)"
    assert call_text(call(R, "middle+0.05,-0.10")) == \
        "pick up the red block and place it at the middle + (0.05, -0.10)"
    skill = get_skill("place_at")
    aff = {p: skill.affordance(scene(), skill.params({"block": R, "point": p}))
           for p in ("0.60,-0.05", "0.55,0.12", "0.47,-0.17", "0.95,0.00", "nonsense")}
    assert aff == {"0.60,-0.05": 1.0, "0.55,0.12": 0.0, "0.47,-0.17": 0.0, "0.95,0.00": 0.0, "nonsense": 0.0}
    assert skill.affordance(scene(held=B), skill.params({"block": R, "point": "0.60,-0.05"})) == 0.0
    sym = abstract(scene())
    nxt, why = apply(sym, call(R, "0.60,-0.05"))
    assert why is None and nxt.support[R] == "table" and nxt.xy[R] == (0.6, -0.05) and nxt.held is None
    assert sym.xy[R] == (0.4, 0.0)  # the input state is untouched
    near_corner = point_text([LOCATIONS["top left corner"][0], LOCATIONS["top left corner"][1] - 0.03])
    assert apply(sym, call(R, near_corner))[0].support[R] == "top left corner"  # as abstract would read it
    assert apply(sym, call(R, "0.55,0.12"))[1] == "target occupied"  # the blue block is there
    assert apply(sym, call(R, "0.47,-0.17"))[1] == "target occupied"  # the bowl is there
    assert apply(sym, call(R, "1.20,0.00"))[1] == "unreachable"
    assert apply(sym, call(R, "x"))[1].startswith("a point is")
    held, _ = apply(sym, SkillCall("pick", {"block": B}))
    assert apply(held, call(R, "0.60,-0.05"))[1] == "hand already holds blue block"
    nxt, why = apply(held, call(B, "0.55,0.12"))  # the held block may go back near where it was
    assert why is None and nxt.held is None and nxt.xy[B] == (0.55, 0.12)
    stacked = SymbolicState({R: B, B: "table"}, xy={B: (0.55, 0.15)})
    assert apply(stacked, call(B, "0.60,-0.05"))[1].startswith("block is under")


def test_at_point_predicate_and_validation() -> None:
    objects = ["red block", "blue block", "green bowl"]
    for ok in ([0.5, 0.1], "0.50,0.10", "middle+0.05,-0.10", [0.3, -0.3]):
        validate_goal([["at", R, ok]], objects)
    for bad, msg in (([0.9, 0.1], "off the table"), ([0.5], r"\[x, y\]"), ([0.5, "a"], r"\[x, y\]"),
                     ("middle+0.5", "'x,y'"), ("midle+0.1,0.0", "did you mean"), ({"x": 1}, "point")):
        with pytest.raises(PredicateError, match=msg):
            validate_goal([["at", R, bad]], objects)
    with pytest.raises(TaskError, match="off the table"):
        Task.from_dict({"id": "t", "instruction": "x", "scene": {"blocks": ["red"]},
                        "goal": [["at", "red block", [0.5, 0.5]]]}, "f.jsonl:3")
    on_table = SymbolicState({R: "table", B: R}, xy={R: (0.52, 0.08)})
    assert holds(["at", R, [0.5, 0.1]], on_table) and not holds(["at", R, [0.5, 0.2]], on_table)
    assert not holds(["at", B, [0.52, 0.08]], on_table)  # on a block, not directly on the table
    assert not holds(["at", R, [0.5, 0.1]], SymbolicState({R: "table"}))  # position unknown
    assert describe(["at", R, [0.5, 0.1]]) == "the red block is at (0.50, 0.10)"


def test_oracle_and_saycan_offer_it_only_for_goal_points() -> None:
    goal = [["at", R, [0.62, -0.05]], ["on", B, R]]
    sym = abstract(scene())
    assert plan(sym, goal) == [call(R, "0.62,-0.05"),
                               SkillCall("pick_and_place", {"block": B, "target": R})]
    assert plan(sym, [["at", B, "middle+0.0,0.1"]]) == [call(B, "middle+0.00,0.10")]
    assert plan(sym, [["at", B, "middle+0.0,0.02"]]) == [SkillCall("pick_and_place", {"block": B, "target": "middle"})]
    assert [c.name for c in plan(sym, [["at", R, [0.55, 0.12]]])] == ["pick_and_place", "place_at"]  # blue moves
    assert plan(sym, [["at", R, [0.4, 0.0]]]) == []  # already there
    assert plan(sym, [["at", R, [0.6, 0.0]], ["on", R, B]]) is None  # contradictory
    ordinary = candidate_calls(scene())
    assert all(c.name != "place_at" for c in ordinary)
    with_goal = candidate_calls(scene(), goal)
    assert with_goal[:len(ordinary)] == ordinary and with_goal[len(ordinary):] == [call(R, "0.62,-0.05")]
    assert candidate_calls(scene(held=B), goal)[-1].name == "place"  # only the held block's point calls


def test_saycan_scores_and_chooses_it() -> None:
    """The planner itself offers the goal's point call next to its usual options and can pick it."""
    from embodied.llm.base import LanguageModel, Scores
    from embodied.planners.saycan import SayCanConfig, SayCanPlanner

    class PointLover(LanguageModel):
        """Likes any option that names the point, dislikes everything else."""

        def __init__(self) -> None:
            super().__init__("point-lover")

        def score(self, prompt: str, options: list) -> Scores:
            return Scores(np.array([0.0 if "(0.60, -0.05)" in o else -10.0 for o in options]),
                          np.ones(len(options), np.int64))

        def generate(self, prompt: str, max_new_tokens: int = 32, stop: tuple = ()) -> str:
            return ""

    planner = SayCanPlanner(SayCanConfig(adapter="none", examples=0), lm=PointLover())
    planner.reset(Task.from_dict({"id": "p", "instruction": "put the red block at (0.60, -0.05)",
                                  "scene": {"blocks": ["red", "blue"], "bowls": ["green"]},
                                  "goal": [["at", R, [0.6, -0.05]]]}))
    decision = planner.step(scene())
    assert decision.call == call(R, "0.60,-0.05")
    assert [o.text for o in decision.options].count("pick up the red block and place it at (0.60, -0.05)") == 1


def test_library_api_exposes_it() -> None:
    assert "place_at" in API_METHODS
    code = ("def put_at(api, block):\n"
            "    \"\"\"Put a block at a point.\"\"\"\n"
            "    api.place_at(block, '0.60,-0.05')\n")
    api = DryRunAPI(scene())
    assert run_skill(code, api, {"block": R}, API_METHODS).success
    assert api.calls == [call(R, "0.60,-0.05")] and goal_satisfied([["at", R, [0.6, -0.05]]], api.final_state)
    bad = DryRunAPI(scene())
    assert not run_skill(code.replace("0.60,-0.05", "0.55,0.12"), bad, {"block": R}, API_METHODS).success


@pytest.fixture
def table(env):
    task = make_task(["red", "blue", "green"], ["yellow"], [["at", R, [0.45, 0.15]]], seed=11)
    env.reset(seed=11, options={"task": task})
    return env


@pytest.mark.parametrize("point", ["0.45,0.15", "middle+0.10,0.15"])
def test_place_at_with_physics(table, point: str) -> None:
    skill = get_skill("place_at")
    res = skill.execute(table.robot, skill.params({"block": R, "point": point}))
    assert res.success, res
    assert res.steps > 200  # it moved through physics, it was not teleported
    xy = table.world.object_pose(R)[0][:2]
    assert math.dist(xy, parse_point(point)) < 0.02 < AT_XY_TOL
    assert R in abstract(table.scene_state()).blocks_at(parse_point(point))
    again = skill.execute(table.robot, skill.params({"block": B, "point": point}))
    assert not again.success and again.reason == "target occupied" and again.steps == 0


def test_oracle_plans_and_executes_a_point_goal(env) -> None:
    from embodied.runtime.episode import run_episode

    task = Task.from_dict({"id": "point", "instruction": "put the red block at (0.45, 0.15) and the blue one on it",
                           "scene": {"blocks": ["red", "blue", "green"], "bowls": ["yellow"]},
                           "goal": [["at", R, [0.45, 0.15]], ["on", B, R], ["at", G, "middle+0.10,-0.12"]],
                           "seed": 11})
    result = run_episode(env, task, OracleAgent())
    assert result.success, result.steps
    names = [s["skill"] for s in result.steps]
    assert names.count("place_at") == 2 and "pick_and_place" in names
    assert np.linalg.norm(env.world.object_pose(R)[0][:2] - np.array([0.45, 0.15])) < AT_XY_TOL
