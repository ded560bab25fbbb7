"""Where an episode's knowledge comes from: the scene state (perceived from RGB-D views, or the simulator's
ground truth as an ablation), and each step's outcome (a learned success detector on before/after point
clouds, or the skill's self-report). With perception on, skills see the perceived state too: the robot's
`observe()` is the perceiver, so nothing the agent does reads the simulator's poses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from embodied.world.errors import EmbodiedError
from embodied.world.scene import SceneState, suggest
from skills import SkillCall, SkillResult
from skills.robot import Cameras, Robot

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


class PerceivingRobot:
    """A robot whose ``observe()`` is answered by perception, so skills aim at perceived poses; everything
    else goes to the robot itself."""

    def __init__(self, robot: Robot, perceive: Callable[[], SceneState]) -> None:
        self._robot = robot
        self._perceive = perceive

    def observe(self) -> SceneState:
        return self._perceive()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._robot, name)


class Sensing:
    """One episode's sensors on a robot and its cameras: call `reset()` before the episode, `state()` before
    each decision and `judge(...)` after each skill; skills act on `robot` (perceived when perception is on)."""

    def __init__(self, robot: Robot, config: SensingConfig | None = None, cameras: Cameras | None = None) -> None:
        from embodied.grounding import make_affordance, make_success_detector

        self.config = config or SensingConfig()
        self.raw = robot
        self.cameras: Cameras = cameras if cameras is not None else robot  # type: ignore[assignment]
        if not isinstance(self.cameras, Cameras):
            raise EmbodiedError(f"{type(robot).__name__} has no cameras (views(), observation()): pass cameras=")
        self.robot: Robot = PerceivingRobot(robot, self._perceive) if self.config.state == "perceived" else robot
        self.detector = make_success_detector(self.config.success)
        self.affordances = make_affordance(self.config.affordance)  # what the planner weights its options by
        self.previous: SceneState | None = None

    def reset(self) -> None:
        """Forget the last episode's perceived objects."""
        self.previous = None

    def _perceive(self) -> SceneState:
        from embodied.perception import perceive_robot

        self.previous = perceive_robot(self.raw, self.cameras, previous=self.previous)
        return self.previous

    def state(self) -> SceneState:
        """The scene as the agent knows it right now."""
        return self.robot.observe()

    def observation(self) -> dict[str, np.ndarray]:
        """The raw sensors (rgb, depth, points, proprio) the learned models read."""
        return self.cameras.observation()

    def settle(self) -> None:
        """Take the hand home so the cameras see the whole table (what the learned models were trained on)."""
        self.raw.home()

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
