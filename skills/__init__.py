"""Skills: the Robot API they act through, the primitives, and the registry that names them."""

from skills import primitives  # noqa: F401  (registers the primitives)
from skills.base import Skill, SkillCall, SkillResult
from skills.registry import call_text, get_skill, register, skill_names
from skills.robot import Robot

__all__ = ["Robot", "Skill", "SkillCall", "SkillResult", "call_text", "get_skill", "register", "skill_names"]
