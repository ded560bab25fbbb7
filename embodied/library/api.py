"""The surface learned skill code acts through: the skills the registry exposes to it (``Skill.in_api``,
called as ``api.<name>(<params in order>)``) and read-only queries on the scene, all plain strings and
lists. `LiveAPI` drives the Robot API with real physics; `DryRunAPI` applies the same calls to the
symbolic abstraction (each skill's ``effect``), to preview a skill's plan before running it."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from embodied.library.executor import SkillAbort
from embodied.world import spatial
from embodied.world.errors import EmbodiedError
from embodied.world.scene import LOCATION_NAMES, SceneState
from embodied.world.symbolic import SymbolicState, abstract
from skills import SkillCall, SkillResult, apply, get_skill
from skills.registry import api_skill_names
from skills.robot import Robot

log = logging.getLogger(__name__)

PRIMITIVES: tuple[str, ...] = api_skill_names()  # the registry's skills that skill code may call
QUERIES = ("blocks", "bowls", "locations", "held", "on", "base", "is_clear", "contents",
           "position", "distance", "corners", "free_point", "arrangement")
if set(PRIMITIVES) & set(QUERIES):
    raise EmbodiedError(f"skills {sorted(set(PRIMITIVES) & set(QUERIES))} clash with the API's queries: "
                        "rename them")
API_METHODS: tuple[str, ...] = PRIMITIVES + QUERIES


@dataclass
class SubStep:
    """One primitive call a skill made, with its outcome."""

    call: SkillCall
    result: SkillResult


class _Queries:
    """The skill API surface: read-only questions answered from the support relation, and the primitives,
    which each backend carries out in `_call`."""

    def _sym(self) -> SymbolicState:
        raise NotImplementedError

    def blocks(self) -> list[str]:
        """Every block's name."""
        return list(self._sym().support)

    def bowls(self) -> list[str]:
        """Every bowl's name."""
        return list(self._sym().bowls)

    def locations(self) -> list[str]:
        """The named places on the table."""
        return list(LOCATION_NAMES)

    def held(self) -> str | None:
        """The block in the hand, or None."""
        return self._sym().held

    def on(self, block: str) -> str:
        """What ``block`` rests on directly: a block, bowl, location, "table", "hand" or "unknown"."""
        return self._sym().support.get(block, "unknown")

    def base(self, block: str) -> str:
        """The first non-block under ``block`` (its bowl or location when it is in or at one)."""
        sym = self._sym()
        return sym.base(block) if block in sym.support else "unknown"

    def is_clear(self, block: str) -> bool:
        """True when nothing rests on ``block``."""
        return self._sym().is_clear(block)

    def contents(self, bowl: str) -> list[str]:
        """Blocks in ``bowl`` (on its floor or stacked inside)."""
        sym = self._sym()
        return [b for b in sym.support if sym.base(b) == bowl]

    # geometry (table points are [x, y] in metres: +x the far side, "top"; +y the robot's left)
    def position(self, name: str) -> list[float] | None:
        """Where a block, bowl, named location or side ("left side") is, [x, y]; None when unknown or held."""
        p = spatial.position(self._sym(), name)
        return None if p is None else [round(p[0], 3), round(p[1], 3)]

    def distance(self, a: str, b: str) -> float | None:
        """Metres between two objects' or places' positions (None when either has none)."""
        p, q = self.position(a), self.position(b)
        return None if p is None or q is None else round(math.dist(p, q), 3)

    def corners(self) -> list[str]:
        """The four corner locations."""
        return [n for n in LOCATION_NAMES if n.endswith("corner")]

    def free_point(self, x: float, y: float) -> list[float] | None:
        """The point nearest (x, y) where a block can be set down (clear of bowls and blocks); None if none."""
        p = spatial.free_point(self._sym(), (float(x), float(y)))
        return None if p is None else [round(p[0], 3), round(p[1], 3)]

    def arrangement(self, shape: str, n: int, x: float, y: float, orientation: str = "any") -> list | None:
        """``n`` free points forming a "line" (orientation "horizontal", "vertical", "diagonal" or "any"),
        "triangle" (n = 3) or "square" (n = 4), centred as near (x, y) as the table allows; None if none fit."""
        if shape not in ("line", "triangle", "square") or not isinstance(n, int) or not 2 <= n <= 6:
            raise SkillAbort(f"arrangement: shape is line, triangle or square and n 2-6, got {shape!r}, {n!r}")
        pts = spatial.arrangement_points(shape, n, self._sym(), (float(x), float(y)), orientation)
        return None if pts is None else [[x_, y_] for x_, y_ in pts]

    # the primitives: each backend carries them out in ``_call``
    def _call(self, name: str, **args: str) -> None:
        raise NotImplementedError

    def __getattr__(self, name: str) -> Callable[..., None]:
        """``api.<skill>(...)`` for every skill in ``PRIMITIVES``: arguments in the order of the skill's
        parameters (or by name), carried out by ``_call``."""
        if name not in PRIMITIVES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        skill = get_skill(name)
        fields = [f.name for f in dataclasses.fields(skill.Params)]

        def primitive(*args: object, **kwargs: object) -> None:
            if len(args) > len(fields) or any(f in kwargs for f in fields[:len(args)]):
                raise SkillAbort(f"{name} takes ({', '.join(fields)}); got {len(args)} positional arguments "
                                 f"and {sorted(kwargs) or 'no'} keywords")
            given = {**dict(zip(fields, args, strict=False)), **kwargs}
            self._call(name, **{k: _text(v) for k, v in given.items()})

        primitive.__name__ = name
        primitive.__doc__ = skill.description
        return primitive


