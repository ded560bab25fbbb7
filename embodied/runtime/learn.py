"""The growth loop (`embodied learn`): an automatic curriculum proposes tasks of rising difficulty, the
planner attempts each with the primitives plus the retrieved skills, the environment's goal check judges,
and a successful plan becomes a parameterised skill once it works on fresh seeds.

Every iteration is committed to the library database in one transaction (its log line, the skill it added
and the statistics of the skills it used), so a run stopped at any point resumes after its last commit.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from embodied.library.abstraction import abstract_plan
from embodied.library.embed import default_embedder
from embodied.library.store import LibraryError, SkillRecord, SkillStore, now
from embodied.planners.base import Planner
from embodied.planners.prompting import initial_state
from embodied.runtime.episode import run_episode
from embodied.runtime.sensing import Sensing
from embodied.runtime.verify import fresh_seeds, verify
from embodied.world.errors import EmbodiedError
from embodied.world.seeds import LEARN
from envs.generator import generate
from envs.tabletop import TabletopEnv
from skills import SkillCall, skill_names

log = logging.getLogger(__name__)

LEVELS: tuple[tuple[str, ...], ...] = (
    ("block_in_bowl", "block_on_block", "block_at_location"),
    ("stack_two", "all_in_bowl", "combo"),
    ("stack_three", "matching_bowls"),
    ("ordered_tower", "stack_all"),
    ("tall_tower", "sort_all", "all_in_one_bowl"),
)


@dataclass
class LearnConfig:
    """Knobs of the growth loop; everything but ``iterations`` must match when a run is resumed."""

    iterations: int = 50
    seed: int = 0
    run: str = "default"  # name of the run in the library's log (resume key)
    verify_seeds: int = 3  # fresh tables a new skill is run on before it is stored
    min_verify_rate: float = 2 / 3  # share of those it must solve (physics has the odd missed grasp)
    master_after: int = 2  # consecutive solves after which a family counts as mastered
    give_up_after: int = 3  # consecutive failures after which the curriculum moves past a family
    review: float = 0.15  # chance to revisit a mastered family (keeps old skills exercised)

    def __post_init__(self) -> None:
        if self.iterations < 0:
            raise EmbodiedError(f"LearnConfig.iterations must be >= 0, got {self.iterations}")
        if self.seed < 0:
            raise EmbodiedError(f"LearnConfig.seed must be >= 0, got {self.seed}")
        if self.verify_seeds < 1:
            raise EmbodiedError(f"LearnConfig.verify_seeds must be >= 1, got {self.verify_seeds}")
        if not 0.0 < self.min_verify_rate <= 1.0:
            raise EmbodiedError(f"LearnConfig.min_verify_rate must be in (0, 1], got {self.min_verify_rate}")
        if self.master_after < 1 or self.give_up_after < 1:
            raise EmbodiedError("LearnConfig.master_after and give_up_after must be >= 1")
        if not 0.0 <= self.review < 1.0:
            raise EmbodiedError(f"LearnConfig.review must be in [0, 1), got {self.review}")

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("iterations")
        return d


@dataclass
class FamilyRecord:
    attempts: int = 0
    solved_streak: int = 0
    failed_streak: int = 0


def curriculum_state(history: list[dict[str, Any]]) -> dict[str, FamilyRecord]:
    """Per family: attempts and the current streaks, replayed from the log (so resuming is exact)."""
    state = {f: FamilyRecord() for level in LEVELS for f in level}
    for row in history:
        r = state[row["family"]]
        r.attempts += 1
        if row["solved"]:
            r.solved_streak, r.failed_streak = r.solved_streak + 1, 0
        else:
            r.solved_streak, r.failed_streak = 0, r.failed_streak + 1
    return state


def propose(history: list[dict[str, Any]], rng: np.random.Generator, config: LearnConfig) -> tuple[str, int]:
    """The next family and its level: the easiest level with a family neither mastered nor given up on,
    its least-tried such family; now and then a mastered one for review."""
    state = curriculum_state(history)

    def open_(f: str) -> bool:
        return state[f].solved_streak < config.master_after and state[f].failed_streak < config.give_up_after

    level = next((i for i, fams in enumerate(LEVELS) if any(open_(f) for f in fams)), len(LEVELS) - 1)
    mastered = [f for fams in LEVELS[: level + 1] for f in fams if not open_(f)]
    if mastered and rng.random() < config.review:
        f = mastered[int(rng.integers(len(mastered)))]
        return f, next(i for i, fams in enumerate(LEVELS) if f in fams)
    candidates = [f for f in LEVELS[level] if open_(f)] or list(LEVELS[level])
    fewest = min(state[f].attempts for f in candidates)
    choices = [f for f in candidates if state[f].attempts == fewest]
    return choices[int(rng.integers(len(choices)))], level


def next_iteration(history: list[dict[str, Any]]) -> int:
    """Where a run resumes: after the last iteration the library really holds (gaps are not refilled)."""
    return history[-1]["iteration"] + 1 if history else 0


def learn(config: LearnConfig, store: SkillStore, planner: Planner, env: TabletopEnv,
          on_iteration: Callable[[dict[str, Any]], None] | None = None,
          sensing: Sensing | None = None, workers: Any = None) -> list[dict[str, Any]]:
    """Run (or resume) ``config.iterations`` iterations; returns the whole log of the run. With ``sensing``
    (as `embodied run` has it: perceived state, learned success) the episodes and the verification of new
    skills act on what the robot perceives, so the library is learned in the world it is used in; without,
    on the simulator's state. ``workers`` (`embodied.runtime.rollouts`' pools) run a new skill's verification
    seeds side by side; the curriculum itself stays one iteration after another, since each proposal reads
    the log so far. A library that cannot be written is refused before the first iteration; one
    that fails later raises a `LibraryError` saying which iteration was not saved (the next run resumes
    after the last one stored)."""
    store.check_writable()
    key = f"learn:{config.run}"
    stored = store.meta(key)
    identity = {**config.identity(), **(sensing.describe() if sensing is not None else {"state": "ground-truth"})}
    if stored is None:
        store.set_meta(key, json.dumps(identity, sort_keys=True))
    elif {"state": "ground-truth", **json.loads(stored)} != identity:  # runs from before sensing was recorded
        raise LibraryError(f"run {config.run!r} in {store.path} was started with {stored}; resume it with the "
                           "same settings, or start another with --run NAME")
    history = store.learn_log(config.run)
    if history:
        log.info("resuming run %r after iteration %d", config.run, history[-1]["iteration"])
    embed = default_embedder()
    model = getattr(planner, "config", None)
    model_name = f"{getattr(model, 'llm', planner.name)}+{getattr(model, 'adapter', '')}".rstrip("+")
    for it in range(next_iteration(history), config.iterations):
        t0 = time.perf_counter()
        rng = np.random.default_rng([config.seed, it])
        family, level = propose(history, rng, config)
        seed = LEARN.start + config.seed * 100_000 + it
        task = generate(family, seed)
        result = run_episode(env, task, planner, sensing=sensing)
        used = result.extra.get("library_skills", [])
        row: dict[str, Any] = {"task": task.id, "family": family, "level": level, "instruction": task.instruction,
                               "solved": result.success, "reason": result.reason,
                               "llm_calls": result.extra.get("llm_calls", 0), "skill_calls": len(result.steps),
                               "used": [u["skill"] for u in used], "skill": None, "skill_status": None}
        new_skill = None
        if result.success:
            primitives = set(skill_names())  # not a library skill that stopped before its first primitive
            calls = [SkillCall(s["skill"], s["args"]) for s in result.steps
                     if s["result"]["success"] and s["skill"] in primitives]
            draft = abstract_plan(task.goal, calls, initial_state(task), family)
            if draft is None:
                row["skill_status"] = "nothing to abstract"
            elif (known := store.find_code(draft.code)) is not None:
                row["skill"], row["skill_status"] = known, "already in the library"
            else:
                objects = set(draft.binding.values())
                blocks = sum(o.endswith("block") for o in objects)
                bowls = sum(o.endswith("bowl") for o in objects)
                record = SkillRecord(
                    name=draft.name, description=draft.description, params=draft.params, code=draft.code,
                    postcondition=draft.postcondition,
                    provenance={"task": task.id, "instruction": task.instruction, "family": family,
                                "episode": f"{config.run}/{it}", "model": model_name, "seed": seed,
                                "binding": draft.binding,
                                "extra_blocks": len(task.scene.blocks) - blocks,
                                "extra_bowls": len(task.scene.bowls) - bowls,
                                "matching_colours": _matching(draft.binding)})
                if draft.name in store.names():
                    record.attempts = 0  # a new version starts its statistics afresh
                check = verify(record, env, fresh_seeds(record, config.verify_seeds), sensing=sensing,
                               workers=workers)
                record.attempts, record.successes, record.last_verified = check.attempts, check.successes, now()
                row["verify"] = {"seeds": check.seeds, "successes": check.successes, "failures": check.failures}
                if check.rate >= config.min_verify_rate:
                    new_skill = (record, embed([record.embed_text()])[0], embed.name)
                    row["skill"], row["skill_status"] = record.name, "added"
                else:
                    row["skill_status"] = f"rejected: {check.successes}/{check.attempts} verification runs"
        row["seconds"] = round(time.perf_counter() - t0, 2)
        try:
            store.log_iteration(config.run, it, row, new_skill, used=[(u["skill"], u["success"]) for u in used])
        except LibraryError as e:
            raise LibraryError(f"iteration {it} could not be saved ({e}); rerunning resumes after iteration "
                               f"{it - 1}") from None
        history.append({"iteration": it, **row})
        if on_iteration:
            on_iteration(history[-1])
    return history


def _matching(binding: dict[str, str]) -> bool:
    """True when block_i and bowl_i share a colour for every i (a sorting skill)."""
    blocks = [v for k, v in sorted(binding.items()) if k.startswith("block")]
    bowls = [v for k, v in sorted(binding.items()) if k.startswith("bowl")]
    return bool(bowls) and len(blocks) == len(bowls) and all(
        b.split()[0] == w.split()[0] for b, w in zip(blocks, bowls, strict=True))


def curve(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per iteration: solved, skills added, library size and language-model calls (for the plot)."""
    out, size, solved = [], 0, 0
    for row in history:
        added = row.get("skill_status") == "added"
        size += added
        solved += bool(row["solved"])
        out.append({"iteration": row["iteration"], "family": row["family"], "level": row["level"],
                    "solved": bool(row["solved"]), "skill_added": added, "library_size": size,
                    "solved_total": solved, "llm_calls": row["llm_calls"], "used_library": bool(row["used"])})
    return out
