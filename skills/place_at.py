"""``place_at(block, point)``: put a block down on the table at a point.

``point`` is text (skill-call arguments are strings) in metres, in the world frame of
``embodied.world.scene`` (+x the far side, "top"; +y the robot's left):

* ``"x,y"``, e.g. ``"0.50,0.10"``;
* ``"<location>+dx,dy"``: a named location shifted by an offset, e.g. ``"middle+0.05,-0.10"``.

The block may already be in the hand or be picked first (it must be clear). The point must be in reach,
with no other block within ``POINT_CLEARANCE`` of it, no bowl within ``BOWL_CLEARANCE``, and room for the
hand; the block then rests directly on the table within ``AT_XY_TOL`` of it, which is what the goal
``["at", block, [x, y]]`` asks. Planners are offered it only for the points a goal names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from embodied.world.gripper import MIN_ROOM, RELEASE_GAP, clear_yaw
from embodied.world.predicates import point_goals, point_phrase
from embodied.world.scene import BLOCK_SIZE, TABLE_Z, SceneState
from embodied.world.symbolic import (
    Point,
    SymbolicState,
    abstract,
    parse_point,
    point_failure,
    point_text,
    table_support,
)
from skills.base import Skill, SkillResult, State
from skills.motion import PlaceCheck, check_pick, grasp_and_lift, hang, held_yaw, release_at
from skills.pick import pick_effect
from skills.robot import Robot


@dataclass(frozen=True)
class PlaceAtParams:
    block: str
    point: str  # "x,y" or "<location>+dx,dy", metres (see the module docstring)


def check_place_at(state: SceneState, block: str, point: Point) -> PlaceCheck:
    """Everything setting ``block`` down at ``point`` needs before moving (the block may not be held yet)."""
    obj = state.objects.get(block)
    if obj is None or obj.kind != "block":
        return PlaceCheck(f"no {block} in the scene")
    why = point_failure(abstract(state), block, point)
    if why is not None:
        return PlaceCheck(why)
    centre = np.array([point[0], point[1], TABLE_Z + BLOCK_SIZE / 2 + 0.004])
    yaw, room = clear_yaw(state, centre[:2], centre[2] - hang(state, block), held_yaw(state, block, 0.0),
                          RELEASE_GAP, (block,))
    return PlaceCheck("no room for the hand" if room < MIN_ROOM else None, centre, yaw)


class PlaceAt(Skill):
    """Pick a block (unless held) and put it down on the table at a point given in metres."""

    name = "place_at"
    description = "pick up the {block} and place it at the point {point} (metres on the table)"
    Params = PlaceAtParams
    in_api = True

    def text(self, params: PlaceAtParams) -> str:
        try:
            where = point_phrase(point_text(params.point))
        except ValueError:
            where = params.point
        return f"pick up the {params.block} and place it at {where}"

    def affordance(self, state: SceneState, params: PlaceAtParams) -> float:
        if params.block not in state.objects or state.held not in (None, params.block):
            return 0.0
        try:
            point = parse_point(params.point)
        except ValueError:
            return 0.0
        if state.held is None and check_pick(state, params.block).reason is not None:
            return 0.0
        return float(check_place_at(state, params.block, point).reason is None)

    def effect(self, state: SymbolicState, params: PlaceAtParams) -> tuple[SymbolicState, str | None]:
        """Picked (unless held), then resting on the table at the point: on the named location when it lies
        within ``AT_XY_TOL`` of one (as ``abstract`` would read it), else on ``"table"``."""
        try:
            point = parse_point(params.point)
        except ValueError as e:
            return state.copy(), str(e)
        lifted, why = (state, None) if state.held == params.block else pick_effect(state, params.block)
        if why is None:
            why = point_failure(lifted, params.block, point)
        if why is not None:
            return state.copy(), why
        return lifted.moved(params.block, table_support(point), point), None

    def goal_candidates(self, state: State, goal: Sequence[Sequence]) -> list[PlaceAtParams]:
        """One call per ``["at", block, point]`` of the goal (only the held block's while one is held)."""
        calls = [PlaceAtParams(b, p) for b, p in point_goals(goal) if state.held in (None, b)]
        return list(dict.fromkeys(calls))

    def execute(self, robot: Robot, params: PlaceAtParams) -> SkillResult:
        start = robot.steps
        try:
            point = parse_point(params.point)
        except ValueError as e:
            return SkillResult(False, str(e), 0)
        state = robot.observe()
        block = params.block
        if state.held not in (None, block):
            return SkillResult(False, f"hand already holds {state.held}", 0)
        check = check_place_at(state, block, point)  # before picking: a blocked point costs no motion
        if check.reason is not None:
            return SkillResult(False, check.reason, 0)
        if state.held != block:
            picked = grasp_and_lift(robot, block)
            if not picked.success:
                return picked
            state = robot.observe()
            check = check_place_at(state, block, point)  # again, with the block turned in the hand
            if check.reason is not None:
                return SkillResult(False, check.reason, robot.steps - start)
        if not release_at(robot, state, check.point, check.yaw):
            return SkillResult(False, "dropped", robot.steps - start)
        after = abstract(robot.observe())
        if block not in after.blocks_at(point):
            reason = "dropped" if after.support.get(block) == "unknown" else "missed target"
            return SkillResult(False, reason, robot.steps - start, {"landed_on": after.support.get(block)})
        return SkillResult(True, "", robot.steps - start)
