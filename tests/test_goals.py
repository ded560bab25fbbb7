"""A goal in hand: the episode stops when it holds, a "done" while it is unmet is overruled, a failed call is
not repeated from an unchanged state, and when nothing feasible brings the goal closer the episode ends
`failed` with the reason that blocks it. Tasks that expect a refusal are scored as such."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np

from embodied.llm.base import LanguageModel, Scores
from embodied.planners.goal import GoalPlanner
from embodied.planners.saycan import SayCanConfig, SayCanPlanner
from embodied.runtime.episode import run_episode
from embodied.runtime.evaluate import make_report, result_row
from embodied.world.predicates import same_goal
from embodied.world.tasks import load_tasks
from envs.generator import generate
from tests.conftest import make_task

WEDGED = next(t for t in load_tasks("benchmarks/generated_100.jsonl") if t.id == "matching_bowls-9084")


class ScriptedLM(LanguageModel):
    """Scores each option with a rule: a stand-in for the language model's preferences."""

    def __init__(self, rule: Callable[[str], float]) -> None:
        super().__init__("scripted")
        self.rule = rule
        self.calls = 0

    def score(self, prompt: str, options: Sequence) -> Scores:
        self.calls += 1
        return Scores(np.array([self.rule(o) for o in options], np.float64), np.ones(len(options), np.int64))

    def generate(self, prompt: str, max_new_tokens: int = 32, stop: Sequence[str] = ()) -> str:
        return ""


def matching(option: str) -> float:
    """Loves "done" most, then a block into the bowl of its colour; anything else last."""
    words = option.split()
    if option.strip(" .") == "done":
        return 0.0
    same = len(words) > 8 and words[3] == words[-2] and words[-1].startswith("bowl")
    return -1.0 if same else -10.0


class Everything:
    """An affordance model that believes every call will work (as a learned one may, wrongly)."""

    name = "everything"

    def scores(self, obs: dict, state: object, calls: Sequence) -> np.ndarray:
        return np.ones(len(calls))


def saycan(lm: LanguageModel, **kw: object) -> SayCanPlanner:
    return SayCanPlanner(SayCanConfig(adapter="none", examples=0), lm=lm, **kw)


def test_wedged_block_ends_failed_with_the_blocking_reason(env):
    """Matching bowls with one block wedged between two bowls: the other two go in, then the episode ends
    with the reason (no room for the hand), not a "done" that claims success."""
    result = run_episode(env, WEDGED, saycan(ScriptedLM(matching)))
    assert result.outcome == "failed" and result.summary()["judged_by"] == "goal"
    assert "no room for the hand" in result.reason and "pink block" in result.reason
    assert len(result.steps) == 2 and all(s["result"]["success"] for s in result.steps)
    assert result.trace[-1]["chosen"] is None  # not "done": the planner said what blocks the goal
    assert len(result.trace) < WEDGED.max_steps


def test_a_call_that_failed_its_pre_check_is_not_chosen_again(env):
    """An affordance model that believes everything: the wedged pick fails its pre-check once (no physics),
    is never chosen again from that state, and the episode ends with the blocking reason."""
    def wedged_first(option: str) -> float:
        return 0.0 if "pink block and place it in the pink bowl" in option else matching(option)

    planner = saycan(ScriptedLM(wedged_first), affordances=Everything())
    result = _with_obs(env, planner)
    tries = [s for s in result.steps if s["args"].get("block") == "pink block"]
    assert len(tries) == 1 and tries[0]["result"]["reason"] == "no room for the hand"
    assert tries[0]["result"]["steps"] == 0
    assert result.outcome == "failed" and "no room for the hand" in result.reason
    assert len(result.trace) < WEDGED.max_steps


def _with_obs(env, planner):
    """Run with sensors (ground-truth state, analytic success) so the planner's affordance model is asked."""
    from embodied.runtime.sensing import Sensing, SensingConfig

    sensing = Sensing(env.robot, SensingConfig(state="ground-truth", affordance="analytic", success="analytic"))
    return run_episode(env, WEDGED, planner, sensing=sensing)


def test_done_is_overruled_until_the_goal_holds_and_the_episode_stops_when_it_does(env):
    task = make_task(["red", "blue"], ["green"], [["in", "red block", "green bowl"]], seed=3)
    lm = ScriptedLM(lambda o: 0.0 if o.strip(" .") == "done" else -1.0 if "red block and place it in" in o
                    else -10.0)
    result = run_episode(env, task, saycan(lm))
    assert result.outcome == "success" and [s["text"] for s in result.steps] == [
        "pick up the red block and place it in the green bowl"]
    assert result.trace[-1]["note"] == "the goal holds on the perceived state"
    assert lm.calls == 1  # the stop needed no model call


def test_goal_planner_reaches_goals_and_stops_with_a_reason(env):
    ok = run_episode(env, generate("stack_three", 11), GoalPlanner())
    assert ok.outcome == "success" and ok.extra["planning_success"]
    stuck = run_episode(env, WEDGED, GoalPlanner())  # it clears room by moving neighbours, then runs out
    assert stuck.outcome == "failed" and stuck.reason.startswith("nothing feasible remains")
    assert "no room for the hand" in stuck.reason and stuck.trace[-1]["chosen"] is None


