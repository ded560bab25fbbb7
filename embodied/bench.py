"""`embodied bench sim`: physics steps/s and real-time factor with a full scene, rendered RGB-D frames/s,
and seconds per pick-and-place — measured, printed as JSON."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embodied.world.errors import EmbodiedError
from embodied.world.scene import (
    BLOCK_SIZE,
    BOWL_HEIGHT,
    COLOR_NAMES,
    MAX_BLOCKS,
    MAX_BOWLS,
    TABLE_Z,
    WORKSPACE_X,
    WORKSPACE_Y,
    SceneState,
)
from embodied.world.seeds import DETECTION_HELDOUT, GROUNDING_HELDOUT
from embodied.world.tasks import SceneSpec, Task
from envs.sim import DT, World
from envs.tabletop import TabletopEnv
from skills import SkillCall, get_skill
from skills.pick import Pick
from skills.pick_and_place import PickAndPlace

if TYPE_CHECKING:
    from embodied.perception import PerceptionConfig

log = logging.getLogger(__name__)


def full_scene_task(seed: int) -> Task:
    """6 blocks and 4 bowls, the largest scene the table takes."""
    blocks = list(COLOR_NAMES[:MAX_BLOCKS])
    bowls = list(COLOR_NAMES[MAX_BLOCKS:MAX_BLOCKS + MAX_BOWLS])
    return Task(id=f"bench-{seed}", instruction=f"put the {blocks[0]} block in the {bowls[0]} bowl",
                scene=SceneSpec(blocks=blocks, bowls=bowls), goal=[["in", f"{blocks[0]} block", f"{bowls[0]} bowl"]],
                seed=seed, max_steps=4)


def bench_sim(physics_steps: int = 4000, frames: int = 60, picks: int = 6, image_size: int = 128,
              renderer: str = "tiny", seed: int = 0) -> dict[str, Any]:
    """Measure one core's physics rate (arm holding still under gravity and contact), render rate, and
    the time a pick-and-place takes including inverse kinematics and its checks."""
    with contextlib.suppress(AttributeError, OSError):  # one core, as the target says
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    env = TabletopEnv(image_size=(image_size, image_size), renderer=renderer)
    task = full_scene_task(seed)
    env.reset(seed=seed, options={"task": task})
    env.world.step_bare(600)  # let the freshly laid-out scene come to rest (Bullet puts it to sleep after ~2 s)
    t = time.perf_counter()
    env.world.step_bare(physics_steps)
    physics_s = time.perf_counter() - t
    env.world.set_sleeping(False)  # worst case: nothing allowed to sleep (every contact solved every step)
    t = time.perf_counter()
    env.world.step_bare(physics_steps // 4)
    awake_steps_per_s = (physics_steps // 4) / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in range(frames):
        rgb, depth, zbuf = env.world.render()
    render_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(frames):
        env.world.points(*env.world.render()[::2])
    points_s = time.perf_counter() - t
    # pick-and-place: move blocks into bowls and back onto the table's named locations
    env.reset(seed=seed, options={"task": task})
    state = env.scene_state()
    skill = get_skill(PickAndPlace.name)
    targets = state.bowls + ["middle", "top left corner"]
    times, successes, steps = [], 0, 0
    for i, block in enumerate(state.blocks[:picks]):
        call = SkillCall(PickAndPlace.name, {"block": block, "target": targets[i % len(targets)]})
        t = time.perf_counter()
        res = skill.execute(env.robot, skill.params(call.args))
        times.append(time.perf_counter() - t)
        successes += res.success
        steps += res.steps
    env.close()
    steps_per_s = physics_steps / physics_s
    return {
        "scene": {"blocks": MAX_BLOCKS, "bowls": MAX_BOWLS, "robot": "franka_panda"},
        "physics_steps_per_s": round(steps_per_s, 1),
        "real_time_factor": round(steps_per_s * DT, 2),
        "physics_steps_per_s_never_sleeping": round(awake_steps_per_s, 1),
        "real_time_factor_never_sleeping": round(awake_steps_per_s * DT, 2),
        "render": renderer, "image_size": image_size,
        "rgbd_frames_per_s": round(frames / render_s, 1),
        "rgbd_points_frames_per_s": round(frames / points_s, 1),
        "pick_and_place_s": round(float(np.mean(times)), 3),
        "pick_and_place_success": f"{successes}/{len(times)}",
        "physics_steps_per_pick_and_place": round(steps / max(len(times), 1), 1),
        "pick_and_place_real_time_factor": round(steps * DT / sum(times), 2),
    }


def bench_grounding(scenes: int = 70, detection_seeds: int = 60, cache: Path | None = None) -> dict[str, Any]:
    """Held-out grounding quality: learned vs analytic affordances and the success detector vs the skills'
    self-report on skill executions from seeds 500,000+ (collected once, then cached), and perception's
    detection precision/recall and position error on scenes from seeds 100,000+ (tuning used 0-99)."""
    from embodied.grounding import grounding_metrics
    from embodied.training.grounding import CACHE, CollectConfig, collect

    cfg = CollectConfig()
    path = (cache or CACHE) / f"heldout_{scenes}x{cfg.calls_per_scene}.npz"
    if not path.exists():
        log.info("collecting %d held-out scenes into %s (once)", scenes, path)
        collect(range(GROUNDING_HELDOUT.start, GROUNDING_HELDOUT.start + scenes), path, cfg)
    g = grounding_metrics(path)
    d = benchmark_detection(range(DETECTION_HELDOUT.start, DETECTION_HELDOUT.start + detection_seeds))
    pick = ("detection_precision", "detection_recall", "position_error_mm", "position_error_mm_p95", "yaw_error_deg",
            "seconds_per_perception")
    return {"affordance_f1": g["affordance_f1_learned"], "affordance_auroc": g["affordance_auroc_learned"],
            "affordance_f1_analytic": g["affordance_f1_analytic"],
            "affordance_auroc_analytic": g["affordance_auroc_analytic"],
            "success_detector_f1": g["success_detector_f1_learned"],
            "success_detector_auroc": g["success_detector_auroc_learned"],
            "success_self_report_f1": g["success_detector_f1_self_report"],
            **{k: d[k] for k in pick if k in d}, "detection_by_case": d.get("by_case"),
            "grounding_samples": g["n"], "grounding_seeds": f"{GROUNDING_HELDOUT.start}+ ({scenes} scenes)",
            "detection_seeds": f"100000-{100000 + detection_seeds - 1}"}


# ------------------------------------------------------------------------------ perception: detection
MATCH_DISTANCE = 0.03  # a perceived object farther than this from the true one is a false positive


def _yaw_error(a: float, b: float) -> float:
    """Difference of two cube yaws modulo the cube's 90-degree symmetry (radians, >= 0)."""
    return abs((a - b + math.pi / 4) % (math.pi / 2) - math.pi / 4)


