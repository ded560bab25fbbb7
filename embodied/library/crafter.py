"""The skill library in the Crafter world: the same store, executor and embedder as the tabletop, with this
world's program API and abstraction.

A Crafter skill is the source of one function ``def make_stone_pickaxe(api):`` over `CrafterAPI`: a method per
Crafter skill (``api.collect_wood()``, ``api.place_table()``, ... each True when the game's achievement
counter grew), queries (``api.count("wood")``, ``api.seen("table")``, ``api.achieved("place_table")``) and
``api.use(name)``, which runs another library skill. Programs are abstracted from the successful steps of an
episode (`abstract_crafter`), each step guarded by whether it is still needed, collects written as "until the
inventory holds k". Every record carries ``provenance["world"] == "crafter"``: tabletop retrieval never offers
one, and `CrafterLibrary` offers nothing else."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embodied.library.executor import Budget, SkillAbort, check_source, run_skill
from embodied.library.retrieval import usable
from embodied.library.store import LibraryError, SkillRecord, SkillStore
from envs.crafter import ACHIEVEMENTS, CrafterBody
from skills.crafter import BY_NAME, GOALS, SKILLS, CrafterState, toward

log = logging.getLogger(__name__)

WORLD = "crafter"
QUERIES = ("count", "seen", "achieved", "use")
API_METHODS: tuple[str, ...] = tuple(s.name for s in SKILLS) + QUERIES
SKILL_OF = {"collect_drink": "drink_water", "wake_up": "sleep"}  # achievement -> the skill that earns it
ITEM_OF = {"collect_drink": "drink"}
SURVIVAL_SKILLS = ("drink_water", "eat_cow", "sleep")  # the API's upkeep does these; programs leave them out
PROGRAM_BUDGET = Budget(max_lines=200_000, max_seconds=600.0)
MAX_DEPTH = 3  # library skills using library skills


def known_state(body: CrafterBody) -> CrafterState:
    """What the agent knows: inventory, achievements, every kind of thing it has seen (creatures: in view)."""
    seen = {m for m, _ in body.seen.values()} | {k for _, k in body.seen.values() if k == "plant"}
    seen |= {thing for _, thing in body.env.visible()}
    return CrafterState(body.inventory, frozenset(t for t in seen if t), body.achievements)


def skill_for(achievement: str) -> str:
    """The Crafter skill that earns ``achievement`` (they share names but for drink and wake-up)."""
    return SKILL_OF.get(achievement, achievement)


def _unseen(reason: str) -> bool:
    return "seen" in reason or "in view" in reason or "no way" in reason or "did not reach" in reason


@contextlib.contextmanager
def _untraced() -> Iterator[None]:
    """The game's own code runs without the executor's line tracer (4x faster); the budget is still checked
    around every API call, and the skill's own lines are traced as before."""
    previous = sys.gettrace()
    sys.settrace(None)
    try:
        yield
    finally:
        sys.settrace(previous)