def test_refusal_tasks_load_and_score_only_a_refusal_before_motion(tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text(json.dumps({"id": "r1", "instruction": "   ", "scene": {"blocks": ["red"], "bowls": []},
                             "expect": "cannot", "why": "blank"}) + "\n")
    (task,) = load_tasks(f)
    assert task.expect == "cannot" and task.goal == [] and task.to_dict()["why"] == "blank"

    from embodied.runtime.episode import EpisodeResult

    refused = EpisodeResult(task=task, planner="saycan", outcome="cannot", reason="Blank.")
    moved = EpisodeResult(task=task, planner="saycan", outcome="success",
                          steps=[{"result": {"success": True, "reason": ""}}])
    rows = [result_row(refused), result_row(moved)]
    assert rows[0]["success"] and not rows[1]["success"] and rows[1]["false_success"]
    report = make_report(rows)
    assert report["refusals"] == {"n": 2, "refused": 1, "false_successes": 1, "moved_before_refusing": 1,
                                  "refusal_rate": 0.5, "refusal_rate_n": 2, "refusal_rate_ci95": [0.0945, 0.9055]}
    assert report["false_successes"] == 1


def test_goals_compare_up_to_order():
    assert same_goal([["stacked", ["red block", "blue block"]], ["in", "red block", "green bowl"]],
                     [["in", "red block", "green bowl"], ["stacked", ["blue block", "red block"]]])
    assert not same_goal([["on", "red block", "blue block"]], [["on", "blue block", "red block"]])


def test_a_refusal_rules_out_every_call_refused_for_the_same_reason():
    """After "pick up the blue block ..." is refused because the blue block is not clear, no other call that
    moves the blue block is offered until it is clear again."""
    from embodied.planners.guard import GoalGuard
    from embodied.world.scene import ObjectState, SceneState
    from skills import SkillCall, SkillResult

    objs = {"blue block": ObjectState("blue block", "block", "blue", (0.5, 0.0, 0.645)),
            "red block": ObjectState("red block", "block", "red", (0.5, 0.0, 0.685)),
            "green bowl": ObjectState("green bowl", "bowl", "green", (0.45, -0.2, 0.626))}
    state = SceneState(objects=objs, ee_position=(0.3, 0.0, 1.0))
    guard = GoalGuard()
    guard.reset([["in", "blue block", "green bowl"]])
    calls = [SkillCall("pick_and_place", {"block": "blue block", "target": t})
             for t in ("green bowl", "middle", "top left corner")]
    guard.allowed(state, calls)
    guard.record(calls[0], SkillResult(False, "not clear", 0))
    ok, _ = guard.allowed(state, calls + [SkillCall("pick_and_place", {"block": "red block", "target": "middle"})])
    assert ok == [False, False, False, True]


def test_a_part_of_the_goal_already_reached_is_not_undone_unless_a_plan_needs_it():
    """With the red block in the green bowl and the blue one still out, taking the red block out again is not
    offered; moving the blue one in is. When the reached part must move first (a block in the bowl that has
    to go under another one), the move that a shortest plan starts with is still offered."""
    from embodied.planners.guard import GoalGuard
    from embodied.planners.oracle import plan
    from embodied.world.scene import ObjectState, SceneState
    from embodied.world.symbolic import abstract
    from skills import SkillCall

    bowl = ObjectState("green bowl", "bowl", "green", (0.45, -0.2, 0.626))
    objs = {"red block": ObjectState("red block", "block", "red", (0.45, -0.2, 0.646)),
            "blue block": ObjectState("blue block", "block", "blue", (0.55, 0.15, 0.645)), "green bowl": bowl}
    state = SceneState(objects=objs, ee_position=(0.3, 0.0, 1.0))
    guard = GoalGuard()
    guard.reset([["in", "red block", "green bowl"], ["in", "blue block", "green bowl"]])
    calls = [SkillCall("pick_and_place", {"block": "red block", "target": "middle"}),
             SkillCall("pick_and_place", {"block": "red block", "target": "blue block"}),
             SkillCall("pick_and_place", {"block": "blue block", "target": "green bowl"}),
             SkillCall("pick_and_place", {"block": "blue block", "target": "red block"})]
    ok, _ = guard.allowed(state, calls)
    assert ok == [False, False, True, True]
    tower = {"red block": ObjectState("red block", "block", "red", (0.5, 0.0, 0.645)),
             "blue block": ObjectState("blue block", "block", "blue", (0.5, 0.0, 0.685)),
             "green block": ObjectState("green block", "block", "green", (0.6, 0.15, 0.645))}
    state = SceneState(objects=tower, ee_position=(0.3, 0.0, 1.0))
    goal = [["on", "blue block", "red block"], ["on", "red block", "green block"]]
    guard.reset(goal)  # the blue block must come off (undoing its part) before the red one can move
    first = plan(abstract(state), goal)[0]
    assert first.args["block"] == "blue block"
    other = next(SkillCall("pick_and_place", {"block": "blue block", "target": t})
                 for t in ("bottom right corner", "top left corner") if t != first.args["target"])
    ok, _ = guard.allowed(state, [first, other])
    assert ok == [True, False]  # the plan's first move is offered, another way out is not
