"""One episode: reset the world for a task, ask the planner for a skill call each step, execute it with
real physics, feed the outcome back, and judge the goal on the physical state."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from embodied.instructions import positions
from embodied.planners.base import Decision, Planner
from embodied.runtime.sensing import Sensing
from embodied.world.predicates import describe, describe_goal, goal_satisfied, goal_values, same_goal
from embodied.world.spatial import is_spatial, realize
from embodied.world.symbolic import abstract
from embodied.world.tasks import Task, default_max_steps
from skills import SkillCall, SkillResult, call_text, get_skill
from skills.robot import Robot, take_fault

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
    goal: list[list] = field(default_factory=list)  # what the episode was judged against
    goal_values: list[bool] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    recording: Any = None  # what a `Capture` recorded (not part of the summary)

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    def summary(self) -> dict[str, Any]:
        return {"id": self.task.id, "instruction": self.task.instruction, "family": self.task.family,
                "planner": self.planner, "seed": self.task.seed, "success": self.success,
                "outcome": self.outcome, "reason": self.reason, "steps": self.steps,
                "n_steps": len(self.steps), "goal": self.goal, "goal_values": self.goal_values,
                "physics_steps": self.physics_steps, "seconds": round(self.seconds, 3), **self.extra}


class GoalReader(Protocol):
    """Turns an instruction and the objects on the table into a goal, or a refusal (`embodied.understanding`)."""

    def read(self, instruction: str, objects: Sequence[str]) -> Any: ...


Judge = Callable[[list[list]], dict[str, Any]]


class Capture(Protocol):
    """Records an episode from the reset to the end (`envs.record.FrameCapture`)."""

    def begin(self) -> None: ...

    def on_call(self, text: str, call: dict[str, Any], result: dict[str, Any] | None) -> None: ...

    def end(self, result: EpisodeResult) -> Any: ...

    def abort(self) -> None: ...


def run_episode(env: TabletopEnv, task: Task, planner: Planner, *, on_step: StepHook | None = None,
                video: AbstractContextManager | None = None, sensing: Sensing | None = None,
                reader: GoalReader | None = None, infer_goal: bool = False,
                capture: Capture | None = None) -> EpisodeResult:
    """Lay out ``task`` in the simulated world, then `run_on_robot` judged by the simulator's physical state.
    Without ``sensing`` the planner reads the simulator's state and the skills' self-reports (no sensors).
    ``capture`` records the episode; what its ``end`` returns is ``result.recording``."""
    env.reset(seed=task.seed, options={"task": task})
    truth = getattr(env, "scene_state", None)  # the simulator's true scene, for the trace
    if capture is None:
        return run_on_robot(env.robot, task, planner, on_step=on_step, video=video, sensing=sensing,
                            judge=env.evaluate, reader=reader, infer_goal=infer_goal, truth=truth)

    def step(i: int, decision: Decision, outcome: SkillResult | None) -> None:
        if decision.call is None:  # the planner found nothing to do
            capture.on_call("stop", {"skill": None, "args": {}, "reason": decision.reason}, None)
        else:
            capture.on_call(call_text(decision.call), decision.call.to_dict(),
                            outcome.to_dict() if outcome else None)
        if on_step:
            on_step(i, decision, outcome)

    capture.begin()
    try:
        result = run_on_robot(env.robot, task, planner, on_step=step, video=video, sensing=sensing,
                              judge=env.evaluate, reader=reader, infer_goal=infer_goal, truth=truth)
    except BaseException:
        capture.abort()
        raise
    result.recording = capture.end(result)
    return result


def goal_judge(robot: Robot) -> Judge:
    """Judge a goal on what the robot observes (a real arm's perceived state); the simulator judges with its
    own physical state instead (`TabletopEnv.evaluate`)."""
    def judge(goal: list[list]) -> dict[str, Any]:
        values = goal_values(goal, abstract(robot.observe()))
        return {"success": bool(values) and all(values), "goal_values": values}

    return judge


def run_on_robot(robot: Robot, task: Task, planner: Planner, *, on_step: StepHook | None = None,
                 video: AbstractContextManager | None = None, sensing: Sensing | None = None,
                 judge: Judge | None = None, reader: GoalReader | None = None,
                 infer_goal: bool = False, truth: Callable[[], Any] | None = None) -> EpisodeResult:
    """Run ``task`` with ``planner`` on a robot already set up for it.

    First the goal: the task's, or (with ``reader``, when the task has none or ``infer_goal``) one read from
    the instruction and the perceived objects; an instruction the reader refuses ends ``cannot`` before any
    motion. Then a skill call per step until the goal holds on the perceived state, the planner stops or finds
    nothing feasible, or ``max_steps`` calls. The episode is judged by ``judge`` on the physical state against
    the task's goal when it has one (so ``infer_goal`` measures the reading), else the inferred one.
    ``trace`` rows explain each decision: the prompt (its hash and what changed since the last), the options,
    the call's result, the objects as perceived and (with ``truth``, the simulator's scene) as they are, and
    the seconds spent planning and acting."""
    t0 = time.perf_counter()
    judge = judge or goal_judge(robot)
    if sensing is not None:
        sensing.reset()
        robot = sensing.robot
    result = EpisodeResult(task=task, planner=planner.name, goal=list(task.goal))
    start_steps = robot.steps
    obs = sensing.observation() if sensing is not None else None
    state = sensing.state() if sensing is not None else robot.observe()
    goal = list(task.goal)
    if reader is not None and (infer_goal or not task.goal):
        t_read = time.perf_counter()
        reading = reader.read(task.instruction, list(state.objects), positions(state))
        result.extra["reading"] = {**reading.to_dict(), "seconds": round(time.perf_counter() - t_read, 3)}
        if reading.goal is None:
            result.outcome, result.reason = "cannot", reading.reason
            if task.goal:  # a task with a goal that was refused counts as read wrongly
                result.extra["goal_correct"] = False
            return _finish(result, robot, start_steps, t0, judge, planner, 0.0, said_done=False)
        goal = reading.goal
        result.extra["inferred_goal"] = goal
        if task.goal:
            result.extra["goal_correct"] = same_goal(goal, task.goal)
        else:
            result.goal = goal
    if not goal:
        result.outcome = "cannot"
        result.reason = "there is no goal to check this instruction against (no goal reader)"
        return _finish(result, robot, start_steps, t0, judge, planner, 0.0, said_done=False)
    plan_goal = realize(goal, abstract(state))  # spatial predicates -> places and points, once per episode
    if plan_goal is None:
        result.outcome = "cannot"
        result.reason = ("no placement on this table satisfies the goal (" + "; ".join(
            describe(p) for p in goal if is_spatial(p)) + ")")
        return _finish(result, robot, start_steps, t0, judge, planner, 0.0, said_done=False)
    plan_task = dataclasses.replace(task, goal=plan_goal,
                                    max_steps=max(task.max_steps, default_max_steps(plan_goal)))
    if plan_goal != goal:
        result.extra["realized_goal"] = plan_goal
    reads_instruction = getattr(planner, "reads_instruction", False)  # code planners read what was said
    if ("inferred_goal" in result.extra or plan_goal != goal) and not reads_instruction:
        # the planner reads the goal it pursues, in the wording it knows (spatial goals: their points)
        plan_task.instruction = describe_goal(plan_goal)
        result.extra["planner_request"] = plan_task.instruction
    planner.reset(plan_task)
    rerealize = 2
    planner_seconds = 0.0
    last_prompt = ""
    decision = Decision(None)
    said_done = False
    for i in range(plan_task.max_steps + 1):
        if goal_satisfied(goal, abstract(state)):  # done when the goal holds on what the robot perceives
            said_done = True
            result.trace.append({"step": i, "chosen": SkillCall("done").to_dict(), "options": [],
                                 "note": "the goal holds on the perceived state"})
            break
        t_plan = time.perf_counter()
        decision = planner.step(state, obs=obs)
        plan_s = time.perf_counter() - t_plan
        planner_seconds += plan_s
        row = {"step": i, "chosen": decision.call.to_dict() if decision.call else None,
               "options": [o.to_dict() for o in decision.options], "plan_s": round(plan_s, 4),
               **_prompt_delta(decision.prompt, last_prompt), "perceived": _objects(state)}
        if truth is not None:
            row["true"] = _objects(truth())
        last_prompt = decision.prompt or last_prompt
        if decision.note or decision.reason:
            row["note"] = decision.note or decision.reason
        result.trace.append(row)
        t_act = time.perf_counter()
        if decision.call is None:
            # before acting, "no way" means the request itself is impossible; after a failed skill it
            # means the world got into a state the plan cannot recover from
            result.reason = decision.reason or "the planner found no way to do this"
            if not result.steps:
                result.outcome = "cannot"
            if on_step:
                on_step(i, decision, None)
            break
        if decision.call.name == "done" and plan_goal != goal and rerealize > 0 and not goal_satisfied(
                goal, abstract(state)):
            # the realised places hold but the spatial goal does not (a block landed centimetres off, or one
            # counted as there was not quite): choose places again from here, at most twice
            rerealize -= 1
            again = realize(goal, abstract(state))
            if again is not None and again != plan_goal:
                plan_goal = again
                result.extra.setdefault("rerealized_goals", []).append(again)
                plan_task = dataclasses.replace(plan_task, goal=again, instruction=plan_task.instruction
                                                if reads_instruction else describe_goal(again))
                planner.reset(plan_task)
                row["note"] = "the spatial goal is unmet where its places hold: places chosen again"
                continue
        if decision.call.name == "done":
            said_done = True
            if on_step:
                on_step(i, decision, None)
            break
        if i == plan_task.max_steps:
            result.reason = f"step limit ({plan_task.max_steps}) reached"
            break
        ctx = video if video is not None else nullcontext()
        announce = getattr(video, "on_call", None)  # a video captions the call it films
        if callable(announce):
            announce(i, decision.skill.text() if decision.skill is not None else call_text(decision.call))
        if decision.skill is not None:  # a library skill: its primitive calls become the episode's steps
            with ctx:
                ok = _run_library_skill(robot, decision, planner, result, i, on_step)
                fault = take_fault(robot)
                if fault is not None:  # a refused or stopped command inside the skill's code
                    ok = False
                    refused = SkillResult(False, fault.reason, 0, {"fault": True, "halt": fault.halt})
                    result.steps.append({"step": i, **decision.call.to_dict(), "text": decision.skill.text(),
                                         "result": refused.to_dict(), "via": decision.skill.record.name})
                    if fault.halt:
                        result.reason = fault.reason
                        break
                    planner.feedback(decision.call, refused, robot.observe())
                elif sensing is not None:
                    sensing.settle()
            obs = sensing.observation() if sensing is not None else None
            state = sensing.state() if sensing is not None else robot.observe()
            if ok and decision.then_done:
                said_done = True
                break
            continue
        skill = get_skill(decision.call.name)
        with ctx:
            outcome = skill.execute(robot, skill.params(decision.call.args))
            fault = take_fault(robot)
            if fault is not None:  # the robot refused or stopped a command: that is the outcome
                outcome = SkillResult(False, fault.reason, outcome.steps, {"fault": True, "halt": fault.halt})
            elif sensing is not None:
                sensing.settle()
        step = {"step": i, **decision.call.to_dict(), "text": call_text(decision.call), "result": outcome.to_dict()}
        if decision.note:
            step["note"] = decision.note
        if fault is not None and fault.halt:  # the robot will not move again: stop, asking it for nothing more
            result.steps.append(step)
            result.reason = fault.reason
            if on_step:
                on_step(i, decision, outcome)
            break
        if sensing is not None:  # the planner hears the judged outcome (look, detector, self-report), `Sensing.judge`
            after_obs, after = sensing.observation(), sensing.state()
            if fault is None:  # a refused command stays a failure, whatever the detector thinks
                told, p = sensing.judge(obs, after_obs, state, decision.call, outcome, state_after=after)
                step["detected"] = {"p_success": round(p, 4), "success": told.success}
                outcome = told
            obs, state = after_obs, after
        else:
            state = robot.observe()
        result.steps.append(step)
        row.update(result=outcome.to_dict(), act_s=round(time.perf_counter() - t_act, 4))
        planner.feedback(decision.call, outcome, state)
        if on_step:
            on_step(i, decision, outcome)
    result.goal = list(task.goal) if task.goal else goal
    info = getattr(planner, "episode_info", None)
    if callable(info):  # what a planner keeps of the episode (a code planner: its programs)
        result.extra.update(info())
    return _finish(result, robot, start_steps, t0, judge, planner, planner_seconds, said_done)


def _prompt_delta(prompt: str, last: str) -> dict[str, Any]:
    """A prompt in a trace: its hash, and only what was appended since the last one (the whole at first)."""
    if not prompt:
        return {}
    import hashlib

    new = prompt[len(last):] if last and prompt.startswith(last) else prompt
    return {"prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest()[:16], "prompt_chars": len(prompt),
            "prompt_new": new}


def _objects(scene: Any) -> dict[str, list[float]]:
    """Object positions in millimetres, as a trace stores them."""
    return {n: [round(v * 1000) for v in o.position] for n, o in sorted(scene.objects.items())}


def _finish(result: EpisodeResult, robot: Robot, start_steps: int, t0: float, judge: Judge, planner: Planner,
            planner_seconds: float, said_done: bool) -> EpisodeResult:
    """Judge the goal on the physical state and fill in the costs."""
    ev = judge(result.goal) if result.goal else {"success": False, "goal_values": []}
    result.goal_values = ev["goal_values"]
    result.extra["judged_by"] = "goal"
    if result.outcome != "cannot":
        ok = bool(ev["success"])
        result.outcome = "success" if ok else "failed"
        if not ok and not result.reason:
            failed = [s["result"]["reason"] for s in result.steps if not s["result"]["success"]]
            result.reason = failed[-1] if failed else "the plan ended with the goal unmet"
        from embodied.planners.prompting import symbolic_plan_success

        calls = [SkillCall(s["skill"], s["args"]) for s in result.steps]
        result.extra["planning_success"] = said_done and symbolic_plan_success(
            dataclasses.replace(result.task, goal=result.goal), calls)
    for source in (planner, robot):  # what a planner or a robot counts per episode (LM calls, bridge costs)
        stats = getattr(source, "episode_stats", None)
        if callable(stats):
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
    elif not outcome.success and result.steps[-1]["result"]["success"]:  # the code failed after good steps
        planner.feedback(decision.call, SkillResult(False, outcome.reason), robot.observe())
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


class StateRecorder:
    """`run --states`: the whole simulation after every skill call, ``states/step_K.bullet`` (K from 1), and
    every object's pose in ``states/poses.json``, so `replay_run` can restore any of them."""

    def __init__(self, env: TabletopEnv, out: Path) -> None:
        self.env, self.folder, self.poses = env, out / "states", {}

    def step(self) -> None:
        """Save the state after the skill call that just ended."""
        k = len(self.poses) + 1
        self.folder.mkdir(parents=True, exist_ok=True)
        self.env.world.save_state(self.folder / f"step_{k:03d}.bullet")
        self.poses[str(k)] = self.env.world.poses()

    def save(self) -> None:
        if self.poses:
            (self.folder / "poses.json").write_text(json.dumps(self.poses, indent=1) + "\n")