def _text(value: object) -> str:
    """A primitive's argument as the skill-call text it takes: a point [x, y] becomes "x,y"."""
    if isinstance(value, list | tuple) and len(value) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return f"{float(value[0]):.3f},{float(value[1]):.3f}"
    if value is None:
        raise SkillAbort("a primitive was given None (a query found nothing: no free point, no such object)")
    return str(value)


class LiveAPI(_Queries):
    """Primitives run on the robot; a failed primitive stops the skill (SkillAbort) with its reason."""

    def __init__(self, robot: Robot, on_step: Callable[[SubStep], None] | None = None) -> None:
        self._robot = robot
        self._on_step = on_step
        self.steps: list[SubStep] = []

    def _sym(self) -> SymbolicState:
        return abstract(self._robot.observe())

    def _call(self, name: str, **args: str) -> None:
        call = SkillCall(name, {k: str(v) for k, v in args.items()})
        skill = get_skill(name)
        try:
            params = skill.params(call.args)
        except Exception as e:  # noqa: BLE001 - a bad argument is the skill's failure, not ours
            raise SkillAbort(f"{name}: {e}") from None
        result = skill.execute(self._robot, params)
        step = SubStep(call, result)
        self.steps.append(step)
        if self._on_step is not None:
            self._on_step(step)
        if not result.success:
            raise SkillAbort(f"{name}({', '.join(call.args.values())}) failed: {result.reason}")

class DryRunAPI(_Queries):
    """The same calls on the symbolic state with ideal skills: the plan a skill would make from here.
    The first primitive is also checked against the skill's affordance on the physical state."""

    def __init__(self, state: SceneState, sym: SymbolicState | None = None) -> None:
        self._scene = state
        self._state = sym if sym is not None else abstract(state)
        self.calls: list[SkillCall] = []

    def _sym(self) -> SymbolicState:
        return self._state

    def _call(self, name: str, **args: str) -> None:
        call = SkillCall(name, {k: str(v) for k, v in args.items()})
        if not self.calls:
            skill = get_skill(name)
            try:
                ok = skill.affordance(self._scene, skill.params(call.args)) > 0
            except Exception as e:  # noqa: BLE001
                raise SkillAbort(f"{name}: {e}") from None
            if not ok:
                raise SkillAbort(f"{name}({', '.join(call.args.values())}) is not possible from here")
        self._state, why = apply(self._state, call)
        if why is not None:
            raise SkillAbort(f"{name}({', '.join(call.args.values())}) would fail: {why}")
        self.calls.append(call)

    @property
    def final_state(self) -> SymbolicState:
        return self._state