def detection_metrics(perceived: SceneState, truth: SceneState) -> dict[str, Any]:
    """Match by name: true positives (within 3 cm), false positives, misses, per-object errors (m, rad) and
    offsets (perceived - true, m), and whether ``held`` agrees."""
    errors: dict[str, float] = {}
    yaw_errors: dict[str, float] = {}
    offsets: dict[str, tuple[float, ...]] = {}
    tp, fp, missed = [], [], []
    for name, obj in perceived.objects.items():
        true = truth.objects.get(name)
        if true is None:
            fp.append(name)
            continue
        offset = np.asarray(obj.position) - np.asarray(true.position)
        offsets[name] = tuple(float(v) for v in offset)
        err = float(np.linalg.norm(offset))
        errors[name] = err
        if err > MATCH_DISTANCE:
            fp.append(name)
            continue
        tp.append(name)
        if obj.kind == "block":
            yaw_errors[name] = _yaw_error(obj.yaw, true.yaw)
    missed = [n for n in truth.objects if n not in tp]
    return {"true_positives": tp, "false_positives": fp, "misses": missed, "position_error": errors,
            "offset": offsets, "yaw_error": yaw_errors, "held_correct": perceived.held == truth.held}


OCCLUDED_FRACTION = 0.2  # an object is "occluded" when the arm hides at least this share of its top surface


