"""The symbolic abstraction of a scene: what rests on what. Goal checks, the oracle and planning-success
judgements all read this one structure, so physics and symbols share a single meaning of `in`, `on`, ...

Each block's *support* is one of: another block's name, a bowl's name, a location's name, ``"table"``
(somewhere else on the table), ``"hand"`` (held) or ``"unknown"`` (tipped over, falling, off the table).

Tolerances used by :func:`abstract` (physical state -> support), in metres:
  * on a block: horizontal offset < 0.6 x block size, height difference 0.75-1.3 x block size;
  * in a bowl: horizontal distance to the bowl centre < inner radius, bottom below rim + 2 cm;
  * at a location: horizontal distance to the named point < 0.06, resting on the table;
  * on the table: centre < 1 cm above the resting height; anything else is ``"unknown"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from embodied.world.scene import (
    BLOCK_SIZE,
    BOWL_HEIGHT,
    BOWL_INNER_RADIUS,
    LOCATIONS,
    TABLE_Z,
    SceneState,
)

ON_XY_TOL = 0.6 * BLOCK_SIZE
ON_DZ = (0.75 * BLOCK_SIZE, 1.3 * BLOCK_SIZE)
AT_XY_TOL = 0.06
REST_Z_TOL = 0.01
BOWL_CAPACITY = 6  # blocks one bowl takes: four on its floor, the rest on top of those


@dataclass
class SymbolicState:
    """Support relation of every block, the held block, and which objects exist."""

    support: dict[str, str]
    bowls: tuple[str, ...] = ()
    held: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def blocks(self) -> list[str]:
        return list(self.support)

    def key(self) -> tuple:
        """Hashable identity (for search)."""
        return (tuple(sorted(self.support.items())), self.held)

    def copy(self) -> SymbolicState:
        return SymbolicState(dict(self.support), self.bowls, self.held)

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
            loc = next((n for n, xy in LOCATIONS.items() if np.linalg.norm(p[:2] - np.asarray(xy)) < AT_XY_TOL),
                       None)
            support[name] = loc or "table"
        else:
            support[name] = "unknown"
    return SymbolicState(support=support, bowls=tuple(bowls), held=scene.held)


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


def apply(state: SymbolicState, skill: str, args: dict[str, str]) -> tuple[SymbolicState, str | None]:
    """Ideal execution of a skill call: the new state and the failure reason (``None`` on success)."""
    s = state.copy()
    if skill == "pick":
        why = pick_failure(s, args["block"])
        if why is None:
            s.support[args["block"]], s.held = "hand", args["block"]
        return s, why
    if skill == "place":
        if s.held is None:
            return s, "hand is empty"
        why = place_failure(s, s.held, args["target"])
        if why is None:
            s.support[s.held], s.held = args["target"], None
        return s, why
    if skill == "pick_and_place":
        s, why = apply(s, "pick", {"block": args["block"]})
        if why is not None:
            return state.copy(), why
        s2, why = apply(s, "place", {"target": args["target"]})
        return (state.copy(), why) if why is not None else (s2, None)
    if skill == "done":
        return s, None
    return s, f"unknown skill {skill!r}"
