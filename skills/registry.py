"""The skill registry: ``SKILLS`` is the one list of skills (Gymnasium-style ``"module:Class"`` entry points,
loaded by ``import skills``); everything else (planners, the oracle, the library) reads skills from here.
Registering a name twice is an error, not a warning.

Adding a primitive takes one file in ``skills/`` and one line in ``SKILLS``.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Sequence
from typing import Any

from embodied.world.errors import SkillError
from embodied.world.scene import SceneState, suggest
from embodied.world.symbolic import SymbolicState
from skills.base import Skill, SkillCall, State

SKILLS: tuple[str, ...] = (
    "skills.pick:Pick",
    "skills.place:Place",
    "skills.pick_and_place:PickAndPlace",
    "skills.place_at:PlaceAt",
)
STOP = "done"  # the stop option: not a skill, every planner may choose it

_REGISTRY: dict[str, Skill] = {}


def register(entry_point: str | type[Skill]) -> Skill:
    """Instantiate and register a skill from ``"module:Class"`` (or the class itself) under its ``name``."""
    cls = _load(entry_point) if isinstance(entry_point, str) else entry_point
    if not (isinstance(cls, type) and issubclass(cls, Skill)):
        raise SkillError(f"{entry_point!r} is not a Skill subclass")
    if cls.name in _REGISTRY or cls.name == STOP:
        owner = type(_REGISTRY[cls.name]).__qualname__ if cls.name in _REGISTRY else "the stop option"
        raise SkillError(f"a skill named {cls.name!r} is already registered ({owner})")
    _REGISTRY[cls.name] = cls()
    return _REGISTRY[cls.name]


def _load(entry_point: str) -> type[Skill]:
    module, _, attr = entry_point.partition(":")
    if not module or not attr:
        raise SkillError(f"a skill entry point is 'module:Class', got {entry_point!r}")
    return getattr(importlib.import_module(module), attr)


def load() -> None:
    """Register every entry of ``SKILLS`` (once; ``import skills`` calls this)."""
    if not _REGISTRY:
        for entry_point in SKILLS:
            register(entry_point)


def get_skill(name: str) -> Skill:
    """The registered skill called ``name``, with a did-you-mean on a miss."""
    if name not in _REGISTRY:
        raise SkillError(f"unknown skill {name!r}{suggest(name, list(_REGISTRY))}; "
                         f"registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def skill_names() -> list[str]:
    """Every registered skill's name, sorted."""
    return sorted(_REGISTRY)


def registered() -> list[Skill]:
    """Every registered skill, in ``SKILLS`` order (the order options are offered in)."""
    return list(_REGISTRY.values())


def api_skill_names() -> tuple[str, ...]:
    """Skills that learned skill code may call as ``api.<name>(...)``, in ``SKILLS`` order."""
    return tuple(s.name for s in registered() if s.in_api)


def call_text(call: SkillCall) -> str:
    """The option text a language model reads for a skill call (``"done"`` for the stop option)."""
    if call.name == STOP:
        return STOP
    skill = get_skill(call.name)
    return skill.text(skill.params(call.args))


def _call(skill: Skill, params: Any) -> SkillCall:
    return SkillCall(skill.name, {f.name: str(getattr(params, f.name)) for f in dataclasses.fields(params)})


def candidate_calls(state: State, goal: Sequence[Sequence] = ()) -> list[SkillCall]:
    """Every call the skills offer from ``state``, skill by skill in ``SKILLS`` order; given a goal, then the
    calls only its arguments make sensible (none for goals over objects and named locations alone)."""
    calls = [_call(s, p) for s in registered() for p in s.candidates(state)]
    if goal:
        calls += [_call(s, p) for s in registered() for p in s.goal_candidates(state, goal)]
    return calls


def apply(state: SymbolicState, call: SkillCall) -> tuple[SymbolicState, str | None]:
    """Ideal execution of a call on the symbolic state: the new state and ``None``, or an unchanged copy and
    the reason it fails (``"done"`` changes nothing; an unknown skill or bad arguments are reasons)."""
    if call.name == STOP:
        return state.copy(), None
    if call.name not in _REGISTRY:
        return state.copy(), f"unknown skill {call.name!r}"
    skill = _REGISTRY[call.name]
    try:
        params = skill.params(call.args)
    except SkillError as e:
        return state.copy(), str(e)
    return skill.effect(state, params)


def combine(first: SkillCall, second: SkillCall) -> SkillCall | None:
    """The one call that does what ``first`` then ``second`` do, when a skill declares one."""
    for skill in registered():
        params = skill.combine(first, second)
        if params is not None:
            return _call(skill, params)
    return None


def move(call: SkillCall) -> tuple[str, str] | None:
    """``(block, target)`` when ``call`` is a move the library can abstract (see ``Skill.move``)."""
    if call.name not in _REGISTRY:
        return None
    skill = _REGISTRY[call.name]
    return skill.move(skill.params(call.args))


def effect_holds(call: SkillCall, before: SceneState, after: SceneState) -> bool:
    """Whether ``after`` shows what ``call`` should have changed from ``before`` (its symbolic effect): every
    block whose support the effect changes rests where the effect says, and the hand holds what it says. The
    outcome check on a fresh look, for skills that acted on a state predicted between looks."""
    from embodied.world.symbolic import AT_XY_TOL, abstract

    start = abstract(before)
    expected, why = apply(start, call)
    if why is not None:
        return False
    seen = abstract(after)
    changed = [b for b, s in expected.support.items() if start.support.get(b) != s  # moved onto something else,
               or (b in expected.xy and (b not in start.xy                    # or to another place on the table
                                         or math.dist(start.xy[b], expected.xy[b]) > AT_XY_TOL))]
    near = all(b not in expected.xy or (b in seen.xy and math.dist(seen.xy[b], expected.xy[b]) <= AT_XY_TOL)
               for b in changed)
    return seen.held == expected.held and near and all(seen.support.get(b) == expected.support[b] for b in changed)
