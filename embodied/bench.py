"""`embodied bench sim`: physics steps/s and real-time factor with a full scene, rendered RGB-D frames/s,
and seconds per pick-and-place — measured, printed as JSON."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pybullet as p

from embodied.world.scene import COLOR_NAMES, MAX_BLOCKS, MAX_BOWLS
from embodied.world.seeds import DETECTION_HELDOUT, GROUNDING_HELDOUT
from embodied.world.tasks import SceneSpec, Task
from envs.sim import DT
from envs.tabletop import TabletopEnv
from skills import SkillCall, get_skill

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
    client = env.world.client
    for _ in range(600):  # let the freshly laid-out scene come to rest (Bullet puts it to sleep after ~2 s)
        p.stepSimulation(physicsClientId=client)
    t = time.perf_counter()
    for _ in range(physics_steps):
        p.stepSimulation(physicsClientId=client)
    physics_s = time.perf_counter() - t
    # worst case: nothing allowed to sleep (every contact solved every step)
    for body in env.world.bodies.values():
        p.changeDynamics(body, -1, activationState=p.ACTIVATION_STATE_DISABLE_SLEEPING, physicsClientId=client)
    t = time.perf_counter()
    for _ in range(physics_steps // 4):
        p.stepSimulation(physicsClientId=client)
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
    skill = get_skill("pick_and_place")
    targets = state.bowls + ["middle", "top left corner"]
    times, successes, steps = [], 0, 0
    for i, block in enumerate(state.blocks[:picks]):
        call = SkillCall("pick_and_place", {"block": block, "target": targets[i % len(targets)]})
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
    from embodied.perception import benchmark_detection
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