def _cases(world: World, truth: SceneState, camera_eye: Sequence[float]) -> dict[str, list[str]]:
    """Tag every true object with its hard cases: held, stacked (something on it), in_bowl, occluded; else
    isolated. Occluded: at least ``OCCLUDED_FRACTION`` of samples on its top surface (a block's top face, a
    bowl's rim and floor) have their line of sight to the top-down camera blocked by the robot (ray test)."""
    from embodied.world.symbolic import abstract

    sym = abstract(truth)
    out: dict[str, list[str]] = {}
    for name, obj in truth.objects.items():
        tags = []
        if truth.held == name:
            tags.append("held")
        if obj.kind == "block" and sym.on_top_of(name):
            tags.append("stacked")
        if obj.kind == "block" and truth.held != name and sym.base(name) in truth.objects:
            tags.append("in_bowl")
        if world.arm_occlusion(name, camera_eye) >= OCCLUDED_FRACTION:
            tags.append("occluded")
        out[name] = tags or ["isolated"]
    return out


def benchmark_detection(seeds: Sequence[int], config: PerceptionConfig | None = None,
                        return_rows: bool = False) -> dict[str, Any]:
    """Detection quality and speed on scenes built from ``seeds`` with real skills (stacks, blocks in bowls,
    the arm parked over the workspace, a held block); perception keeps memory across one scene's steps."""
    from embodied.perception import PerceptionConfig, look_at_hand, perceive_robot
    from embodied.world.symbolic import abstract
    from envs.generator import FAMILY_NAMES, generate

    config = config or PerceptionConfig()
    top_eye = np.array([0.5 * sum(WORKSPACE_X), 0.5 * sum(WORKSPACE_Y), TABLE_Z + 0.85])
    env = TabletopEnv(image_size=(16, 16))
    robot = env.robot
    pick_and_place, pick = get_skill(PickAndPlace.name), get_skill(Pick.name)
    rows: list[dict[str, Any]] = []
    times: list[float] = []
    precision_counts = {"tp": 0, "fp": 0}
    held_right = held_total = 0

    hand_rows: list[tuple[bool, float | None, float]] = []  # the grasp check's look: held right, error, s

    def record(stage: str, state_prev: SceneState | None) -> SceneState:
        nonlocal held_right, held_total
        t0 = time.perf_counter()
        seen = perceive_robot(env.robot, env.robot, config, state_prev)
        times.append(time.perf_counter() - t0)
        truth = env.world.scene_state()
        if stage in ("held", "carried") and state_prev is not None:
            t0 = time.perf_counter()
            hand = look_at_hand(env.robot, env.robot, state_prev, config)
            dt = time.perf_counter() - t0
            err = (float(np.linalg.norm(np.subtract(hand.objects[truth.held].position,
                                                    truth.objects[truth.held].position)))
                   if truth.held and hand.held == truth.held else None)
            hand_rows.append((hand.held == truth.held, err, dt))
        m = detection_metrics(seen, truth)
        precision_counts["tp"] += len(m["true_positives"])
        precision_counts["fp"] += len(m["false_positives"])
        held_total += 1
        held_right += int(m["held_correct"])
        for name, tags in _cases(env.world, truth, top_eye).items():
            rows.append({"stage": stage, "name": name, "cases": tags, "found": name in m["true_positives"],
                         "error": m["position_error"].get(name), "offset": m["offset"].get(name),
                         "kind": truth.objects[name].kind, "yaw_error": m["yaw_error"].get(name)})
        if m["misses"] or m["false_positives"]:
            log.info("seed %s %s: missed %s, false %s", seed, stage, m["misses"], m["false_positives"])
        return seen

    for seed in seeds:
        rng = np.random.default_rng(seed + 1_000_003)
        task = generate(FAMILY_NAMES[seed % len(FAMILY_NAMES)], seed)
        env.reset(seed=seed, options={"task": task})
        prev = record("initial", None)
        blocks = [n for n in env.world.bodies if env.world.kinds[n] == "block"]
        bowls = [n for n in env.world.bodies if env.world.kinds[n] == "bowl"]
        order = [blocks[i] for i in rng.permutation(len(blocks))]
        calls: list[tuple[str, str]] = []
        if len(order) >= 2:
            calls.append((order[0], order[1]))
            if len(order) >= 3 and rng.random() < 0.6:
                calls.append((order[2], order[0]))
        free = order[len(calls) + 1:] if calls else order
        if bowls and free:
            same = [b for b in bowls if b.split()[0] == free[0].split()[0]]
            bowl = same[0] if same and rng.random() < 0.7 else bowls[int(rng.integers(len(bowls)))]
            calls.append((free[0], bowl))
        for block, target in calls:
            res = pick_and_place.execute(robot, pick_and_place.params({"block": block, "target": target}))
            log.debug("seed %s: %s -> %s: %s", seed, block, target, res.reason or "ok")
            prev = record("after_skill", prev)
        # park the arm low over a random object (the hand 3-12 cm above whatever is highest there): occlusion
        truth = env.world.scene_state()
        names = list(truth.objects)
        obj = truth.objects[names[int(rng.integers(len(names)))]]
        below = [o.position[2] + (BLOCK_SIZE / 2 if o.kind == "block" else BOWL_HEIGHT)
                 for o in truth.objects.values() if np.linalg.norm(o.xy - obj.xy) < 0.12]
        park = (obj.position[0] + rng.uniform(-0.02, 0.02), obj.position[1] + rng.uniform(-0.02, 0.02),
                max(below) + rng.uniform(0.03, 0.12))
        robot.move_to(park, float(rng.uniform(-math.pi / 2, math.pi / 2)), 0.6)
        prev = record("parked", prev)
        # hold a clear block, then carry it over another object
        sym = abstract(env.world.scene_state())
        clear = [b for b in blocks if sym.is_clear(b)]
        if clear:
            b = clear[int(rng.integers(len(clear)))]
            if pick.execute(robot, pick.params({"block": b})).success:
                prev = record("held", prev)
                truth = env.world.scene_state()
                others = [o for n, o in truth.objects.items() if n != b]
                if others:
                    o = others[int(rng.integers(len(others)))]
                    top = max(x.position[2] for x in others)
                    robot.move_to((o.position[0], o.position[1], top + rng.uniform(0.06, 0.12)),
                                  truth.ee_yaw, 0.6)
                    prev = record("carried", prev)
    env.close()
    report = _summarise(rows, times, precision_counts, held_right, held_total, len(seeds))
    errs = [e for _, e, _ in hand_rows if e is not None]
    report["hand_look"] = {"n": len(hand_rows), "held_accuracy": round(float(np.mean([r[0] for r in hand_rows])), 4)
                           if hand_rows else None,
                           "position_error_mm": round(1000 * float(np.mean(errs)), 2) if errs else None,
                           "seconds": round(float(np.mean([r[2] for r in hand_rows])), 4) if hand_rows else None}
    if return_rows:
        report["rows"] = rows
    return report


