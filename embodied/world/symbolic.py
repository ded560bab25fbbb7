"""The symbolic abstraction of a scene: what rests on what. Goal checks, the oracle and planning-success
judgements all read this one structure, so physics and symbols share a single meaning of `in`, `on`, ...

Each block's *support* is one of: another block's name, a bowl's name, a location's name, ``"table"``
(somewhere else on the table), ``"hand"`` (held) or ``"unknown"`` (tipped over, falling, off the table).
Bowls and the blocks resting directly on the table (``"table"`` or a location) also carry their table
position ``xy`` (metres), which the point form of ``at`` reads; skills' effects keep it up to date.

Tolerances used by :func:`abstract` (physical state -> support), in metres:
  * on a block: horizontal offset < 0.6 x block size, height difference 0.75-1.3 x block size;
  * in a bowl: horizontal distance to the bowl centre < inner radius, bottom below rim + 2 cm;
  * at a location: horizontal distance to the named point < 0.06, resting on the table;
  * at a point (``[x, y]`` or ``"<location>+dx,dy"``): resting directly on the table, centre < 0.06 from it;
  * on the table: centre < 1 cm above the resting height; anything else is ``"unknown"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from embodied.world.scene import (
    BLOCK_SIZE,
    BOWL_HEIGHT,
    BOWL_INNER_RADIUS,
    BOWL_OUTER_RADIUS,
    LOCATION_NAMES,
    LOCATIONS,
    TABLE_Z,
    WORKSPACE_X,
    WORKSPACE_Y,
    SceneState,
    in_reach,
    suggest,
)

Point = tuple[float, float]  # a table position (x, y) in metres, world frame

ON_XY_TOL = 0.6 * BLOCK_SIZE
ON_DZ = (0.75 * BLOCK_SIZE, 1.3 * BLOCK_SIZE)
AT_XY_TOL = 0.06
REST_Z_TOL = 0.01
BOWL_CAPACITY = 6  # blocks one bowl takes: four on its floor, the rest on top of those
POINT_CLEARANCE = AT_XY_TOL  # a point is free when no other block's centre is nearer (no overlap at any yaw)
BOWL_CLEARANCE = BOWL_OUTER_RADIUS + 0.03  # ... and no bowl's centre is nearer than this (clear of its rim)


@dataclass
class SymbolicState:
    """Support relation of every block, the held block, and which objects exist."""

    support: dict[str, str]
    bowls: tuple[str, ...] = ()
    held: str | None = None
    extra: dict = field(default_factory=dict)
    xy: dict[str, Point] = field(default_factory=dict)  # bowls' and table-resting blocks' positions

    @property
    def blocks(self) -> list[str]:
        return list(self.support)

    def key(self, points: Sequence[Point] = ()) -> tuple:
        """Hashable identity (for search): the support relation and the held block, plus, for each of
        ``points``, which blocks rest at it (positions matter to a search only where a goal names them)."""
        base = (tuple(sorted(self.support.items())), self.held)
        if not points:
            return base
        return base + (tuple(tuple(self.blocks_at(p)) for p in points),)

    def copy(self) -> SymbolicState:
        return SymbolicState(dict(self.support), self.bowls, self.held, xy=dict(self.xy))

    def moved(self, block: str, support: str, xy: Point | None = None) -> SymbolicState:
        """A copy with ``block`` resting on ``support`` (``"hand"``: held), at table position ``xy`` when it
        rests directly on the table (a location's own point when ``xy`` is not given)."""
        s = self.copy()
        s.support[block] = support
        if support == "hand":
            s.held = block
        elif s.held == block:
            s.held = None
        if xy is None and support in LOCATIONS:
            xy = LOCATIONS[support]
        if xy is not None and support in ("table", *LOCATIONS):
            s.xy[block] = (float(xy[0]), float(xy[1]))
        else:
            s.xy.pop(block, None)
        return s

    def blocks_at(self, point: Point) -> list[str]:
        """Blocks resting directly on the table within ``AT_XY_TOL`` of ``point``, by name."""
        return sorted(b for b, s in self.support.items() if (s == "table" or s in LOCATIONS) and b in self.xy
                      and math.dist(self.xy[b], point) < AT_XY_TOL)

    def on_top_of(self, name: str) -> list[str]:
        """Blocks resting directly on ``name`` (a block, bowl or location)."""
        return [b for b, s in self.support.items() if s == name]

    def is_clear(self, block: str) -> bool:
        """True when no block rests on ``block``."""
        return not self.on_top_of(block)

    def base(self, block: str) -> str:
        """Follow supports down to the first non-block: a bowl, location, table, hand or unknown."""
        seen = set()
        cur = self.support[block]
        while cur in self.support and cur not in seen:
            seen.add(cur)
            cur = self.support[cur]
        return cur

    def chain(self, block: str) -> list[str]:
        """The blocks under ``block``, nearest first."""
        out, cur = [], self.support[block]
        while cur in self.support and cur not in out:
            out.append(cur)
            cur = self.support[cur]
        return out


def abstract(scene: SceneState) -> SymbolicState:
    """Read the support relation off a physical scene state using the tolerances above."""
    blocks = {n: scene.objects[n] for n in scene.blocks}
    bowls = {n: scene.objects[n] for n in scene.bowls}
    rest_z = TABLE_Z + BLOCK_SIZE / 2
    support: dict[str, str] = {}
    xy: dict[str, Point] = {n: (float(o.position[0]), float(o.position[1])) for n, o in bowls.items()}
    for name, obj in blocks.items():
        if scene.held == name:
            support[name] = "hand"
            continue
        p = np.asarray(obj.position)
        below = []
        for other, o in blocks.items():
            if other == name:
                continue
            q = np.asarray(o.position)
            dz = p[2] - q[2]
            if np.linalg.norm(p[:2] - q[:2]) < ON_XY_TOL and ON_DZ[0] <= dz <= ON_DZ[1]:
                below.append((abs(dz - BLOCK_SIZE), other))
        if below:
            support[name] = min(below)[1]
            continue
        bowl = next((b for b, o in bowls.items()
                     if np.linalg.norm(p[:2] - o.xy) < BOWL_INNER_RADIUS
                     and p[2] - BLOCK_SIZE / 2 < o.position[2] + BOWL_HEIGHT + 0.02), None)
        if bowl is not None:
            support[name] = bowl
            continue
        if abs(p[2] - rest_z) < REST_Z_TOL:
            support[name] = table_support(p[:2])
            xy[name] = (float(p[0]), float(p[1]))
        else:
            support[name] = "unknown"
    return SymbolicState(support=support, bowls=tuple(bowls), held=scene.held, xy=xy)


def table_support(xy: Sequence[float] | np.ndarray) -> str:
    """What a block resting directly on the table at ``xy`` rests on: the location within ``AT_XY_TOL``, else
    ``"table"``."""
    here = np.asarray(xy[:2])
    near = (n for n, loc in LOCATIONS.items() if np.linalg.norm(here - np.asarray(loc)) < AT_XY_TOL)
    return next(near, "table")


def target_kind(state: SymbolicState, target: str) -> str:
    """``"block"``, ``"bowl"`` or ``"location"`` (``"unknown"`` for anything else)."""
    if target in state.support:
        return "block"
    if target in state.bowls:
        return "bowl"
    if target in LOCATIONS:
        return "location"
    return "unknown"


def place_failure(state: SymbolicState, block: str, target: str) -> str | None:
    """Why ``block`` cannot be put on ``target`` right now (``None`` when it can)."""
    kind = target_kind(state, target)
    if kind == "unknown":
        return f"unknown target {target!r}"
    if target == block or (kind == "block" and block in state.chain(target)):
        return "target is the block itself or rests on it"
    if kind == "block" and not state.is_clear(target):
        return "target occupied"
    if kind == "block" and state.support[target] in ("hand", "unknown"):
        return "target not resting"
    if kind == "bowl" and len([b for b in state.support if state.support[b] == target]) >= BOWL_CAPACITY:
        return "target occupied"
    if kind == "location" and state.on_top_of(target):
        return "target occupied"
    return None


def pick_failure(state: SymbolicState, block: str) -> str | None:
    """Why ``block`` cannot be picked right now (``None`` when it can)."""
    if block not in state.support:
        return f"unknown block {block!r}"
    if state.held is not None:
        return "hand already holds " + state.held
    if not state.is_clear(block):
        return "block is under " + ", ".join(state.on_top_of(block))
    if state.support[block] == "unknown":
        return "block is not resting"
    return None


def point_failure(state: SymbolicState, block: str, point: Point) -> str | None:
    """Why ``block`` cannot be set down on the table at ``point`` right now (``None`` when it can): out of
    reach, or another block or a bowl too close (``POINT_CLEARANCE``, ``BOWL_CLEARANCE``)."""
    if not in_reach(point):
        return "unreachable"
    for name, xy in state.xy.items():
        if name == block:
            continue
        if name in state.bowls:
            if math.dist(xy, point) < BOWL_CLEARANCE:
                return "target occupied"
        elif state.support.get(name) not in ("hand", "unknown") and math.dist(xy, point) < POINT_CLEARANCE:
            return "target occupied"
    return None


# --------------------------------------------------------------------------- points on the table
def parse_point(value: object) -> Point:
    """A table point from ``[x, y]`` (metres, world frame: +x the far side, +y the robot's left), the same as
    text ``"x,y"``, or a named location plus an offset, ``"<location>+dx,dy"`` (e.g. ``"middle+0.05,-0.10"``);
    a ``ValueError`` says what is wrong. A bare location name is not a point (see ``is_point``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(_is_number(v) for v in value):
            raise ValueError(f"a point is [x, y] in metres, got {value!r}")
        x, y = float(value[0]), float(value[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"a point needs finite coordinates, got {value!r}")
        return x, y
    if not isinstance(value, str):
        raise ValueError(f"a point is [x, y] in metres or '<location>+dx,dy', got {value!r}")
    name, plus, offset = value.partition("+")
    if plus:
        name = name.strip()
        if name not in LOCATIONS:
            raise ValueError(f"unknown location {name!r} in point {value!r}{suggest(name, LOCATION_NAMES)}; "
                             f"locations: {', '.join(LOCATION_NAMES)}")
        dx, dy = _pair(offset, value)
        return LOCATIONS[name][0] + dx, LOCATIONS[name][1] + dy
    return _pair(value, value)


def is_point(value: object) -> bool:
    """True for the point forms of ``parse_point`` (a list, or text that is not a bare location name)."""
    return isinstance(value, (list, tuple)) or (isinstance(value, str) and value not in LOCATIONS
                                                 and any(c.isdigit() or c in "+," for c in value))


def point_text(value: object) -> str:
    """The canonical text of a point (a skill-call argument): ``"0.50,0.10"`` or ``"middle+0.05,-0.10"``."""
    if isinstance(value, str) and "+" in value:
        name, _, _ = value.partition("+")
        x, y = parse_point(value)
        lx, ly = LOCATIONS[name.strip()]
        return f"{name.strip()}+{_num(x - lx)},{_num(y - ly)}"
    x, y = parse_point(value)
    return f"{_num(x)},{_num(y)}"


def off_table(point: Point) -> bool:
    """True when ``point`` lies outside the table's workspace, where blocks are laid out and placed."""
    return not (WORKSPACE_X[0] <= point[0] <= WORKSPACE_X[1] and WORKSPACE_Y[0] <= point[1] <= WORKSPACE_Y[1])


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _pair(text: str, whole: str) -> Point:
    parts = text.strip().removeprefix("(").removesuffix(")").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"a point is 'x,y' in metres or '<location>+dx,dy', got {whole!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"a point needs finite coordinates, got {whole!r}")
    return x, y


def _num(v: float) -> str:
    """Two decimals, a third where it matters: ``0.5`` -> ``"0.50"``, ``0.125`` -> ``"0.125"``."""
    v = 0.0 if abs(v) < 5e-4 else v
    text = f"{v:.3f}"
    return text[:-1] if text.endswith("0") else text