def replay_run(run: Path, step: int) -> dict[str, Any]:
    """Restore the state `StateRecorder` saved in a run folder after skill call ``step``; `restore_state`."""
    from embodied.world.errors import EmbodiedError

    config_file, states = run / "config.json", run / "states"
    if not config_file.is_file():
        raise EmbodiedError(f"{run} is not a run folder (no config.json); give a folder `embodied run` wrote, "
                            "a LeRobot dataset or an MCAP log `embodied record` wrote")
    recorded_file = states / "poses.json"
    if not recorded_file.is_file():
        raise EmbodiedError(f"{run} has no saved states; record them with `embodied run ... --states`")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        recorded = json.loads(recorded_file.read_text(encoding="utf-8"))
        task = Task.from_dict(config["task"], where=f"{config_file}: task")
    except (ValueError, KeyError, TypeError) as e:
        raise EmbodiedError(f"{run}: cannot read the run ({e})") from None
    state = states / f"step_{step:03d}.bullet"
    if str(step) not in recorded or not state.is_file():
        raise EmbodiedError(f"{run} has no state after skill call {step}; saved: "
                            f"{', '.join(sorted(recorded, key=int))}")
    return restore_state(task, config.get("image_size", 128), state.read_bytes(), recorded[str(step)])


def restore_state(task: Task, image_size: int, state: bytes, recorded: dict[str, list[float]]) -> dict[str, Any]:
    """Rebuild ``task``'s world, restore a saved simulation ``state`` (PyBullet's ``.bullet`` bytes) and
    compare every object's position with the ``recorded`` poses: ``poses`` (now), ``diffs`` (m, per object)
    and ``max_position_diff_m``."""
    import tempfile

    from envs.tabletop import TabletopEnv

    env = TabletopEnv(image_size=(image_size,) * 2)
    try:
        env.reset(seed=task.seed, options={"task": task})
        with tempfile.TemporaryDirectory(prefix="embodied-replay-") as tmp:
            path = Path(tmp) / "state.bullet"
            path.write_bytes(state)
            env.world.restore_state(path)
        poses = env.world.poses()
    finally:
        env.close()
    diffs = {name: max(abs(a - b) for a, b in zip(pose[:3], recorded.get(name, [float("inf")] * 3), strict=False))
             for name, pose in poses.items()}
    return {"poses": poses, "diffs": diffs, "max_position_diff_m": max(diffs.values(), default=0.0)}
