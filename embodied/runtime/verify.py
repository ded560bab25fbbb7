"""Self-verification: run a skill's code with real physics on fresh tables its postcondition can be
checked on; the environment's goal check is the critic."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from embodied.library.abstraction import instantiate
from embodied.library.api import API_METHODS, LiveAPI
from embodied.library.executor import Budget, run_skill
from embodied.library.store import SkillRecord, Verification
from embodied.runtime.sensing import Sensing
from embodied.world.scene import COLOR_NAMES, LOCATION_NAMES, MAX_BLOCKS, MAX_BOWLS
from embodied.world.seeds import VERIFY
from embodied.world.tasks import SceneSpec, Task
from envs.tabletop import TabletopEnv

log = logging.getLogger(__name__)



def fresh_seeds(record: SkillRecord, k: int) -> list[int]:
    """Seeds this skill has not been verified on: a per-name block, advanced by its attempts so far."""
    base = VERIFY.start + (zlib.crc32(record.name.encode()) % 10_000) * 1_000
    return [base + record.attempts + j for j in range(k)]


def verification_task(record: SkillRecord, seed: int) -> tuple[Task, dict[str, str]]:
    """A random table holding objects for every parameter (plus as many extra objects as the source task
    had), the binding, and the postcondition instantiated as the goal."""
    rng = np.random.default_rng(seed)
    kinds = [p.kind for p in record.params]
    n_blocks, n_bowls = kinds.count("block"), kinds.count("bowl")
    extra_blocks = min(int(record.provenance.get("extra_blocks", 0)), MAX_BLOCKS - n_blocks)
    extra_bowls = min(int(record.provenance.get("extra_bowls", 0)), MAX_BOWLS - n_bowls)
    blocks = [str(c) for c in rng.choice(COLOR_NAMES, n_blocks + extra_blocks, replace=False)]
    if record.provenance.get("matching_colours") and n_bowls == n_blocks:
        bowls = blocks[:n_bowls]
    else:
        bowls = [str(c) for c in rng.choice(COLOR_NAMES, n_bowls, replace=False)]
    bowls += [str(c) for c in rng.choice([c for c in COLOR_NAMES if c not in bowls], extra_bowls, replace=False)]
    locations = [str(x) for x in rng.choice(LOCATION_NAMES, kinds.count("location"), replace=False)]
    pools = {"block": iter(f"{c} block" for c in blocks), "bowl": iter(f"{c} bowl" for c in bowls),
             "location": iter(locations)}
    binding = {p.name: next(pools[p.kind]) for p in record.params}
    goal = instantiate(record.postcondition, binding)
    order = rng.permutation(len(blocks))
    task = Task(id=f"verify-{record.name}-{seed}", instruction=record.description,
                scene=SceneSpec([blocks[i] for i in order], bowls), goal=goal, seed=seed,
                max_steps=2 * n_blocks + 2)
    return task, binding


def verify(record: SkillRecord, env: TabletopEnv, seeds: Sequence[int],
           on_seed: Callable[[int, bool, str], None] | None = None, sensing: Sensing | None = None,
           film: Callable[[int, Any], AbstractContextManager] | None = None, workers: Any = None) -> Verification:
    """Run the skill on each seed's table: success = the code finished and the postcondition holds on the
    simulator's physical state (without a postcondition, that every primitive it called worked). With
    ``sensing`` the skill's code acts on the perceived state, as it will when an agent uses it. ``film(seed,
    task)`` gives a context (a video recorder) entered while the skill's code runs on that seed. ``workers``
    (`embodied.runtime.rollouts`' pools, their agents sensing as ``sensing`` does) run the seeds side by
    side instead; the outcome per seed is the same (each table is seeded)."""
    if workers is not None:
        return _verify_on(workers, record, seeds, on_seed, film)
    out = Verification(list(seeds))
    for seed in seeds:
        task, binding = verification_task(record, seed)
        env.reset(seed=seed, options={"task": task})
        robot = env.robot
        if sensing is not None:
            sensing.reset()
            robot = sensing.robot
        with film(seed, task) if film is not None else nullcontext():
            result = run_skill(record.code, LiveAPI(robot), binding, API_METHODS, Budget())
        ok, why = result.success, result.reason
        if ok and task.goal and not env.evaluate()["success"]:
            ok, why = False, "finished, but the postcondition does not hold"
        out.successes += ok
        if not ok:
            out.failures.append(f"seed {seed}: {why}")
        if on_seed:
            on_seed(seed, ok, why)
    return out


def _verify_on(workers: Any, record: SkillRecord, seeds: Sequence[int],
               on_seed: Callable[[int, bool, str], None] | None,
               film: Callable[[int, Any], AbstractContextManager] | None) -> Verification:
    """`verify` with each seed a `VerifyJob` on ``workers``; results in seed order."""
    from dataclasses import asdict

    from embodied.runtime.rollouts import VerifyJob

    if film is not None:
        raise ValueError("filming a verification needs it to run in this process (no workers)")
    rows = {job.seed: row for job, row in workers.run([VerifyJob(asdict(record), s) for s in seeds])}
    out = Verification(list(seeds))
    for seed in seeds:
        ok, why = bool(rows[seed]["success"]), str(rows[seed]["reason"])
        out.successes += ok
        if not ok:
            out.failures.append(why)
        if on_seed:
            on_seed(seed, ok, why.partition(": ")[2] or why)
    return out
