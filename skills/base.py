"""The skill seam: a named, described, typed action with an affordance hook, executed through the Robot API."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from embodied.world.errors import SkillError
from embodied.world.scene import SceneState
from skills.robot import Robot


@dataclass(frozen=True)
class SkillCall:
    """A skill name plus its arguments, e.g. ``SkillCall("pick_and_place", {"block": ..., "target": ...})``."""

    name: str
    args: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"skill": self.name, "args": dict(self.args)}

    def key(self) -> tuple:
        return (self.name, tuple(sorted(self.args.items())))

    def __hash__(self) -> int:
        return hash(self.key())


@dataclass
class SkillResult:
    """What happened: success, the reason on failure, and how much physics it took."""

    success: bool
    reason: str = ""
    steps: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"success": self.success, "reason": self.reason, "steps": self.steps, **self.details}


class Skill:
    """Base class. Subclasses set ``name``, ``description`` (one line, written for a language model),
    ``Params`` (a dataclass of string arguments) and implement ``affordance`` and ``execute``."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type]

    def params(self, args: dict[str, str]) -> Any:
        """Build typed parameters, naming any missing or unexpected argument."""
        names = [f.name for f in dataclasses.fields(self.Params)]
        missing = [n for n in names if n not in args]
        extra = [n for n in args if n not in names]
        if missing or extra:
            raise SkillError(f"skill {self.name!r} takes ({', '.join(names)}); "
                             f"missing {missing or 'nothing'}, unexpected {extra or 'nothing'}")
        return self.Params(**args)

    def text(self, params: Any) -> str:
        """The option as a language model reads it (override per skill)."""
        return f"{self.name}({', '.join(str(v) for v in dataclasses.astuple(params))})"

    def affordance(self, state: SceneState, params: Any) -> float:
        """Probability in [0, 1] that ``execute`` succeeds from ``state``."""
        return 1.0

    def execute(self, robot: Robot, params: Any) -> SkillResult:
        raise NotImplementedError
