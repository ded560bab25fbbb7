"""One episode: reset the world for a task, ask the planner for a skill call each step, execute it with
real physics, feed the outcome back, and judge the goal on the physical state."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embodied.planners.base import Decision, Planner
from embodied.runtime.sensing import Sensing
from embodied.world.scene import TABLE_Z, SceneState
from embodied.world.tasks import Task
from envs.tabletop import TabletopEnv
from skills import SkillCall, SkillResult, call_text, get_skill

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


class VideoRecorder:
    """Collects frames from an oblique camera every few physics steps while skills run."""

    def __init__(self, env: TabletopEnv, size: tuple[int, int] = (240, 320)) -> None:
        from envs.sim import CameraConfig

        self.env = env
        self.camera = CameraConfig(width=size[1], height=size[0], fov_deg=50.0, far=3.0,
                                   eye=(1.15, -0.45, TABLE_Z + 0.65), target=(0.42, 0.0, TABLE_Z + 0.05))
        self.frames: list[np.ndarray] = []

    def __enter__(self) -> VideoRecorder:
        self.env.world.frame_hook = self.capture
        self.capture()
        return self

    def __exit__(self, *exc: object) -> None:
        self.env.world.frame_hook = None

    def capture(self) -> None:
        if self.env.world.steps % 4 == 0:
            self.frames.append(self.env.world.render(self.camera)[0])

    def save(self, path: Path, fps: int = 15) -> None:
        import imageio.v2 as imageio

        with imageio.get_writer(path, fps=fps, codec="libx264", quality=6, macro_block_size=8) as writer:
            for frame in self.frames:
                writer.append_data(frame)


def run_episode(env: TabletopEnv, task: Task, planner: Planner, *, on_step: StepHook | None = None,
                video: VideoRecorder | None = None, sensing: Sensing | None = None) -> EpisodeResult:
    """Run ``task`` with ``planner`` until it says done, it cannot go on, or ``task.max_steps`` calls.
    Without ``sensing`` the planner reads the simulator's state and the skills' self-reports (no sensors)."""
    t0 = time.perf_counter()
    env.reset(seed=task.seed, options={"task": task})
    if sensing is not None:
        sensing.reset()
    planner.reset(task)
    result = EpisodeResult(task=task, planner=planner.name)
    start_steps = env.world.steps
    planner_seconds = 0.0
    decision = Decision(None)
    said_skill_done = False
    ahead: tuple[SceneState, dict | None] | None = None  # state and sensors already read after the last step
    for i in range(task.max_steps + 1):
        if ahead is not None:
            state, obs = ahead
        else:
            obs = sensing.observation() if sensing is not None else None
            state = sensing.state() if sensing is not None else env.scene_state()
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
        ctx = video if video is not None else _Null()
        if decision.skill is not None:  # a library skill: its primitive calls become the episode's steps
            with ctx:
                ok = _run_library_skill(env, decision, planner, result, i, on_step)
                if sensing is not None:
                    sensing.settle()
            if ok and decision.then_done:
                said_skill_done = True
                break
            continue
        skill = get_skill(decision.call.name)
        with ctx:
            outcome = skill.execute(env.robot, skill.params(decision.call.args))
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
            ahead = (env.scene_state(), None)
        result.steps.append(row)
        planner.feedback(decision.call, outcome, ahead[0])
        if on_step:
            on_step(i, decision, outcome)
    ev = env.evaluate()
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
    result.physics_steps = env.world.steps - start_steps
    result.seconds = time.perf_counter() - t0
    return result


def _run_library_skill(env: TabletopEnv, decision: Decision, planner: Planner, result: EpisodeResult, i: int,
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
        planner.feedback(sub.call, sub.result, env.robot.observe())

    outcome = run_skill(inst.record.code, LiveAPI(env.robot, on_step=record), inst.binding, API_METHODS, Budget())
    if not outcome.success and len(result.steps) == n_before:  # stopped before any primitive: say why
        failed = SkillResult(False, outcome.reason)
        result.steps.append({"step": i, **decision.call.to_dict(), "text": inst.text(),
                             "result": failed.to_dict(), "via": inst.record.name})
        planner.feedback(decision.call, failed, env.robot.observe())
    result.extra.setdefault("library_skills", []).append(
        {"step": i, "skill": inst.record.name, "args": inst.binding, "success": outcome.success,
         "reason": outcome.reason})
    if on_step:
        on_step(i, decision, SkillResult(outcome.success, outcome.reason, 0))
    return outcome.success


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def write_run(result: EpisodeResult, out: Path, resolved_config: dict[str, Any]) -> None:
    """`summary.json`, `trace.jsonl` and the resolved config of the run."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=2))
    with (out / "trace.jsonl").open("w") as f:
        for row in result.trace:
            f.write(json.dumps(row) + "\n")
    (out / "config.json").write_text(json.dumps(resolved_config, indent=2))
