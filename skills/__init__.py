"""Skills: the Robot API they act through, the primitives, and the registry that lists them
(``skills.registry.SKILLS``, loaded here)."""

from skills.base import Skill, SkillCall, SkillResult
from skills.registry import (
    apply,
    call_text,
    candidate_calls,
    get_skill,
    load,
    register,
    registered,
    skill_names,
)
from skills.robot import Robot

load()

__all__ = ["Robot", "Skill", "SkillCall", "SkillResult", "apply", "call_text", "candidate_calls", "get_skill",
           "register", "registered", "skill_names"]
