"""Voyager's loop on the Crafter world (`embodied learn --env crafter`): an automatic curriculum over the
achievements proposes the next task in a lifelong game, the SayCan planner attempts it with the primitives
(and, with the library, the learned programs retrieved for it), success is read from the game's achievement
counters, and a solved task becomes a program (`abstract_crafter`) once it unlocks the achievement on fresh
worlds. Also the Crafter score over long episodes (`crafter_score`, `play_long_episode`).

Iterations: one iteration is one curriculum task in the run's lifelong world, at most
``skills_per_iteration`` choices (a learned program is one choice). When the player dies, the run goes on in a
new world (the next seed of its block) with nothing carried over but the library. Every iteration is
committed to the library database in one transaction with the game actions it took; the world is
deterministic, so a resumed run replays those actions and continues from the same game."""

from __future__ import annotations

import json
import logging
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from embodied.library.crafter import WORLD, CrafterLibrary, Step, abstract_crafter, run_program
from embodied.library.embed import default_embedder
from embodied.library.store import LibraryError, SkillRecord, SkillStore, Verification, now
from embodied.planners.crafter import CrafterPlanner
from embodied.runtime.crafter import attempt
from embodied.world.errors import EmbodiedError
from embodied.world.seeds import CRAFTER_LEARN, CRAFTER_SCORE, CRAFTER_VERIFY
from envs.crafter import ACHIEVEMENTS, ACTIONS, CrafterBody, CrafterEnv
from skills.crafter import GOALS

log = logging.getLogger(__name__)

TECH_TREE = ("collect_wood", "place_table", "make_wood_pickaxe", "make_wood_sword", "collect_stone", "place_stone",
             "make_stone_pickaxe", "make_stone_sword", "place_furnace", "collect_coal", "collect_iron",
             "make_iron_pickaxe", "make_iron_sword", "collect_diamond")  # a sword soon: zombies kill at dusk
SURVIVAL = (("drink", 3, "collect_drink"), ("food", 3, "eat_cow"), ("energy", 2, "wake_up"))  # vital, low, task
MILESTONES = ("make_wood_pickaxe", "make_stone_pickaxe", "make_iron_pickaxe", "collect_diamond")
WORLD_LENGTH = 10_000  # the paper's episode length: a lifelong world ends only with the player's death
LIVES_PER_RUN = 1_000  # world seeds per run's block (a run moves to the next when the player dies)


