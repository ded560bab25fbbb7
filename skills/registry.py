"""Skill registry keyed by name; registering a name twice is an error, not a warning."""

from __future__ import annotations

from typing import TypeVar

from embodied.world.errors import SkillError
from embodied.world.scene import suggest
from skills.base import Skill, SkillCall

_REGISTRY: dict[str, Skill] = {}
S = TypeVar("S", bound=type[Skill])


def register(cls: S) -> S:
    """Class decorator: instantiate and register a skill under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise SkillError(f"a skill named {cls.name!r} is already registered "
                         f"({type(_REGISTRY[cls.name]).__qualname__})")
    _REGISTRY[cls.name] = cls()
    return cls


def get_skill(name: str) -> Skill:
    """The registered skill called ``name``, with a did-you-mean on a miss."""
    if name not in _REGISTRY:
        raise SkillError(f"unknown skill {name!r}{suggest(name, list(_REGISTRY))}; "
                         f"registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def skill_names() -> list[str]:
    return sorted(_REGISTRY)


def call_text(call: SkillCall) -> str:
    """The option text a language model reads for a skill call (``"done"`` for the stop option)."""
    if call.name == "done":
        return "done"
    skill = get_skill(call.name)
    return skill.text(skill.params(call.args))
