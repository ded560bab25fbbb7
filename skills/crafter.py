"""The Crafter world's skills: what a planner may call there, when each can work (its requirements, read
from the game's own recipe tables and what the agent has seen), and how it runs on the world's body
(`envs.crafter.CrafterBody`, reached only through the methods skills call: ``collect``, ``move_to``,
``interact``, ``place``, ``make``, ``sleep``, ``explore``). Success is read from the inventory and the
achievements, never from the skill's own report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TOOLS = {"stone": "wood_pickaxe", "coal": "wood_pickaxe", "iron": "stone_pickaxe", "diamond": "iron_pickaxe"}


@dataclass(frozen=True)
class CrafterState:
    """What the agent knows: its inventory, the kinds of things it has seen (creatures: in view now), and the
    achievements so far."""

    inventory: dict[str, int]
    seen: frozenset[str]
    achievements: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CrafterSkill:
    """One callable step: its option ``text`` for the language model, the ``achievement`` that shows it
    worked, ``requires`` (None when it can work now, else why not) and ``run`` on the body."""

    name: str
    text: str
    achievement: str | None
    requires: Callable[[CrafterState], str | None]
    run: Callable[[Any], str | None]

    def affordance(self, state: CrafterState) -> float:
        """1 when every requirement holds, else 0 (exploring is always possible, but never sure)."""
        if self.name == "explore":
            return 0.5
        return 0.0 if self.requires(state) else 1.0


def _recipes() -> tuple[dict[str, Any], dict[str, Any]]:
    import crafter.constants as game

    return game.place, game.make


def _missing(state: CrafterState, uses: dict[str, int]) -> str | None:
    short = [f"{n - state.inventory.get(k, 0)} {k}" for k, n in uses.items() if state.inventory.get(k, 0) < n]
    return f"needs {', '.join(short)} more" if short else None


def _collect(thing: str, item: str) -> CrafterSkill:
    def requires(state: CrafterState) -> str | None:
        tool = TOOLS.get(thing)
        if tool and state.inventory.get(tool, 0) < 1:
            return f"needs a {tool.replace('_', ' ')}"
        return None if thing in state.seen else f"no {thing} seen yet"

    return CrafterSkill(f"collect_{item}", f"collect {item}", f"collect_{item}", requires,
                        lambda body: body.collect(thing, until=item))


def _place(item: str) -> CrafterSkill:
    def requires(state: CrafterState) -> str | None:
        return _missing(state, _recipes()[0][item]["uses"])

    return CrafterSkill(f"place_{item}", f"place a {item}", f"place_{item}", requires, lambda body: body.place(item))


def _make(item: str) -> CrafterSkill:
    def requires(state: CrafterState) -> str | None:
        info = _recipes()[1][item]
        unseen = [n for n in info["nearby"] if n not in state.seen]
        if unseen:
            return f"needs a {' and a '.join(unseen)} nearby"
        return _missing(state, info["uses"])

    def run(body: Any) -> str | None:
        for station in _recipes()[1][item]["nearby"]:
            why = body.move_to(station)
            if why:
                return why
        return body.make(item)

    return CrafterSkill(f"make_{item}", f"make a {item.replace('_', ' ')}", f"make_{item}", requires, run)


def _eat_cow(body: Any) -> str | None:
    before = body.achievements.get("eat_cow", 0)
    for _ in range(4):
        why = body.move_to("cow")
        if why:
            return why
        body.interact(3)
        if body.achievements.get("eat_cow", 0) > before:
            return None
    return "the cow got away"


def _sleep(body: Any) -> str | None:
    body.sleep()
    return None


SKILLS: tuple[CrafterSkill, ...] = (
    _collect("tree", "wood"), _collect("stone", "stone"), _collect("coal", "coal"), _collect("iron", "iron"),
    _collect("diamond", "diamond"),
    CrafterSkill("drink_water", "drink water", "collect_drink",
                 lambda s: None if "water" in s.seen else "no water seen yet",
                 lambda body: body.collect("water", until="drink")),
    CrafterSkill("eat_cow", "eat a cow", "eat_cow", lambda s: None if "cow" in s.seen else "no cow in view",
                 _eat_cow),
    _place("table"), _place("furnace"), _place("stone"),
    _make("wood_pickaxe"), _make("stone_pickaxe"), _make("iron_pickaxe"),
    _make("wood_sword"), _make("stone_sword"), _make("iron_sword"),
    CrafterSkill("sleep", "sleep", "wake_up",
                 lambda s: None if s.inventory.get("energy", 9) < 6 else "not tired", _sleep),
    CrafterSkill("explore", "explore", None, lambda s: None, lambda body: body.explore()),
)
BY_NAME = {s.name: s for s in SKILLS}


GOALS = {  # each achievement a skill reaches, in the words planners and skill descriptions use
    "collect_wood": "collect wood", "place_table": "place a table", "make_wood_pickaxe": "make a wood pickaxe",
    "make_wood_sword": "make a wood sword", "collect_stone": "collect stone", "collect_coal": "collect coal",
    "place_furnace": "place a furnace", "place_stone": "place stone", "make_stone_pickaxe": "make a stone pickaxe",
    "make_stone_sword": "make a stone sword", "collect_iron": "collect iron",
    "make_iron_pickaxe": "make an iron pickaxe", "make_iron_sword": "make an iron sword",
    "collect_diamond": "collect a diamond", "collect_drink": "drink water", "eat_cow": "eat a cow",
    "wake_up": "sleep and wake up"}


SOURCES = {"wood": "tree", "stone": "stone", "coal": "coal", "iron": "iron", "diamond": "diamond", "drink": "water"}
VITALS = {"drink": "drink_water", "food": "eat_cow", "energy": "sleep"}


def toward(goal: str, state: CrafterState, low: int = 3) -> set[str]:
    """The skills that bring the achievement ``goal`` closer from ``state``, by the game's recipe tables:
    the goal's own skill, and, for each requirement it lacks, the skills that would provide it (down the
    tech tree), ``explore`` when a needed thing has not been seen, and whatever restores a vital that is
    ``low``. The planner rules the rest out, as the tabletop's goal guard rules out moves that do not help."""
    place, make = _recipes()
    wanted: set[str] = set()

    def need(name: str) -> None:  # an achievement or skill name
        if name in wanted:
            return
        wanted.add(name)
        skill = BY_NAME.get(name)
        if skill is None:
            return
        if name.startswith("make_"):
            info = make[name[len("make_"):]]
            for station in info["nearby"]:
                if station not in state.seen:
                    need(f"place_{station}")
            for item, n in info["uses"].items():
                if state.inventory.get(item, 0) < n:
                    need(f"collect_{item}")
        elif name.startswith("place_"):
            for item, n in place[name[len("place_"):]]["uses"].items():
                if state.inventory.get(item, 0) < n:
                    need(f"collect_{item}")
        elif name.startswith("collect_"):
            item = name[len("collect_"):]
            tool = TOOLS.get(SOURCES.get(item, item))
            if tool and state.inventory.get(tool, 0) < 1:
                need(f"make_{tool}")
            if SOURCES.get(item, item) not in state.seen:
                wanted.add("explore")

    need(goal if goal in BY_NAME else {"collect_drink": "drink_water"}.get(goal, goal))
    wanted |= {skill for vital, skill in VITALS.items() if state.inventory.get(vital, 9) <= low}
    return wanted & set(BY_NAME)