@dataclass
class CrafterLearnConfig:
    """Knobs of the Crafter growth loop; everything but ``iterations`` must match when a run is resumed."""

    iterations: int = 30
    seed: int = 0  # the run's block of world seeds
    run: str = "crafter"
    library: bool = True  # learn programs and offer them (False: primitives only, the baseline)
    skills_per_iteration: int = 8  # planner choices per task (a program is one)
    verify_seeds: int = 3  # fresh worlds a new program must unlock its achievement on
    min_verify_rate: float = 2 / 3
    verify_steps: int = 1_500  # game steps a program may take on a verification world
    give_up_after: int = 3  # failures of a task in one world before the curriculum moves past it

    def __post_init__(self) -> None:
        for name in ("iterations", "seed"):
            if getattr(self, name) < 0:
                raise EmbodiedError(f"CrafterLearnConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("skills_per_iteration", "verify_seeds", "verify_steps", "give_up_after"):
            if getattr(self, name) < 1:
                raise EmbodiedError(f"CrafterLearnConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.min_verify_rate <= 1.0:
            raise EmbodiedError(f"CrafterLearnConfig.min_verify_rate must be in (0, 1], got {self.min_verify_rate}")
        if self.seed * LIVES_PER_RUN + LIVES_PER_RUN > CRAFTER_LEARN.stop - CRAFTER_LEARN.start:
            raise EmbodiedError(f"CrafterLearnConfig.seed {self.seed} leaves the Crafter learning seed range")

    def identity(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("iterations")
        return {"world": WORLD, **d}

    def world_seed(self, life: int) -> int:
        return CRAFTER_LEARN.start + self.seed * LIVES_PER_RUN + life


# ---------------------------------------------------------------------- curriculum
def propose(rows: Sequence[dict[str, Any]], unlocked: set[str], inventory: dict[str, int],
            give_up_after: int = 3) -> str:
    """The next task in this world (``rows``: its iterations so far): a vital that is low first (drink, eat,
    sleep), unless that task just failed; else the first achievement of the tech tree not yet unlocked here
    that has failed fewer than ``give_up_after`` times here; when every open one has, the least failed."""
    failures: dict[str, int] = {}
    for r in rows:
        if not r["solved"]:
            failures[r["goal"]] = failures.get(r["goal"], 0) + 1
    last = rows[-1] if rows else None
    for vital, low, task in SURVIVAL:
        if inventory.get(vital, 9) <= low and not (last and last["goal"] == task and not last["solved"]):
            return task
    open_ = [a for a in TECH_TREE if a not in unlocked]
    if not open_:
        return min(TECH_TREE, key=lambda a: failures.get(a, 0))
    fresh = [a for a in open_ if failures.get(a, 0) < give_up_after]
    return fresh[0] if fresh else min(open_, key=lambda a: (failures.get(a, 0), open_.index(a)))


def next_iteration(history: list[dict[str, Any]]) -> int:
    return history[-1]["iteration"] + 1 if history else 0


def encode_actions(actions: Sequence[int]) -> str:
    """Game actions as letters (a = noop ... q = make_iron_sword), one per step, for the log."""
    return "".join(chr(ord("a") + a) for a in actions)


def decode_actions(text: str) -> list[int]:
    return [ord(c) - ord("a") for c in text]


# ---------------------------------------------------------------------- verification
@dataclass
class CrafterVerification(Verification):
    """How a program did on fresh worlds (success read from the achievement counter), with the game steps
    each took."""

    game_steps: list[int] = field(default_factory=list)


def fresh_worlds(record: SkillRecord, k: int) -> list[int]:
    """World seeds this program has not been verified on: a block per name, advanced by its attempts."""
    base = CRAFTER_VERIFY.start + (zlib.crc32(record.name.encode()) % 3_000) * 100
    return [base + record.attempts + j for j in range(k)]


def verify_crafter(record: SkillRecord, store: SkillStore | None, seeds: Sequence[int],
                   max_game_steps: int = 1_500) -> CrafterVerification:
    """Run the program from the start of each seed's world; it passes when the game's counter for its
    achievement grew (never what the program returns)."""
    out = CrafterVerification(list(seeds))
    env = CrafterEnv(length=WORLD_LENGTH)
    try:
        for seed in seeds:
            env.reset(seed=seed)
            body = CrafterBody(env)
            ok, reason, _ = run_program(record, body, store, max_game_steps)
            out.successes += ok
            out.game_steps.append(env.steps)
            if not ok:
                out.failures.append(f"seed {seed}: {reason}")
    finally:
        env.close()
    return out


# ---------------------------------------------------------------------- the loop
class _World:
    """The run's current lifelong game: env, body, which life (world seed) and the steps abstraction reads."""

    def __init__(self, config: CrafterLearnConfig) -> None:
        self.config = config
        self.env = CrafterEnv(length=WORLD_LENGTH)
        self.life = -1
        self.body: CrafterBody | None = None
        self.steps: list[Step] = []
        self.rows: list[dict[str, Any]] = []

    def new_life(self, life: int) -> CrafterBody:
        self.life = life
        self.env.reset(seed=self.config.world_seed(life))
        self.body = CrafterBody(self.env)
        self.steps, self.rows = [], []
        return self.body

    def restore(self, history: list[dict[str, Any]]) -> None:
        """Replay the logged actions of the last life (deterministic world: the same game and map)."""
        if not history:
            self.new_life(0)
            return
        life = history[-1]["life"]
        body = self.new_life(life)
        for row in history:
            if row["life"] == life:
                body.replay(decode_actions(row["actions"]))
                self.steps += [Step.from_dict(s) for s in row["steps"]]
                self.rows.append(row)
        if history[-1]["dead"] or body.done:
            self.new_life(life + 1)


def learn_crafter(config: CrafterLearnConfig, store: SkillStore, planner: CrafterPlanner,
                  on_iteration: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run (or resume) ``config.iterations`` iterations; returns the run's whole log. Without
    ``config.library`` nothing is retrieved or added (the baseline); the log still goes to ``store``."""
    store.check_writable()
    key = f"learn:{config.run}"
    stored = store.meta(key)
    identity = config.identity()
    if stored is None:
        store.set_meta(key, json.dumps(identity, sort_keys=True))
    elif json.loads(stored) != identity:
        raise LibraryError(f"run {config.run!r} in {store.path} was started with {stored}; resume it with the "
                           "same settings, or start another with --run NAME")
    history = store.learn_log(config.run)
    world = _World(config)
    world.restore(history)
    if history:
        log.info("resuming run %r after iteration %d (world %d replayed)", config.run, history[-1]["iteration"],
                 world.life)
    planner.library = CrafterLibrary(store) if config.library else None
    try:
        for it in range(next_iteration(history), config.iterations):
            t0 = time.perf_counter()
            body = world.body
            if body is None or body.done:
                body = world.new_life(world.life + 1)
            unlocked = {a for a, n in body.achievements.items() if n > 0}
            goal = propose(world.rows, unlocked, body.inventory, config.give_up_after)
            n_actions, calls, before = len(body.actions), planner.llm_calls, body.achievements.get(goal, 0)
            steps = attempt(body, planner, goal, config.skills_per_iteration)
            solved = body.achievements.get(goal, 0) > before
            abstract = [s["abstract"] for s in steps]
            world.steps += [Step.from_dict(s) for s in abstract]
            row: dict[str, Any] = {
                "goal": goal, "solved": solved, "life": world.life, "world_seed": config.world_seed(world.life),
                "llm_calls": planner.llm_calls - calls, "skill_calls": len(steps), "game_steps": body.env.steps,
                "unlocked": sorted(a for a, n in body.achievements.items() if n > 0), "dead": body.env.player.health <= 0,
                "used": [s["skill"] for s in steps if s["library"]],
                "choices": [(s["skill"], s["success"]) for s in steps], "skill": None, "skill_status": None,
                "actions": encode_actions(body.actions[n_actions:]), "steps": abstract}
            new_skill = None
            if solved and config.library:
                new_skill = _learn(config, store, goal, world.steps, row, it)
            row["seconds"] = round(time.perf_counter() - t0, 2)
            used = [(s["skill"], s["success"]) for s in steps if s["library"]]
            try:
                store.log_iteration(config.run, it, row, new_skill, used=used)
            except LibraryError as e:
                raise LibraryError(f"iteration {it} could not be saved ({e}); rerunning resumes after iteration "
                                   f"{it - 1}") from None
            if new_skill is not None:
                store.log_verification(new_skill[0].name, row["verify"])
            history.append({"iteration": it, **row})
            world.rows.append(history[-1])
            if on_iteration:
                on_iteration(history[-1])
    finally:
        world.env.close()
    return history


def _learn(config: CrafterLearnConfig, store: SkillStore, goal: str, steps: list[Step], row: dict[str, Any],
           it: int) -> tuple[SkillRecord, np.ndarray, str] | None:
    """Abstract the world's successful steps towards ``goal`` into a program and verify it on fresh worlds;
    the record to store, or None (with the reason in ``row``)."""
    if goal in store.names():
        row["skill_status"] = "already in the library"
        return None
    draft = abstract_crafter(goal, steps)
    if draft is None:
        row["skill_status"] = "nothing to abstract"
        return None
    if (known := store.find_code(draft.code)) is not None:
        row["skill"], row["skill_status"] = known, "already in the library"
        return None
    record = SkillRecord(name=draft.name, description=draft.description, params=[], code=draft.code,
                         postcondition=[["achievement", goal]],
                         provenance={"world": WORLD, "goal": goal, "instruction": GOALS.get(goal, goal),
                                     "episode": f"{config.run}/{it}", "seed": config.world_seed(row["life"]),
                                     "abstracted_from": draft.steps, "model": "smollm2"})
    check = verify_crafter(record, store, fresh_worlds(record, config.verify_seeds), config.verify_steps)
    record.attempts, record.successes, record.last_verified = check.attempts, check.successes, now()
    record.provenance["verified"] = f"{check.successes}/{check.attempts}"
    row["verify"] = {"seeds": check.seeds, "successes": check.successes, "failures": check.failures,
                     "game_steps": check.game_steps}
    if check.rate < config.min_verify_rate:
        row["skill_status"] = f"rejected: {check.successes}/{check.attempts} verification worlds"
        return None
    embed = default_embedder()
    row["skill"], row["skill_status"] = record.name, "added"
    return record, embed([record.embed_text()])[0], embed.name


def milestones(history: Sequence[dict[str, Any]]) -> dict[str, dict[str, int] | None]:
    """Per milestone: the first iteration (1-based: how many iterations it took) that had it unlocked, with
    the model calls and game steps spent until then; None when never reached."""
    out: dict[str, dict[str, int] | None] = {m: None for m in MILESTONES}
    calls = steps = 0
    last_steps: dict[int, int] = {}
    for row in history:
        calls += row["llm_calls"]
        steps += row["game_steps"] - last_steps.get(row["life"], 0)
        last_steps[row["life"]] = row["game_steps"]
        for m in MILESTONES:
            if out[m] is None and m in row["unlocked"]:
                out[m] = {"iterations": row["iteration"] + 1, "llm_calls": calls, "game_steps": steps}
    return out


# ---------------------------------------------------------------------- the Crafter score
def crafter_score(success_rates_percent: Sequence[float]) -> float:
    """The Crafter paper's score: exp(mean_i ln(1 + s_i)) - 1 over the 22 achievements' success rates
    s_i in percent (a geometric mean that rewards unlocking many achievements)."""
    rates = np.asarray(success_rates_percent, np.float64)
    if len(rates) != len(ACHIEVEMENTS):
        raise EmbodiedError(f"the score needs {len(ACHIEVEMENTS)} success rates, got {len(rates)}")
    return float(math.exp(np.mean(np.log1p(rates))) - 1.0)


def success_rates(episodes: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per achievement: the percentage of episodes that unlocked it at least once."""
    n = max(len(episodes), 1)
    return {a: 100.0 * sum(a in e["unlocked"] for e in episodes) / n for a in ACHIEVEMENTS}


STUCK_WAIT = 10  # game steps let pass when a whole task moved nothing (walled in by water or creatures)


def play_long_episode(planner: CrafterPlanner, seed: int, length: int, skills_per_task: int = 8,
                      give_up_after: int = 3, max_choices: int | None = None) -> dict[str, Any]:
    """One episode of ``length`` game steps (or until death): the curriculum keeps proposing the next
    achievement not yet unlocked (and drinking, eating, sleeping when a vital is low), the planner attempts
    each; the row has every achievement unlocked. A player that cannot move the game on waits
    (`STUCK_WAIT` steps), and the episode ends after ``max_choices`` planner choices (default: ``length``
    / 5), so a stuck player cannot spend a model call per game step; ``stopped`` says when that happened."""
    max_choices = max_choices if max_choices is not None else max(1, length // 5)
    CRAFTER_SCORE.check(seed, what="score seed")
    t0 = time.perf_counter()
    env = CrafterEnv(length=length)
    env.reset(seed=seed)
    body = CrafterBody(env)
    rows: list[dict[str, Any]] = []
    calls0 = planner.llm_calls
    stopped = None
    try:
        while not body.done and env.steps < length:
            if sum(r["skill_calls"] for r in rows) >= max_choices:
                stopped = f"{max_choices} planner choices"
                break
            unlocked = {a for a, n in body.achievements.items() if n > 0}
            goal = propose(rows, unlocked, body.inventory, give_up_after)
            before, steps_before = body.achievements.get(goal, 0), env.steps
            steps = attempt(body, planner, goal, skills_per_task)
            rows.append({"goal": goal, "solved": body.achievements.get(goal, 0) > before,
                         "used": [s["skill"] for s in steps if s["library"]], "skill_calls": len(steps)})
            if env.steps == steps_before and not steps:
                break  # nothing could be tried at all
            if env.steps == steps_before:  # every choice failed at once: the game must still move on
                body.explore()
            for _ in range(STUCK_WAIT if env.steps == steps_before else 0):  # walled in: let time pass
                body.act("noop")
    finally:
        env.close()
    return {"seed": seed, "game_steps": env.steps, "dead": env.player.health <= 0,
            "unlocked": sorted(a for a, n in body.achievements.items() if n > 0),
            "llm_calls": planner.llm_calls - calls0, "tasks": len(rows),
            "library_uses": sum(len(r["used"]) for r in rows), "stopped": stopped,
            "seconds": round(time.perf_counter() - t0, 1)}


def random_episode(seed: int, length: int) -> dict[str, Any]:
    """The same world and length with uniformly random actions (the sanity baseline), seeded by ``seed``."""
    CRAFTER_SCORE.check(seed, what="score seed")
    rng = np.random.default_rng(seed)
    env = CrafterEnv(length=length)
    env.reset(seed=seed)
    steps = 0
    try:
        while steps < length:
            _, _, terminated, truncated, _ = env.step(int(rng.integers(len(ACTIONS))))
            steps += 1
            if terminated or truncated:
                break
    finally:
        env.close()
    return {"seed": seed, "game_steps": steps, "dead": env.player.health <= 0,
            "unlocked": sorted(a for a, n in env.player.achievements.items() if n > 0)}