class CrafterAPI:
    """What skill code acts through: each Crafter skill as a method (exploring first when what it needs has
    not been seen), inventory and map queries, and `use` for another library skill. Before every skill it
    keeps the player alive (drinks, eats, sleeps when a vital is low: a reflex like the body's zombie
    defence). A run that passes ``max_game_steps`` is stopped (`SkillAbort`)."""

    def __init__(self, body: CrafterBody, store: SkillStore | None = None, max_game_steps: int = 2_000,
                 explore_tries: int = 8, depth: int = 0, stack: tuple[str, ...] = ()) -> None:
        self.body, self.store, self.explore_tries = body, store, explore_tries
        self.stop_at = body.env.steps + max_game_steps
        self.depth, self.stack = depth, stack
        self.calls: list[tuple[str, bool]] = []  # every skill the code ran, with its outcome
        for skill in SKILLS:
            setattr(self, skill.name, self._method(skill.name))

    def _method(self, name: str) -> Any:
        def call() -> bool:
            with _untraced():
                return self.skill(name)

        call.__name__ = name
        call.__doc__ = f"Run the Crafter skill {name!r}; True when its achievement counter grew."
        return call

    # ------------------------------------------------------------------ queries
    def count(self, item: str) -> int:
        """How many of ``item`` the inventory holds (vitals too: health, food, drink, energy)."""
        return int(self.body.inventory.get(str(item), 0))

    def seen(self, thing: str) -> bool:
        """Whether a ``thing`` (tree, table, stone, iron, ...) has been seen (creatures: in view now)."""
        return str(thing) in known_state(self.body).seen

    def achieved(self, name: str) -> bool:
        """Whether the achievement ``name`` has been unlocked in this game."""
        return self.body.achievements.get(str(name), 0) > 0

    # ------------------------------------------------------------------ acting
    def _check_budget(self) -> None:
        if self.body.done:
            raise SkillAbort("the game is over (the player died or time ran out)")
        if self.body.env.steps >= self.stop_at:
            raise SkillAbort(f"game-step budget reached ({self.stop_at} steps)")

    def upkeep(self) -> None:
        """Drink, eat or sleep when a vital is low and the means are at hand."""
        inv = self.body.inventory
        state = known_state(self.body)
        for vital, skill in (("drink", "drink_water"), ("food", "eat_cow"), ("energy", "sleep")):
            low = 1 if vital == "energy" else 3
            if inv.get(vital, 9) <= low and BY_NAME[skill].requires(state) is None and not self.body.done:
                BY_NAME[skill].run(self.body)

    def skill(self, name: str) -> bool:
        """Run the Crafter skill ``name`` (exploring up to ``explore_tries`` times while what it needs is
        unseen or out of reach); True when its achievement counter grew."""
        self._check_budget()
        self.upkeep()
        skill = BY_NAME[name]
        for _ in range(self.explore_tries + 1):
            self._check_budget()
            why = skill.requires(known_state(self.body))
            if why is None:
                before = self.body.achievements
                why = skill.run(self.body)
                if skill.achievement is None:
                    ok = why is None
                else:
                    ok = self.body.achievements.get(skill.achievement, 0) > before.get(skill.achievement, 0)
                if ok:
                    self.calls.append((name, True))
                    return True
                why = why or "nothing changed"
            if not _unseen(why):
                break
            steps = self.body.env.steps
            if self.body.explore() is not None and self.body.env.steps == steps:
                break
        self.calls.append((name, False))
        return False

    def use(self, name: str) -> bool:
        """Run the library skill ``name``; True when its achievement counter grew (read from the game)."""
        self._check_budget()
        name = str(name)
        if self.store is None or name in self.stack or self.depth >= MAX_DEPTH:
            return False
        try:
            record = self.store.get(name)
        except LibraryError:  # an unknown skill is a failed call, as a failed primitive
            return False
        if record.provenance.get("world") != WORLD:
            return False
        before = self.body.achievements.get(name, 0)
        inner = CrafterAPI(self.body, self.store, explore_tries=self.explore_tries, depth=self.depth + 1,
                           stack=(*self.stack, name))
        inner.stop_at = self.stop_at
        with _untraced():
            run_skill(record.code, inner, {}, API_METHODS, PROGRAM_BUDGET)
        self.calls.extend(inner.calls)
        ok = self.body.achievements.get(name, 0) > before
        self.calls.append((f"use:{name}", ok))
        return ok


def run_program(record: SkillRecord, body: CrafterBody, store: SkillStore | None = None,
                max_game_steps: int = 2_000) -> tuple[bool, str, list[tuple[str, bool]]]:
    """Run a Crafter skill's code on ``body``; (achievement grew, the executor's reason, skills it ran). Success
    is read from the game's counter for the skill's achievement, never from what the code returns."""
    before = body.achievements.get(record.name, 0)
    api = CrafterAPI(body, store, max_game_steps=max_game_steps, stack=(record.name,))
    result = run_skill(record.code, api, {}, API_METHODS, PROGRAM_BUDGET)
    ok = body.achievements.get(record.name, 0) > before
    reason = "" if ok else (result.reason or f"ran, but {record.name} was not unlocked")
    return ok, reason, api.calls


