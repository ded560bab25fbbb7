"""``pick_and_place(block, target)``: pick a block (unless held) and put it onto a block, into a bowl or at a
named location: the move planners offer and learned skill code is written in."""

from __future__ import annotations

from dataclasses import dataclass

from embodied.world.scene import SceneState
from embodied.world.symbolic import SymbolicState
from skills.base import Skill, SkillCall, SkillResult, State, targets
from skills.motion import check_pick, grasp_and_lift
from skills.pick import Pick, pick_effect
from skills.place import Place, check_place, place_effect, place_held, preposition
from skills.robot import Robot


@dataclass(frozen=True)
class PickAndPlaceParams:
    block: str
    target: str


def execute_pick_and_place(robot: Robot, block: str, target: str, *, force: bool = False) -> SkillResult:
    """Pick ``block`` (unless already held) and place it on/in/at ``target``. ``force=True`` skips both
    pre-checks' refusals so physics decides the outcome (data collection for learned grounding)."""
    first = robot.observe()
    if first.held != block:
        picked = grasp_and_lift(robot, block, force=force)
        if not picked.success:
            return picked
    else:
        picked = SkillResult(True)
    placed = place_held(robot, target, force=force)
    return SkillResult(placed.success, placed.reason, picked.steps + placed.steps, placed.details)


class PickAndPlace(Skill):
    """Pick a block and put it onto a block, into a bowl or at a named location."""

    name = "pick_and_place"
    description = "pick up the {block} and place it {prep} the {target}"
    Params = PickAndPlaceParams
    in_api = True

    def text(self, params: PickAndPlaceParams) -> str:
        return f"pick up the {params.block} and place it {preposition(params.target)} the {params.target}"

    def affordance(self, state: SceneState, params: PickAndPlaceParams) -> float:
        return float(self.why_not(state, params) is None)

    def why_not(self, state: SceneState, params: PickAndPlaceParams) -> str | None:
        if params.block not in state.objects:
            return f"no {params.block} on the table"
        if state.held not in (None, params.block):
            return f"the hand holds the {state.held}"
        if state.held is None and (why := check_pick(state, params.block).reason) is not None:
            return f"the {params.block}: {why}"
        why = check_place(state, params.block, params.target).reason
        return None if why is None else f"the {params.target}: {why}"

    def effect(self, state: SymbolicState, params: PickAndPlaceParams) -> tuple[SymbolicState, str | None]:
        """A pick, then a place; on failure nothing changes (the symbols have no half-done move)."""
        lifted, why = pick_effect(state, params.block)
        if why is not None:
            return state.copy(), why
        placed, why = place_effect(lifted, params.target)
        return (state.copy(), why) if why is not None else (placed, None)

    def candidates(self, state: State) -> list[PickAndPlaceParams]:
        """With the hand empty: every block to every target but itself."""
        if state.held is not None:
            return []
        return [PickAndPlaceParams(b, t) for b in state.blocks for t in targets(state) if t != b]

    def move(self, params: PickAndPlaceParams) -> tuple[str, str]:
        return params.block, params.target

    def combine(self, first: SkillCall, second: SkillCall) -> PickAndPlaceParams | None:
        """``pick(b)`` then ``place(t)`` is ``pick_and_place(b, t)``."""
        if first.name == Pick.name and second.name == Place.name:
            return PickAndPlaceParams(first.args["block"], second.args["target"])
        return None

    def execute(self, robot: Robot, params: PickAndPlaceParams) -> SkillResult:
        return execute_pick_and_place(robot, params.block, params.target)