def _summarise(rows: list[dict[str, Any]], times: list[float], counts: dict[str, int], held_right: int,
               held_total: int, n_scenes: int) -> dict[str, Any]:
    """Aggregate per-object rows into the benchmark report."""
    def stats(sel: list[dict[str, Any]]) -> dict[str, Any]:
        found = [r for r in sel if r["found"]]
        err = np.array([r["error"] for r in found]) * 1000
        yaw = np.degrees([r["yaw_error"] for r in found if r["yaw_error"] is not None])
        return {"n": len(sel), "recall": round(len(found) / len(sel), 4) if sel else None,
                "position_error_mm": round(float(err.mean()), 2) if len(err) else None,
                "position_error_mm_p95": round(float(np.percentile(err, 95)), 2) if len(err) else None,
                "yaw_error_deg": round(float(yaw.mean()), 2) if len(yaw) else None}

    overall = stats(rows)
    tp, fp = counts["tp"], counts["fp"]
    report = {
        "n_scenes": n_scenes, "n_perceptions": len(times), "n_objects": len(rows),
        "detection_precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "detection_recall": overall["recall"],
        "position_error_mm": overall["position_error_mm"],
        "position_error_mm_p95": overall["position_error_mm_p95"],
        "yaw_error_deg": overall["yaw_error_deg"],
        "held_accuracy": round(held_right / held_total, 4) if held_total else None,
        "seconds_per_perception": round(float(np.mean(times)), 4) if times else None,
        "by_case": {case: stats([r for r in rows if case in r["cases"]])
                    for case in ("isolated", "stacked", "in_bowl", "occluded", "held")},
    }
    return report


