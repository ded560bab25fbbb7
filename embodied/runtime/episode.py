"""One episode: reset the world for a task, ask the planner for a skill call each step, execute it with
real physics, feed the outcome back, and judge the goal on the physical state."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embodied.planners.base import Decision, Planner
from embodied.runtime.sensing import Sensing
from embodied.world.predicates import goal_values
from embodied.world.scene import SceneState
from embodied.world.symbolic import abstract
from embodied.world.tasks import Task
from skills import SkillCall, SkillResult, call_text, get_skill
from skills.robot import Robot

if TYPE_CHECKING:
    from envs.tabletop import TabletopEnv

log = logging.getLogger(__name__)

StepHook = Callable[[int, Decision, SkillResult | None], None]


@dataclass
class EpisodeResult:
    """What `summary.json` holds: outcome, every skill call with its result, and costs."""

    task: Task
    planner: str
    outcome: str = "failed"  # success | failed | cannot
    reason: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    physics_steps: int = 0
    seconds: float = 0.0
    goal_values: list[bool] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    def summary(self) -> dict[str, Any]:
        return {"id": self.task.id, "instruction": self.task.instruction, "family": self.task.family,
                "planner": self.planner, "seed": self.task.seed, "success": self.success,
                "outcome": self.outcome, "reason": self.reason, "steps": self.steps,
                "n_steps": len(self.steps), "goal": self.task.goal, "goal_values": self.goal_values,
                "physics_steps": self.physics_steps, "seconds": round(self.seconds, 3), **self.extra}


def run_episode(env: TabletopEnv, task: Task, planner: Planner, *, on_step: StepHook | None = None,
                video: AbstractContextManager | None = None, sensing: Sensing | None = None) -> EpisodeResult:
    """Lay out ``task`` in the simulated world, then `run_on_robot` judged by the simulator's physical state.
    Without ``sensing`` the planner reads the simulator's state and the skills' self-reports (no sensors)."""
    env.reset(seed=task.seed, options={"task": task})
    return run_on_robot(env.robot, task, planner, on_step=on_step, video=video, sensing=sensing,
                        judge=lambda: env.evaluate())


def goal_judge(robot: Robot, task: Task) -> Callable[[], dict[str, Any]]:
    """Judge the goal on what the robot observes (a real arm's perceived state); the simulator judges with
    its own physical state instead (`TabletopEnv.evaluate`)."""
    def judge() -> dict[str, Any]:
        values = goal_values(task.goal, abstract(robot.observe()))
        return {"success": bool(values) and all(values), "goal_values": values}

    return judge


def run_on_robot(robot: Robot, task: Task, planner: Planner, *, on_step: StepHook | None = None,
                 video: AbstractContextManager | None = None, sensing: Sensing | None = None,
                 judge: Callable[[], dict[str, Any]] | None = None) -> EpisodeResult:
    """Run ``task`` with ``planner`` on a robot already set up for it, until the planner says done, it cannot
    go on, or ``task.max_steps`` calls; ``judge`` reads the goal's values off the physical state."""
    t0 = time.perf_counter()
    judge = judge or goal_judge(robot, task)
    if sensing is not None:
        sensing.reset()
        robot = sensing.robot
    planner.reset(task)
    result = EpisodeResult(task=task, planner=planner.name)
    start_steps = robot.steps
    planner_seconds = 0.0
    decision = Decision(None)
    said_skill_done = False
    ahead: tuple[SceneState, dict | None] | None = None  # state and sensors already read after the last step
    for i in range(task.max_steps + 1):
        if ahead is not None:
            state, obs = ahead
        else:
            obs = sensing.observation() if sensing is not None else None
            state = sensing.state() if sensing is not None else robot.observe()
        ahead = None
        t_plan = time.perf_counter()
        decision = planner.step(state, obs=obs)
        planner_seconds += time.perf_counter() - t_plan
        result.trace.append({"step": i, "chosen": decision.call.to_dict() if decision.call else None,
                             "options": [o.to_dict() for o in decision.options]})
        if decision.call is None:
            # before acting, "no way" means the request itself is impossible; after a failed skill it
            # means the world got into a state the plan cannot recover from
            result.reason = decision.reason or "the planner found no way to do this"
            if not result.steps:
                result.outcome = "cannot"
            if on_step:
                on_step(i, decision, None)
            break
        if decision.call.name == "done":
            if on_step:
                on_step(i, decision, None)
            break
        if i == task.max_steps:
            result.reason = f"step limit ({task.max_steps}) reached"
            break
        ctx = video if video is not None else nullcontext()
        if decision.skill is not None:  # a library skill: its primitive calls become the episode's steps
            with ctx:
                ok = _run_library_skill(robot, decision, planner, result, i, on_step)
                if sensing is not None:
                    sensing.settle()
            if ok and decision.then_done:
                said_skill_done = True
                break
            continue
        skill = get_skill(decision.call.name)
        with ctx:
            outcome = skill.execute(robot, skill.params(decision.call.args))
            if sensing is not None:
                sensing.settle()
        row = {"step": i, **decision.call.to_dict(), "text": call_text(decision.call), "result": outcome.to_dict()}
        if sensing is not None:  # the planner hears the success detector, not the skill's self-report
            after_obs = sensing.observation()
            told, p = sensing.judge(obs, after_obs, state, decision.call, outcome)
            row["detected"] = {"p_success": round(p, 4), "success": told.success}
            outcome = told
            ahead = (sensing.state(), after_obs)
        else:
            ahead = (robot.observe(), None)
        result.steps.append(row)
        planner.feedback(decision.call, outcome, ahead[0])
        if on_step:
            on_step(i, decision, outcome)
    ev = judge()
    result.goal_values = ev["goal_values"]
    said_done = said_skill_done or (decision.call is not None and decision.call.name == "done")
    if result.outcome != "cannot":
        if task.goal:  # judged on the physical state
            ok = ev["success"]
            result.extra["judged_by"] = "goal"
        else:  # a free instruction has no goal to check: the planner's own "done" after a working last step
            ok = said_done and bool(result.steps) and result.steps[-1]["result"]["success"]
            result.extra["judged_by"] = "planner"
        result.outcome = "success" if ok else "failed"
        if not ok and not result.reason:
            failed = [s["result"]["reason"] for s in result.steps if not s["result"]["success"]]
            result.reason = failed[-1] if failed else "the plan ended with the goal unmet"
    if task.goal and result.outcome != "cannot":
        from embodied.planners.prompting import symbolic_plan_success

        calls = [SkillCall(s["skill"], s["args"]) for s in result.steps]
        result.extra["planning_success"] = said_done and symbolic_plan_success(task, calls)
    stats = getattr(planner, "episode_stats", None)
    if stats is not None:
        result.extra.update(stats())
    n_decisions = len(result.trace)
    result.extra["planner_seconds"] = round(planner_seconds, 3)
    result.extra["seconds_per_step"] = round(planner_seconds / max(n_decisions, 1), 3)
    result.physics_steps = robot.steps - start_steps
    result.seconds = time.perf_counter() - t0
    return result


def _run_library_skill(robot: Robot, decision: Decision, planner: Planner, result: EpisodeResult, i: int,
                       on_step: StepHook | None) -> bool:
    """Run a library skill's code in the restricted executor; each primitive it calls is recorded as a step
    and fed back to the planner. True when the skill finished without a failure."""
    from embodied.library.api import API_METHODS, LiveAPI, SubStep
    from embodied.library.executor import Budget, run_skill

    inst = decision.skill
    n_before = len(result.steps)

    def record(sub: SubStep) -> None:
        result.steps.append({"step": i, **sub.call.to_dict(), "text": call_text(sub.call),
                             "result": sub.result.to_dict(), "via": inst.record.name})
        planner.feedback(sub.call, sub.result, robot.observe())

    outcome = run_skill(inst.record.code, LiveAPI(robot, on_step=record), inst.binding, API_METHODS, Budget())
    if not outcome.success and len(result.steps) == n_before:  # stopped before any primitive: say why
        failed = SkillResult(False, outcome.reason)
        result.steps.append({"step": i, **decision.call.to_dict(), "text": inst.text(),
                             "result": failed.to_dict(), "via": inst.record.name})
        planner.feedback(decision.call, failed, robot.observe())
    result.extra.setdefault("library_skills", []).append(
        {"step": i, "skill": inst.record.name, "args": inst.binding, "success": outcome.success,
         "reason": outcome.reason})
    if on_step:
        on_step(i, decision, SkillResult(outcome.success, outcome.reason, 0))
    return outcome.success


def write_run(result: EpisodeResult, out: Path, resolved_config: dict[str, Any]) -> None:
    """`summary.json`, `trace.jsonl` and the resolved config of the run."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=2))
    with (out / "trace.jsonl").open("w") as f:
        for row in result.trace:
            f.write(json.dumps(row) + "\n")
    (out / "config.json").write_text(json.dumps(resolved_config, indent=2))