# ---------------------------------------------------------------------- abstraction
@dataclass(frozen=True)
class Step:
    """One skill call of an episode as abstraction reads it: the skill (or library skill), whether it
    worked, what the agent knew before it and the inventory after."""

    skill: str
    ok: bool
    library: bool
    inventory_before: dict[str, int]
    seen_before: frozenset[str]
    inventory_after: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"skill": self.skill, "ok": self.ok, "library": self.library,
                "inv0": {k: v for k, v in self.inventory_before.items() if v},
                "seen0": sorted(self.seen_before), "inv1": {k: v for k, v in self.inventory_after.items() if v}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        zero = {k: 0 for k in ("health", "food", "drink", "energy")}
        return cls(d["skill"], bool(d["ok"]), bool(d["library"]), {**zero, **d["inv0"]}, frozenset(d["seen0"]),
                   {**zero, **d["inv1"]})


@dataclass(frozen=True)
class CrafterDraft:
    """A program abstracted from an episode, before verification."""

    name: str
    description: str
    code: str
    steps: int


def _goal_words(achievement: str) -> str:
    return GOALS.get(achievement, achievement.replace("_", " "))


def _statement(skill: str, library: bool, k: int) -> tuple[str, str]:
    """(guard, words) for one abstracted step: a collect runs until the inventory holds ``k``; a placement
    only when no such thing has been seen; a make only when the item is not held."""
    call = f'api.use("{skill}")' if library else f"api.{skill}()"
    if skill.startswith("collect_"):
        item = skill[len("collect_"):]
        return (f'    while api.count("{item}") < {k}:\n        if not {call}:\n            return False',
                f"collect {item} to {k}")
    if skill in ("place_table", "place_furnace"):
        thing = skill[len("place_"):]
        return (f'    if not api.seen("{thing}"):\n        if not {call}:\n            return False', f"place a {thing}")
    if skill.startswith("make_"):
        item = skill[len("make_"):]
        return (f'    if api.count("{item}") < 1:\n        if not {call}:\n            return False',
                f"make a {item.replace('_', ' ')}")
    achievement = BY_NAME[skill].achievement if skill in BY_NAME else skill
    return (f'    if not api.achieved("{achievement}"):\n        if not {call}:\n            return False',
            _goal_words(achievement or skill))


