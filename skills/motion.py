"""Motion shared by the primitive skills: the carrying height, the pick pre-check and grasp, and the
release of a held block at a point. Acts only through the Robot API; geometry comes from
``embodied.world.gripper``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embodied.world.gripper import (
    APPROACH,
    FAST,
    GRASP_MIN_GAP,
    MIN_ROOM,
    PICK_GAP,
    RELEASE_GAP,
    SLOW,
    clear_yaw,
    grasp_yaw,
)
from embodied.world.scene import TABLE_Z, SceneState, in_reach
from embodied.world.symbolic import abstract, pick_failure
from skills.base import SkillResult
from skills.robot import Robot, look


def travel_height(state: SceneState) -> float:
    """A safe height for carrying: above the tallest object by a margin."""
    tops = [o.position[2] for o in state.objects.values()]
    return max([TABLE_Z + 0.15] + [t + 0.12 for t in tops])


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


def _forced_pick(state: SceneState, block: str, check: PickCheck) -> PickCheck:
    """``force=True``: ignore the pre-check's refusal and grasp with the best yaw there is."""
    if check.reason == "no room for the hand":  # the check got as far as choosing a yaw
        return PickCheck(None, check.yaw)
    obj = state.objects[block]
    return PickCheck(None, clear_yaw(state, obj.xy, obj.position[2] - 0.004, grasp_yaw(obj.yaw), PICK_GAP,
                                     (block,))[0])


def grasp_and_lift(robot: Robot, block: str, *, force: bool = False) -> SkillResult:
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
    high = travel_height(state)
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
    after = look(robot)  # the grasp check: is it between the fingers, and where exactly
    if after.held != block or after.objects[block].position[2] < z + 0.05:
        return SkillResult(False, "dropped", robot.steps - start)
    return SkillResult(True, "", robot.steps - start)


def release_at(robot: Robot, state: SceneState, point: np.ndarray, yaw: float) -> bool:
    """Carry the held block (``state``: observed before moving) at travel height over ``point``, lower it
    until its centre is there (correcting for where it sits between the fingers), let go and rise again;
    False when it slipped out on the way."""
    block = state.held
    tip = np.asarray(state.ee_position)
    offset_z = state.objects[block].position[2] - tip[2]
    high = travel_height(state)
    robot.move_to((tip[0], tip[1], high), state.ee_yaw, FAST)
    robot.move_to((point[0], point[1], high), yaw, FAST)
    for z, speed in ((point[2] - offset_z + 0.03, FAST), (point[2] - offset_z, SLOW)):
        now = robot.observe()  # correct for where the cube actually sits between the fingers
        if now.held != block:
            return False
        xy = point[:2] - (now.objects[block].xy - np.asarray(now.ee_position[:2]))
        robot.move_to((xy[0], xy[1], z), yaw, speed)
    robot.set_gripper(True, RELEASE_GAP)
    robot.move_to((xy[0], xy[1], high), yaw, FAST)
    return True


def held_yaw(state: SceneState, block: str, base_yaw: float) -> float:
    """The hand yaw that lines ``block`` (held: it turns with the hand) up with faces at ``base_yaw``."""
    in_hand = grasp_yaw(state.objects[block].yaw - state.ee_yaw) if state.held == block else 0.0
    return grasp_yaw(base_yaw - in_hand)


def hang(state: SceneState, block: str) -> float:
    """How far the block's centre hangs below the fingertips (0 while it is not held)."""
    return state.objects[block].position[2] - state.ee_position[2] if state.held == block else 0.0