# ------------------------------------------------------------------------------ perception per decision
def bench_perception(tasks: Path | str = "benchmarks/generated_100.jsonl", n_tasks: int = 12,
                     detection_seeds: int = 30) -> dict[str, Any]:
    """Perception seconds per decision of real episodes (the oracle planner on held-out tasks, perceived
    state, learned success), before (a full look on every ``observe()`` a skill makes) vs after (a look per
    decision plus the grasp check's look at the hand) in one run, rendering timed apart; then detection
    quality on held-out seeds. Before and after alternate task by task, so machine load hits both alike."""
    from embodied.runtime.agent import Agent
    from embodied.world.tasks import load_tasks

    chosen = load_tasks(tasks)[:n_tasks]
    modes = {"before": "every-observe", "after": "decision"}
    agents = {k: Agent.from_config(planner="oracle", looks=v, library=None) for k, v in modes.items()}
    totals = {k: {"perception": 0.0, "render": 0.0, "looks": 0, "decisions": 0, "success": 0} for k in modes}
    colours = {"reused": 0, "computed": 0}  # the memo's colours, after
    try:
        for task in chosen:
            for k, agent in agents.items():
                agent.sensing.timing.clear()
                result = agent.run(task)
                t = totals[k]
                for key in ("perception", "render", "looks"):
                    t[key] += agent.sensing.timing.get(key, 0)
                t["decisions"] += len(result.trace)
                t["success"] += int(result.success)
                memo = agent.sensing.memo
                for key in colours if memo is not None else ():
                    colours[key] += getattr(memo, key)
    finally:
        for agent in agents.values():
            agent.close()
    per = {k: {key: t[key] / max(t["decisions"], 1) for key in ("perception", "render", "looks")}
           for k, t in totals.items()}
    d = benchmark_detection(range(DETECTION_HELDOUT.start, DETECTION_HELDOUT.start + detection_seeds))
    before, after = per["before"], per["after"]
    return {
        "tasks": f"{tasks} (first {len(chosen)})", "decisions": totals["after"]["decisions"],
        "perception_s_before": round(before["perception"], 4), "perception_s_after": round(after["perception"], 4),
        "perception_speedup": round(before["perception"] / max(after["perception"], 1e-9), 2),
        "render_s": round(after["render"], 4), "render_s_before": round(before["render"], 4),
        "looks_per_decision_before": round(before["looks"], 2), "looks_per_decision_after": round(after["looks"], 2),
        "colours_reused_fraction": round(colours["reused"] / max(colours["reused"] + colours["computed"], 1), 3),
        "sensing_s_before": round(before["perception"] + before["render"], 4),
        "sensing_s_after": round(after["perception"] + after["render"], 4),
        "success_before": f"{totals['before']['success']}/{len(chosen)}",
        "success_after": f"{totals['after']['success']}/{len(chosen)}",
        "detection_precision": d["detection_precision"], "detection_recall": d["detection_recall"],
        "position_error_mm": d["position_error_mm"], "held_accuracy": d["held_accuracy"],
        "hand_look": d["hand_look"], "seconds_per_full_look": d["seconds_per_perception"],
        "detection_seeds": f"{DETECTION_HELDOUT.start}-{DETECTION_HELDOUT.start + detection_seeds - 1}",
        "note": "s per decision; perception excludes rendering (render_s: the simulator's cost)",
    }


# ------------------------------------------------------------------------------ one episode, start to end
EPISODE = ("put the red block in the green bowl", {"blocks": ["red", "blue"], "bowls": ["green"]})
_EPISODE_CHILD = """
import json, sys, time
spawned, instruction, scene = float(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
import envs.sim as sim
marks = []
move_to = sim.SimRobot.move_to
def timed(self, *a, **k):
    marks.append(time.time())
    return move_to(self, *a, **k)
sim.SimRobot.move_to = timed
from embodied.runtime.agent import Agent
agent = Agent.from_config()
out = {}
for name in ("cold", "warm"):
    marks.clear()
    t0 = spawned if name == "cold" else time.time()
    result = agent.run(instruction, scene, seed=0)
    out[name] = {"first_motion_s": marks[0] - t0 if marks else None, "total_s": time.time() - t0,
                 "success": bool(result.success)}
agent.close()
print("EPISODE_TIMES " + json.dumps(out))
"""


