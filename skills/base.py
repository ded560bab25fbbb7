"""The skill seam: a named, described, typed action that declares, in its own file, everything other
layers need from it: its execution (``execute``), affordance, symbolic effect (``effect``: ideal execution,
read by the oracle, dry runs and planning-success judgements), the calls a scene allows (``candidates``,
and ``goal_candidates`` for calls only a goal's arguments make sensible), the option text a language model
reads (``text``), whether skill code may call it (``in_api``) and how the library sees it (``move``,
``combine``). Skills are listed once, in ``skills.registry.SKILLS``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from embodied.world.errors import SkillError
from embodied.world.scene import LOCATION_NAMES, SceneState
from embodied.world.symbolic import SymbolicState
from skills.robot import Robot

State = SceneState | SymbolicState  # candidates need only names and the held block, which both carry


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


def targets(state: State) -> list[str]:
    """Everything a block can be put on, in, or at, in option order: blocks, bowls, named locations."""
    return list(state.blocks) + list(state.bowls) + list(LOCATION_NAMES)


class Skill:
    """Base class. Subclasses set ``name``, ``description`` (one line, written for a language model),
    ``Params`` (a dataclass of string arguments) and implement ``affordance``, ``effect`` and ``execute``;
    the other hooks have defaults that offer nothing."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type]
    in_api: ClassVar[bool] = False  # skill code may call it as ``api.<name>(<params in order>)``

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

    def why_not(self, state: SceneState, params: Any) -> str | None:
        """Why the pre-check refuses this call from ``state`` (``None``: it would try): the blocking reason an
        episode ends with when nothing feasible remains."""
        return None if self.affordance(state, params) > 0.0 else "its pre-check fails"

    def effect(self, state: SymbolicState, params: Any) -> tuple[SymbolicState, str | None]:
        """Ideal execution on the symbolic state: the new state and ``None``, or an unchanged copy and the
        reason it fails. Never mutates ``state``."""
        return state.copy(), f"skill {self.name!r} has no symbolic effect"

    def candidates(self, state: State) -> list[Any]:
        """Parameters of every call of this skill that a planner should consider from ``state``."""
        return []

    def goal_candidates(self, state: State, goal: Sequence[Sequence]) -> list[Any]:
        """Further calls that only make sense for ``goal`` (say, points it names); offered next to
        ``candidates`` when a goal is known."""
        return []

    def move(self, params: Any) -> tuple[str, str] | None:
        """``(block, target)`` when this call carries a block onto/into/at a named object or location and its
        API method takes exactly those two arguments: the library abstracts plans of such moves into code."""
        return None

    def combine(self, first: Any, second: Any) -> Any | None:
        """Params of one call of this skill that does what the SkillCalls ``first`` then ``second`` do, or
        ``None``: the library merges recorded steps this way before abstracting them."""
        return None

    def execute(self, robot: Robot, params: Any) -> SkillResult:
        raise NotImplementedError
