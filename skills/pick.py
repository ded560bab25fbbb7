"""``pick(block)``: grasp a block from above and lift it."""

from __future__ import annotations

from dataclasses import dataclass

from embodied.world.scene import SceneState
from embodied.world.symbolic import SymbolicState, pick_failure
from skills.base import Skill, SkillResult
from skills.motion import check_pick, grasp_and_lift
from skills.robot import Robot


@dataclass(frozen=True)
class PickParams:
    block: str


def pick_effect(state: SymbolicState, block: str) -> tuple[SymbolicState, str | None]:
    """Ideal pick: ``block`` goes to the hand, unless ``pick_failure`` says why it cannot."""
    why = pick_failure(state, block)
    return (state.copy(), why) if why is not None else (state.moved(block, "hand"), None)


class Pick(Skill):
    """Grasp a block from above and lift it. Not offered as an option on its own (planners offer
    pick-and-place); skill code may call it."""

    name = "pick"
    description = "pick up the {block}"
    Params = PickParams
    in_api = True

    def text(self, params: PickParams) -> str:
        return f"pick up the {params.block}"

    def affordance(self, state: SceneState, params: PickParams) -> float:
        return float(check_pick(state, params.block).reason is None)

    def effect(self, state: SymbolicState, params: PickParams) -> tuple[SymbolicState, str | None]:
        return pick_effect(state, params.block)

    def execute(self, robot: Robot, params: PickParams) -> SkillResult:
        return grasp_and_lift(robot, params.block)