def bench_episode(repeats: int = 3, code: Path | str | None = None) -> dict[str, Any]:
    """Wall time to the first motion and to the end of a one-step instruction with the defaults, as a user
    meets it: "cold" from spawning a fresh process (imports, model and checkpoint loading, scene set-up,
    perception, the first decision), "warm" for the next episode in that process. ``code`` times another
    checkout of embodied (say the code before a change) with the same interpreter, alternating with this one
    so machine load hits both alike. Medians over ``repeats`` processes."""
    import json
    import statistics
    import subprocess
    import sys

    roots = {"now": Path(__file__).resolve().parents[1]}
    if code is not None:
        roots["other"] = Path(code).resolve()
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in roots}
    for i in range(repeats):
        for name, root in roots.items():
            env = {**os.environ, "PYTHONPATH": str(root)}
            t0 = time.time()
            proc = subprocess.run([sys.executable, "-c", _EPISODE_CHILD, str(t0), EPISODE[0], json.dumps(EPISODE[1])],
                                  cwd=root, env=env, capture_output=True, text=True, timeout=600)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("EPISODE_TIMES ")), None)
            if proc.returncode or line is None or any(v["first_motion_s"] is None for v in json.loads(
                    line.split(" ", 1)[1]).values()):
                raise EmbodiedError(f"episode process in {root} failed (exit {proc.returncode}) or made no motion: "
                                    f"{proc.stderr[-2000:]}")
            runs[name].append(json.loads(line.split(" ", 1)[1]))
            log.info("%s run %d: %s", name, i, runs[name][-1])

    def med(name: str, phase: str, key: str) -> float:
        return round(statistics.median(r[phase][key] for r in runs[name]), 3)

    report: dict[str, Any] = {"instruction": EPISODE[0], "scene": EPISODE[1], "repeats": repeats}
    for name in roots:
        prefix = "" if name == "now" else "other_"
        report.update({f"{prefix}first_motion_s": med(name, "cold", "first_motion_s"),
                       f"{prefix}total_s": med(name, "cold", "total_s"),
                       f"{prefix}warm_first_motion_s": med(name, "warm", "first_motion_s"),
                       f"{prefix}warm_total_s": med(name, "warm", "total_s"),
                       f"{prefix}success": f"{sum(r[p]['success'] for r in runs[name] for p in ('cold', 'warm'))}"
                                           f"/{2 * len(runs[name])}"})
    if code is not None:
        report["other_code"] = str(roots["other"])
    return report


