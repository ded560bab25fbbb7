"""Where an episode's knowledge comes from: the scene state (perceived from RGB-D views, or the simulator's
ground truth as an ablation), and each step's outcome (a learned success detector on before/after point
clouds, or the skill's self-report). With perception on, skills see the perceived state too: the robot's
`observe()` is the perceiver, so nothing the agent does reads the simulator's poses."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from embodied.world.errors import EmbodiedError
from embodied.world.scene import SceneState, suggest
from envs.tabletop import TabletopEnv
from skills import SkillCall, SkillResult

log = logging.getLogger(__name__)

STATES = ("perceived", "ground-truth")
SUCCESS = ("learned", "analytic")
AFFORDANCES = ("learned", "analytic")


@dataclass
class SensingConfig:
    """`--state`, `--affordance` and `--success` of `run` and `eval`."""

    state: str = "perceived"  # "perceived": open3d perception of RGB-D views; "ground-truth": simulator poses
    affordance: str = "learned"  # "learned" value functions or the skills' "analytic" pre-checks
    success: str = "learned"  # step outcome from the "learned" detector or the skill's "analytic" self-report

    def __post_init__(self) -> None:
        for field_, value, known in (("state", self.state, STATES), ("affordance", self.affordance, AFFORDANCES),
                                     ("success", self.success, SUCCESS)):
            if value not in known:
                raise EmbodiedError(f"--{field_} {value!r} is not known{suggest(value, known)}; "
                                    f"choose {' or '.join(known)}")


class Sensing:
    """One episode's sensors: call `reset()` after the env is reset, `state()` before each decision and
    `judge(...)` after each skill."""

    def __init__(self, env: TabletopEnv, config: SensingConfig | None = None) -> None:
        from embodied.grounding import make_success_detector

        self.env = env
        self.config = config or SensingConfig()
        self.detector = make_success_detector(self.config.success)
        self.previous: SceneState | None = None

    def reset(self) -> None:
        """Forget the last episode; route the robot's own observations through perception when it is on."""
        self.previous = None
        self.env.robot.observer = self._perceive if self.config.state == "perceived" else None

    def close(self) -> None:
        self.env.robot.observer = None

    def _perceive(self) -> SceneState:
        from embodied.perception import perceive_world

        self.previous = perceive_world(self.env.world, previous=self.previous)
        return self.previous

    def state(self) -> SceneState:
        """The scene as the agent knows it right now."""
        return self._perceive() if self.config.state == "perceived" else self.env.scene_state()

    def observation(self) -> dict[str, np.ndarray]:
        """The raw sensors (rgb, depth, points, proprio) the learned models read."""
        return self.env.observation()

    def settle(self) -> None:
        """Take the hand home so the cameras see the whole table (what the learned models were trained on)."""
        from embodied.grounding import retreat

        retreat(self.env.robot)

    def judge(self, before: dict[str, np.ndarray], after: dict[str, np.ndarray], state_before: SceneState,
              call: SkillCall, result: SkillResult) -> tuple[SkillResult, float]:
        """The outcome the planner is told: the detector's verdict, with the skill's reason where they agree."""
        p = float(self.detector.success(before, after, state_before, call, result=result))
        model = getattr(self.detector, "model", None)
        ok = p >= float(getattr(getattr(model, "config", None), "threshold", 0.5))
        reason = ("" if ok else result.reason or "the success detector saw it fail") if ok != result.success \
            else result.reason
        return SkillResult(ok, reason, result.steps, dict(result.details)), p

    def describe(self) -> dict[str, Any]:
        return {"state": self.config.state, "affordance": self.config.affordance, "success": self.config.success}