def abstract_crafter(goal: str, steps: Sequence[Step]) -> CrafterDraft | None:
    """The program for achievement ``goal`` from an episode's steps: the successful ones on the goal's recipe
    path (the recipe tables' `toward` from nothing: a sword on the way to a pickaxe is dropped), in order,
    consecutive repeats merged, each guarded by whether it is still needed, collects "until the inventory
    holds k" (k as the episode had it); exploring and eating/drinking/sleeping are left to the API. None when
    nothing is left (or the goal is not a skill this world has)."""
    if goal not in ACHIEVEMENTS or skill_for(goal) not in BY_NAME:
        return None
    relevant = toward(goal, CrafterState({}, frozenset()), low=-1)  # the goal's whole recipe closure
    kept: list[tuple[str, bool, int]] = []  # (skill, library, inventory count after, for collects)
    for s in steps:
        if not s.ok or s.skill == "explore" or (s.skill in SURVIVAL_SKILLS and skill_for(goal) != s.skill):
            continue
        if skill_for(s.skill) not in relevant:
            continue
        item = s.skill[len("collect_"):] if s.skill.startswith("collect_") else ""
        k = min(int(s.inventory_after.get(ITEM_OF.get(s.skill, item), 0)), 9)
        if kept and kept[-1][0] == s.skill and kept[-1][1] == s.library:
            kept[-1] = (s.skill, s.library, max(k, kept[-1][2]))
        else:
            kept.append((s.skill, s.library, k))
    if not kept or kept[-1][0] not in (goal, skill_for(goal)):
        return None
    lines, words = [], []
    for n, (skill, library, k) in enumerate(kept):
        code, said = _statement(skill, library, k)
        if skill in (goal, skill_for(goal)) and not library and not skill.startswith("collect_"):
            code, said = f"    api.{skill}()", said  # the goal itself: always attempted
        elif n == len(kept) - 1 and skill == goal and skill.startswith("collect_"):
            # a collect goal collects once more, whatever the inventory holds: a guard alone would make its reuse
            # a no-op (nothing collected, the counter unchanged) once the inventory holds k
            code, said = _statement(skill, library, k - 1) if k > 1 else ("", "")
            code += ("\n" if code else "") + f"    if not api.{skill}():\n        return False"
            said = (f"{said}, then " if said else "") + f"collect one more {skill[len('collect_'):]}"
        lines.append(code)
        words.append(said + (" (learned skill)" if library else ""))
    description = f"{_goal_words(goal)}: " + ", ".join(words)
    doc = description if len(description) < 300 else description[:297] + "..."
    code = f'def {goal}(api):\n    """{doc}"""\n' + "\n".join(lines) + f'\n    return api.achieved("{goal}")\n'
    check_source(code, API_METHODS)  # what the executor will accept, or a SkillCodeError now
    return CrafterDraft(goal, description, code, len(kept))


# ---------------------------------------------------------------------- retrieval
def is_crafter(record: SkillRecord) -> bool:
    """A skill of this world (its provenance says so)."""
    return record.provenance.get("world") == WORLD


def goal_satisfied(name: str, state: CrafterState) -> bool:
    """Whether what the skill ``name`` makes is already at hand (a tool held, a station seen)."""
    if name.startswith("make_"):
        return state.inventory.get(name[len("make_"):], 0) > 0
    if name in ("place_table", "place_furnace"):
        return name[len("place_"):] in state.seen
    return False


@dataclass(frozen=True)
class CrafterProgram:
    """A library skill as a planner option, with the interface of a `CrafterSkill` (name, text, achievement,
    requires, affordance, run) so episodes run it like a primitive: one choice, a whole program."""

    record: SkillRecord
    store: SkillStore
    similarity: float

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def achievement(self) -> str:
        return self.record.name

    @property
    def text(self) -> str:
        return BY_NAME[skill_for(self.record.name)].text if skill_for(self.record.name) in BY_NAME else \
            _goal_words(self.record.name)

    library = True

    def requires(self, state: CrafterState) -> str | None:
        return "already at hand" if goal_satisfied(self.record.name, state) else None

    def affordance(self, state: CrafterState) -> float:
        return 0.0 if self.requires(state) else 1.0

    def run(self, body: CrafterBody) -> str | None:
        ok, reason, _ = run_program(self.record, body, self.store)
        return None if ok else reason


class CrafterLibrary:
    """The Crafter planner's view of a skill store: Crafter skills only, retrieved by embedding."""

    def __init__(self, store: SkillStore, top_k: int = 3) -> None:
        from embodied.library.embed import default_embedder

        self.store, self.top_k, self.embed = store, top_k, default_embedder()

    def retrieve(self, goal_text: str) -> list[CrafterProgram]:
        """The top-k usable Crafter skills for a goal, closest first."""
        names, _ = self.store.index()
        hits = self.store.search(self.embed([goal_text])[0], k=max(len(names), 1))
        found = [CrafterProgram(r, self.store, s) for r, s in hits if is_crafter(r) and usable(r)]
        return found[: self.top_k]

    def embedding(self, record: SkillRecord) -> np.ndarray:
        return self.embed([record.embed_text()])[0]