# ------------------------------------------------------------------------------- rollouts against workers
def bench_rollouts(tasks: Path | str = "benchmarks/generated_100.jsonl", n_tasks: int = 30,
                   workers: Sequence[int] = (1, 2), backend: str = "local", **agent: Any) -> dict[str, Any]:
    """Episodes per second of `eval` with the defaults (``agent`` overrides them) on the first ``n_tasks``
    tasks, for each number of ``workers`` in one run: with the local backend 1 is the in-process eval, more
    are worker processes (with Ray, actors for every count) whose start-up (spawn, imports, models) is timed
    into the run; ``first_row_s`` is the time to the first finished episode (start-up plus one episode).
    Per-task outcomes are compared across the runs (``identical_outcomes``)."""
    import json
    import tempfile

    from embodied.runtime.agent import Agent
    from embodied.runtime.rollouts import _cores, check_backend
    from embodied.world.tasks import load_tasks

    check_backend(backend)
    workers = tuple(dict.fromkeys(workers))  # each count once
    chosen = load_tasks(tasks)[:n_tasks]
    runs: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, dict[str, Any]] = {}
    with Agent.from_config(**agent) as a, tempfile.TemporaryDirectory(prefix="bench-rollouts-") as tmp:
        for n in workers:
            first: list[float] = []
            t0 = time.perf_counter()
            report = a.evaluate(chosen, Path(tmp) / f"w{n}", workers=n, backend=backend,
                                on_episode=lambda _row, first=first: first.append(time.perf_counter()))
            wall = time.perf_counter() - t0
            rows = [json.loads(line) for line in (Path(tmp) / f"w{n}" / "results.jsonl").read_text().splitlines()]
            outcomes[str(n)] = {r["id"]: (r["success"], r["outcome"], r["n_steps"]) for r in rows}
            runs[str(n)] = {"wall_s": round(wall, 2), "episodes_per_s": round(len(rows) / wall, 4),
                            "first_row_s": round(first[0] - t0, 2) if first else None,
                            "execution_success": report["execution_success"], "episodes": len(rows)}
    base = runs[str(workers[0])]["episodes_per_s"]
    per_episode = runs[str(workers[0])]["wall_s"] / max(runs[str(workers[0])]["episodes"], 1)
    reference = outcomes[str(workers[0])]
    return {
        "tasks": f"{tasks} (first {len(chosen)})", "backend": backend, "cores": _cores(), "runs": runs,
        "speedup": {n: round(r["episodes_per_s"] / base, 2) for n, r in runs.items()},
        "identical_outcomes": all(o == reference for o in outcomes.values()),
        "differing_tasks": sorted({t for o in outcomes.values() for t in o if o.get(t) != reference.get(t)}),
        "seconds_per_episode_one_worker": round(per_episode, 2),
    }


