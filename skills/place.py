"""``place(target)``: put the held block onto a block, into a bowl or at a named location."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodied.world.gripper import MIN_ROOM, RELEASE_GAP, clear_yaw, grasp_yaw
from embodied.world.scene import BLOCK_SIZE, BOWL_INNER_RADIUS, LOCATIONS, TABLE_Z, SceneState, in_reach
from embodied.world.symbolic import SymbolicState, abstract, place_failure, target_kind
from skills.base import Skill, SkillResult, State, targets
from skills.motion import PlaceCheck, hang, held_yaw, release_at
from skills.robot import Robot

BOWL_SLOTS = [(dx, dy) for dx in (-0.023, 0.023) for dy in (-0.023, 0.023)]  # a 2 x 2 floor grid


@dataclass(frozen=True)
class PlaceParams:
    target: str


def preposition(target: str) -> str:
    """How an option names a target: ``in`` a bowl, ``at`` a location, ``on`` a block."""
    if target.endswith("bowl"):
        return "in"
    if target in LOCATIONS:
        return "at"
    return "on"


def place_point(state: SceneState, block: str, target: str) -> np.ndarray | None:
    """Where the held block's centre should be released for ``target``; None when there is no room."""
    kind = target_kind(abstract(state), target)
    if kind == "block":
        t = state.objects[target].position
        return np.array([t[0], t[1], t[2] + BLOCK_SIZE + 0.004])
    if kind == "location":
        x, y = LOCATIONS[target]
        return np.array([x, y, TABLE_Z + BLOCK_SIZE / 2 + 0.004])
    if kind == "bowl":
        bowl = state.objects[target]
        inside = [o for n, o in state.objects.items() if o.kind == "block" and n != block
                  and np.linalg.norm(o.xy - bowl.xy) < BOWL_INNER_RADIUS]
        floor = bowl.position[2] + 0.006 + BLOCK_SIZE / 2
        for dx, dy in BOWL_SLOTS:
            slot = bowl.xy + np.array([dx, dy])
            if all(np.linalg.norm(slot - o.xy) > 0.03 for o in inside if o.position[2] < floor + 0.02):
                return np.array([slot[0], slot[1], floor + 0.006])
        # the floor is full: go on top of the lowest clear block in the bowl (still "in" the bowl)
        sym = abstract(state)
        clear = [o for o in inside if sym.is_clear(o.name) and sym.support.get(o.name) != "unknown"]
        if clear:
            t = min(clear, key=lambda o: o.position[2]).position
            return np.array([t[0], t[1], t[2] + BLOCK_SIZE + 0.004])
        return None
    return None


def check_place(state: SceneState, block: str, target: str) -> PlaceCheck:
    """Everything a place needs before moving; ``block`` may still be on the table (for affordances)."""
    sym = abstract(state)
    if target not in state.objects and target not in LOCATIONS:
        return PlaceCheck(f"no {target} in the scene")
    lifted = sym.copy()
    if lifted.held is None:
        lifted.support[block], lifted.held = "hand", block
    why = place_failure(lifted, block, target)
    if why is not None:
        return PlaceCheck(why)
    point = place_point(state, block, target)
    if point is None:
        return PlaceCheck("target occupied")
    if not in_reach(point[:2]):
        return PlaceCheck("unreachable")
    yaw, room = _place_yaw(state, block, target, point)
    return PlaceCheck("no room for the hand" if room < MIN_ROOM else None, point, yaw)


def _place_yaw(state: SceneState, block: str, target: str, point: np.ndarray) -> tuple[float, float]:
    """The hand yaw for releasing ``block`` with its centre at ``point`` over ``target``, and the clearance."""
    sym = abstract(state)
    kind = target_kind(sym, target)
    base_yaw = grasp_yaw(state.objects[target].yaw) if kind == "block" else 0.0
    below = tuple(sym.chain(target)) if kind == "block" else ()
    # the held cube turns with the hand: choose the hand yaw that lines the cube up with the target's faces
    return clear_yaw(state, point[:2], point[2] - hang(state, block), held_yaw(state, block, base_yaw),
                     RELEASE_GAP, (block, target, *below))


def _forced_place(state: SceneState, block: str, target: str, check: PlaceCheck) -> PlaceCheck:
    """``force=True``: ignore the pre-check's refusal and release over the target anyway. Where no free
    point exists (a full bowl) aim at the bowl's centre, above the highest block in it."""
    point = check.point if check.point is not None else place_point(state, block, target)
    if point is None:
        if target not in state.objects:
            return PlaceCheck(check.reason or "target occupied")
        t = state.objects[target]
        tops = [o.position[2] + BLOCK_SIZE + 0.004 for n, o in state.objects.items()
                if o.kind == "block" and n != block and np.linalg.norm(o.xy - t.xy) < BOWL_INNER_RADIUS]
        floor = t.position[2] + 0.012 + BLOCK_SIZE / 2 if t.kind == "bowl" else t.position[2] + BLOCK_SIZE + 0.004
        point = np.array([t.xy[0], t.xy[1], max([floor, *tops])])
    return PlaceCheck(None, point, _place_yaw(state, block, target, point)[0])


def place_held(robot: Robot, target: str, *, force: bool = False) -> SkillResult:
    """Put the held block on/in/at ``target``. ``force=True`` skips the pre-check's refusal (the hand must
    hold a block and the target must exist) and releases over the target anyway."""
    start = robot.steps
    state = robot.observe()
    block = state.held
    if block is None:
        return SkillResult(False, "hand is empty", 0)
    check = check_place(state, block, target)
    if (check.reason is not None or check.point is None) and force:
        check = _forced_place(state, block, target, check)
    if check.reason is not None or check.point is None:
        return SkillResult(False, check.reason or "target occupied", 0)
    if not release_at(robot, state, check.point, check.yaw):
        return SkillResult(False, "dropped", robot.steps - start)
    after = abstract(robot.observe())
    landed = after.support.get(block) if target_kind(after, target) == "block" else after.base(block)
    if landed != target:
        reason = "dropped" if after.support.get(block) in ("unknown", "table") else "missed target"
        return SkillResult(False, reason, robot.steps - start, {"landed_on": after.support.get(block)})
    return SkillResult(True, "", robot.steps - start)


def place_effect(state: SymbolicState, target: str) -> tuple[SymbolicState, str | None]:
    """Ideal place: the held block comes to rest on ``target``, unless ``place_failure`` says why not."""
    if state.held is None:
        return state.copy(), "hand is empty"
    why = place_failure(state, state.held, target)
    return (state.copy(), why) if why is not None else (state.moved(state.held, target), None)


class Place(Skill):
    """Put the held block onto a block, into a bowl or at a named location."""

    name = "place"
    description = "place the held block on/in/at the {target}"
    Params = PlaceParams
    in_api = True

    def text(self, params: PlaceParams) -> str:
        return f"place it {preposition(params.target)} the {params.target}"

    def affordance(self, state: SceneState, params: PlaceParams) -> float:
        return float(state.held is not None and check_place(state, state.held, params.target).reason is None)

    def effect(self, state: SymbolicState, params: PlaceParams) -> tuple[SymbolicState, str | None]:
        return place_effect(state, params.target)

    def candidates(self, state: State) -> list[PlaceParams]:
        """While a block is held: every target but the block itself."""
        if state.held is None:
            return []
        return [PlaceParams(t) for t in targets(state) if t != state.held]

    def execute(self, robot: Robot, params: PlaceParams) -> SkillResult:
        return place_held(robot, params.target)
