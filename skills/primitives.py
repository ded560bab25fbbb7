"""Primitive skills: pick, place and pick-and-place, acting only through the Robot API.

Each checks its own outcome from the robot's observation afterwards and reports failures by reason:
``missed grasp``, ``dropped``, ``unreachable``, ``target occupied``, ``hand is empty``, ``not clear``,
``missed target``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from embodied.world.scene import (
    BLOCK_SIZE,
    BOWL_HEIGHT,
    BOWL_INNER_RADIUS,
    LOCATIONS,
    TABLE_Z,
    SceneState,
    in_reach,
)
from embodied.world.symbolic import abstract, pick_failure, place_failure, target_kind
from skills.base import Skill, SkillResult
from skills.registry import register
from skills.robot import Robot

APPROACH = 0.08  # metres above the grasp/release pose before descending
FAST, SLOW = 0.6, 0.15  # m/s for free motion and for the last centimetres
GRASP_MIN_GAP = 0.025  # a closed gripper with a smaller gap has nothing between its fingers
PICK_GAP, RELEASE_GAP = 0.07, 0.06  # finger gaps when approaching a cube and when letting go of one
BOWL_SLOTS = [(dx, dy) for dx in (-0.023, 0.023) for dy in (-0.023, 0.023)]  # a 2 x 2 floor grid


def grasp_yaw(yaw: float) -> float:
    """The gripper yaw closest to zero that aligns the fingers with a cube's faces."""
    return (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4


# The hand as boxes in its own frame (a: along the finger axis, b: across it, z: above the fingertip
# centre), used to keep neighbours out of its way: (a_min, a_max, b_half, z_bottom).
FINGER_THICKNESS = 0.02
HAND_BOX = (-0.105, 0.105, 0.035, 0.034)
MIN_ROOM = -0.004  # clearance below which the hand would hit a neighbour (metres)


def hand_clearance(state: SceneState, xy: np.ndarray, z: float, yaw: float, gap: float,
                   ignore: tuple[str, ...]) -> float:
    """Smallest gap (metres, negative = collision) between the hand, lowered to height ``z`` at ``xy`` with
    ``yaw`` and its fingers ``gap`` apart, and any object tall enough to reach it: blocks as discs, bowls as
    their walls."""
    axis = np.array([math.sin(yaw), -math.cos(yaw)])
    across = np.array([math.cos(yaw), math.sin(yaw)])
    samples: list[tuple[np.ndarray, float]] = []  # (xy point on a box, bottom height of that box)
    finger_box = (gap / 2, gap / 2 + FINGER_THICKNESS, 0.012, -0.012)
    for a_lo, a_hi, b_half, z_bottom in (finger_box, HAND_BOX):
        for side in ((1.0, -1.0) if a_lo > 0 else (1.0,)):
            for a in np.linspace(a_lo, a_hi, 9):
                for b in np.linspace(-b_half, b_half, 3):
                    samples.append((xy + side * a * axis + b * across, z + z_bottom))
    worst = 1.0
    for name, o in state.objects.items():
        if name in ignore:
            continue
        top = o.position[2] + (BLOCK_SIZE / 2 if o.kind == "block" else BOWL_HEIGHT)
        for point, bottom in samples:
            if top <= bottom:
                continue
            d = float(np.linalg.norm(point - o.xy))
            gap = d - 0.5 * BLOCK_SIZE * math.sqrt(2) if o.kind == "block" else abs(d - BOWL_INNER_RADIUS - 0.005) - 0.005
            worst = min(worst, gap)
    return worst


def clear_yaw(state: SceneState, xy: np.ndarray, z: float, yaw: float, gap: float, ignore: tuple[str, ...]
              ) -> tuple[float, float]:
    """Of ``yaw`` and ``yaw + 90 deg`` (both align with a cube), the one that keeps the hand farthest from
    other objects, so it does not knock neighbours over; returns (yaw, clearance)."""
    turned = (yaw + math.pi) % math.pi - math.pi / 2  # yaw + 90 deg, wrapped to [-90, 90) (the hand is symmetric)
    options = [(hand_clearance(state, xy, z, y, gap, ignore), -abs(y), y) for y in (yaw, turned)]
    best = max(options)
    return best[2], best[0]


def _travel_height(state: SceneState) -> float:
    """A safe height for carrying: above the tallest object by a margin."""
    tops = [o.position[2] for o in state.objects.values()]
    return max([TABLE_Z + 0.15] + [t + 0.12 for t in tops])


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


@dataclass(frozen=True)
class PickParams:
    block: str


@dataclass(frozen=True)
class PlaceParams:
    target: str


@dataclass(frozen=True)
class PickAndPlaceParams:
    block: str
    target: str


@dataclass
class PickCheck:
    """How a pick would go from ``state``: the failure reason, or the hand's yaw."""

    reason: str | None
    yaw: float = 0.0


@dataclass
class PlaceCheck:
    """How a place would go: the failure reason, or where the block's centre goes and the hand's yaw."""

    reason: str | None
    point: np.ndarray | None = None
    yaw: float = 0.0


def check_pick(state: SceneState, block: str) -> PickCheck:
    """Everything a pick needs before moving: the block exists, is clear and in reach, and the hand fits."""
    if block not in state.objects:
        return PickCheck(f"no {block} in the scene")
    why = pick_failure(abstract(state), block)
    if why is not None:
        return PickCheck("not clear" if why.startswith("block is under") else why)
    obj = state.objects[block]
    if not in_reach(obj.xy):
        return PickCheck("unreachable")
    yaw, room = clear_yaw(state, obj.xy, obj.position[2] - 0.004, grasp_yaw(obj.yaw), PICK_GAP, (block,))
    return PickCheck("no room for the hand" if room < MIN_ROOM else None, yaw)


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
    held = state.objects[block]
    holding = state.held == block
    offset_z = held.position[2] - state.ee_position[2] if holding else 0.0  # the block hangs where grasped
    # the held cube turns with the hand: choose the hand yaw that lines the cube up with the target's faces
    in_hand = grasp_yaw(held.yaw - state.ee_yaw) if holding else 0.0
    kind = target_kind(sym, target)
    base_yaw = grasp_yaw(state.objects[target].yaw) if kind == "block" else 0.0
    below = tuple(sym.chain(target)) if kind == "block" else ()
    return clear_yaw(state, point[:2], point[2] - offset_z, grasp_yaw(base_yaw - in_hand), RELEASE_GAP,
                     (block, target, *below))


def _forced_pick(state: SceneState, block: str, check: PickCheck) -> PickCheck:
    """``force=True``: ignore the pre-check's refusal and grasp with the best yaw there is."""
    if check.reason == "no room for the hand":  # the check got as far as choosing a yaw
        return PickCheck(None, check.yaw)
    obj = state.objects[block]
    return PickCheck(None, clear_yaw(state, obj.xy, obj.position[2] - 0.004, grasp_yaw(obj.yaw), PICK_GAP,
                                     (block,))[0])


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


def _pick(robot: Robot, block: str, *, force: bool = False) -> SkillResult:
    """Grasp ``block`` and lift it. ``force=True`` skips the pre-check's refusal (the block must exist) and
    tries anyway, so physics decides: used to label learned affordances with real outcomes."""
    start = robot.steps
    state = robot.observe()
    check = check_pick(state, block)
    if check.reason is not None:
        if not force or block not in state.objects:
            return SkillResult(False, check.reason, 0)
        check = _forced_pick(state, block, check)
    x, y, z = state.objects[block].position
    yaw = check.yaw
    high = _travel_height(state)
    robot.set_gripper(True, PICK_GAP)
    robot.move_to((x, y, high), yaw, FAST)
    robot.move_to((x, y, z + APPROACH), yaw, FAST)
    robot.move_to((x, y, z - 0.004), yaw, SLOW)
    gap = robot.set_gripper(False)
    if gap < GRASP_MIN_GAP:
        robot.set_gripper(True)
        robot.move_to((x, y, high), yaw, FAST)
        return SkillResult(False, "missed grasp", robot.steps - start, {"gap": round(gap, 4)})
    robot.move_to((x, y, high), yaw, SLOW)
    after = robot.observe()
    if after.held != block or after.objects[block].position[2] < z + 0.05:
        return SkillResult(False, "dropped", robot.steps - start)
    return SkillResult(True, "", robot.steps - start)


def _place(robot: Robot, target: str, *, force: bool = False) -> SkillResult:
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
    point, yaw = check.point, check.yaw
    tip = np.asarray(state.ee_position)
    offset_z = state.objects[block].position[2] - tip[2]
    high = _travel_height(state)
    robot.move_to((tip[0], tip[1], high), state.ee_yaw, FAST)
    robot.move_to((point[0], point[1], high), yaw, FAST)
    for z, speed in ((point[2] - offset_z + 0.03, FAST), (point[2] - offset_z, SLOW)):
        now = robot.observe()  # correct for where the cube actually sits between the fingers
        if now.held != block:
            return SkillResult(False, "dropped", robot.steps - start)
        xy = point[:2] - (now.objects[block].xy - np.asarray(now.ee_position[:2]))
        robot.move_to((xy[0], xy[1], z), yaw, speed)
    robot.set_gripper(True, RELEASE_GAP)
    robot.move_to((xy[0], xy[1], high), yaw, FAST)
    after = abstract(robot.observe())
    landed = after.support.get(block) if target_kind(after, target) == "block" else after.base(block)
    if landed != target:
        reason = "dropped" if after.support.get(block) in ("unknown", "table") else "missed target"
        return SkillResult(False, reason, robot.steps - start, {"landed_on": after.support.get(block)})
    return SkillResult(True, "", robot.steps - start)


@register
class Pick(Skill):
    """Grasp a block from above and lift it."""

    name = "pick"
    description = "pick up the {block}"
    Params = PickParams

    def text(self, params: PickParams) -> str:
        return f"pick up the {params.block}"

    def affordance(self, state: SceneState, params: PickParams) -> float:
        return float(check_pick(state, params.block).reason is None)

    def execute(self, robot: Robot, params: PickParams) -> SkillResult:
        return _pick(robot, params.block)


@register
class Place(Skill):
    """Put the held block onto a block, into a bowl or at a named location."""

    name = "place"
    description = "place the held block on/in/at the {target}"
    Params = PlaceParams

    def text(self, params: PlaceParams) -> str:
        return f"place it {_preposition(params.target)} the {params.target}"

    def affordance(self, state: SceneState, params: PlaceParams) -> float:
        return float(state.held is not None and check_place(state, state.held, params.target).reason is None)

    def execute(self, robot: Robot, params: PlaceParams) -> SkillResult:
        return _place(robot, params.target)


@register
class PickAndPlace(Skill):
    """Pick a block and put it onto a block, into a bowl or at a named location."""

    name = "pick_and_place"
    description = "pick up the {block} and place it {prep} the {target}"
    Params = PickAndPlaceParams

    def text(self, params: PickAndPlaceParams) -> str:
        return f"pick up the {params.block} and place it {_preposition(params.target)} the {params.target}"

    def affordance(self, state: SceneState, params: PickAndPlaceParams) -> float:
        if params.block not in state.objects or state.held not in (None, params.block):
            return 0.0
        if state.held is None and check_pick(state, params.block).reason is not None:
            return 0.0
        return float(check_place(state, params.block, params.target).reason is None)

    def execute(self, robot: Robot, params: PickAndPlaceParams) -> SkillResult:
        return execute_pick_and_place(robot, params.block, params.target)


def execute_pick_and_place(robot: Robot, block: str, target: str, *, force: bool = False) -> SkillResult:
    """Pick ``block`` (unless already held) and place it on/in/at ``target``. ``force=True`` skips both
    pre-checks' refusals so physics decides the outcome (data collection for learned grounding)."""
    first = robot.observe()
    if first.held != block:
        picked = _pick(robot, block, force=force)
        if not picked.success:
            return picked
    else:
        picked = SkillResult(True)
    placed = _place(robot, target, force=force)
    return SkillResult(placed.success, placed.reason, picked.steps + placed.steps, placed.details)


def _preposition(target: str) -> str:
    if target.endswith("bowl"):
        return "in"
    if target in LOCATIONS:
        return "at"
    return "on"