# ------------------------------------------------------------------------------- the ROS bridge
def bench_ros(profile: str | Path | None = None, moves: int = 40) -> dict[str, Any]:
    """The bridge against `embodied ros sim` in another process (a private master on 127.0.0.1 for ROS 1;
    a DDS domain of its own on loopback for ROS 2): every safety case with its message and whether it
    reached the node (its own log), the e-stop in the middle of a motion, a dry run, and the bridge's
    overhead per command over ``moves`` moves (round trip minus the node's execution, ms)."""
    import json
    import signal
    import subprocess
    import sys
    import tempfile

    from embodied.ros.check import dry_run_case, estop_case, safety_cases
    from embodied.ros.profile import DEFAULT_PROFILE, load_profile
    from embodied.ros.robot import RosRobot
    from embodied.ros.transport import make_transport, start_master

    path = Path(profile) if profile else DEFAULT_PROFILE
    prof = load_profile(path)
    tmp = Path(tempfile.mkdtemp(prefix="embodied-bench-ros-"))
    log_file = tmp / "sim.jsonl"
    master, uri, env = None, None, dict(os.environ)
    if prof.transport == "ros1":
        master, uri = start_master()
        where = ["--master", uri]
    else:
        env["ROS_DOMAIN_ID"] = os.environ["ROS_DOMAIN_ID"] = str(150 + os.getpid() % 80)
        where = []
    node = subprocess.Popen([sys.executable, "-m", "embodied.cli", "ros", "sim", "--profile", str(path), *where,
                             "--log", str(log_file)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, start_new_session=True)
    try:
        node.stdout.readline()  # it prints where it serves once it does

        def rows(event: str) -> list[dict[str, Any]]:
            lines = log_file.read_text().splitlines() if log_file.exists() else []
            return [r for r in map(json.loads, lines) if r["event"] == event]

        def goals() -> int:
            return len(rows("goal"))

        transport = make_transport(prof, "embodied_bench", uri)
        robot = RosRobot(transport, prof)
        robot.wait_ready(20)
        short_file = tmp / "short_step.yaml"
        short_file.write_text(path.read_text().replace("max_step_m: 0.9", "max_step_m: 0.05")
                              if "max_step_m: 0.9" in path.read_text() else
                              path.read_text() + "\nlimits: {max_step_m: 0.05}\n")
        short = RosRobot(transport, load_profile(short_file))
        short.wait_ready(20)
        cases = safety_cases(robot, goals, short_step=short,
                             pause=lambda on: node.send_signal(signal.SIGSTOP if on else signal.SIGCONT))
        estop_pub = transport.publisher(prof.estop, "bool")
        transport.wait_connected(5)
        estop = estop_case(robot, goals, estop_pub, lambda: rows("estop_rest"))
        dry = RosRobot(transport, prof, dry_run=True)
        dry.wait_ready(20)
        dry_run = dry_run_case(dry, goals)
        robot.bridge_ms = []
        for i in range(moves):
            robot.move_to((0.40, 0.10 if i % 2 else -0.10, 0.90), 0.0, 1.0)
        ms = np.sort(np.asarray(robot.bridge_ms))
        return {"profile": prof.name, "transport": prof.transport, "cases": cases, "estop": estop,
                "dry_run": dry_run, "overhead_ms": {"commands": len(ms), "median": round(float(np.median(ms)), 3),
                                                    "p95": round(float(np.percentile(ms, 95)), 3),
                                                    "max": round(float(ms.max()), 3)},
                "refused_reaching_node": sum(c["reached_robot"] for c in cases)}
    finally:
        node.terminate()
        try:
            node.wait(10)
        except subprocess.TimeoutExpired:
            node.kill()
        if master is not None:
            master.terminate()
            master.wait(10)


# ------------------------------------------------------------------------------- the web app under load
def bench_web(iterations: int = 20, seed: int = 0) -> dict[str, Any]:
    """Page times of `embodied serve` while `embodied learn` writes ``iterations`` iterations into the same
    library from another process (the oracle planner on ground truth, so learning is quick and real): p50,
    p95 and max per page, and how many skills the library page showed as they were added."""
    import subprocess
    import sys
    import tempfile
    import threading
    import urllib.request

    import uvicorn

    from embodied.web.app import create_app

    tmp = Path(tempfile.mkdtemp(prefix="embodied-bench-web-"))
    library, runs = tmp / "skills.db", tmp / "runs"
    runs.mkdir()
    port = _free_port()  # free now; the server binds it next
    server = uvicorn.Server(uvicorn.Config(create_app(runs, library), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"

    def get(path: str) -> tuple[float, str]:
        t0 = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=30) as r:
            body = r.read().decode()
        return time.perf_counter() - t0, body

    learn = subprocess.Popen([sys.executable, "-m", "embodied.cli", "learn", "--iterations", str(iterations),
                              "--seed", str(seed), "--library", str(library), "--planner", "oracle", "--state",
                              "ground-truth", "--affordance", "analytic", "--success", "analytic"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times: dict[str, list[float]] = {"/": [], "/library": [], "/library?q=stack": [], "/skill/NAME": []}
    counts: list[int] = []
    body = ""
    t_start = time.perf_counter()
    try:
        while not library.exists() and learn.poll() is None:
            time.sleep(0.05)
        get("/library?q=warm")  # the embedding model loads once, on the first search of a library
        while learn.poll() is None:
            for path in list(times):
                if path == "/skill/NAME":
                    names = [p.split('"')[0] for p in body.split('href="/skill/')[1:]]
                    if not names:
                        continue
                    dt, _ = get(f"/skill/{names[-1]}")
                else:
                    dt, body_now = get(path)
                    if path == "/library":
                        body = body_now
                        counts.append(body.count('href="/skill/'))
                times[path].append(dt)
            time.sleep(0.05)
    finally:
        learn.wait()
        server.should_exit = True
        thread.join(10)
    every = np.asarray([t for ts in times.values() for t in ts]) * 1000
    per_page = {p: {"n": len(ts), "p50_ms": round(float(np.percentile(ts, 50)) * 1000, 1),
                    "p95_ms": round(float(np.percentile(ts, 95)) * 1000, 1), "max_ms": round(max(ts) * 1000, 1)}
                for p, ts in times.items() if ts}
    return {"iterations": iterations, "learn_exit_code": learn.returncode,
            "learn_wall_s": round(time.perf_counter() - t_start, 1), "requests": int(every.size),
            "p50_ms": round(float(np.percentile(every, 50)), 1), "p95_ms": round(float(np.percentile(every, 95)), 1),
            "max_ms": round(float(every.max()), 1), "pages": per_page,
            "skills_seen": sorted(set(counts)), "errors": 0}


def _free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
