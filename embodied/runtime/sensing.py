"""Where an episode's knowledge comes from: the scene state (perceived from RGB-D views, or the simulator's
ground truth as an ablation), and each step's outcome (a learned success detector on before/after point
clouds, or the skill's self-report). With perception on, skills see the perceived state too: the robot's
`observe()` is the perceiver, so nothing the agent does reads the simulator's poses."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from embodied.world.errors import EmbodiedError
from embodied.world.scene import SceneState, suggest
from skills import SkillCall, SkillResult
from skills.registry import effect_holds
from skills.robot import Cameras, Robot

log = logging.getLogger(__name__)

STATES = ("perceived", "ground-truth")
SUCCESS = ("learned", "analytic")
AFFORDANCES = ("learned", "analytic")
LOOKS = ("decision", "every-observe")


@dataclass
class SensingConfig:
    """`--state`, `--affordance` and `--success` of `run` and `eval`."""

    state: str = "perceived"  # "perceived": open3d perception of RGB-D views; "ground-truth": simulator poses
    affordance: str = "learned"  # "learned" value functions or the skills' "analytic" pre-checks
    success: str = "learned"  # step outcome from the "learned" detector or the skill's "analytic" self-report
    looks: str = "decision"  # "decision": perceive once per decision plus grasp checks; "every-observe": on
    #                          every observe() a skill makes, every pixel classified afresh (the perception
    #                          before the fast loop, for benchmarks)

    def __post_init__(self) -> None:
        for field_, value, known in (("state", self.state, STATES), ("affordance", self.affordance, AFFORDANCES),
                                     ("success", self.success, SUCCESS)):
            if value not in known:
                raise EmbodiedError(f"--{field_} {value!r} is not known{suggest(value, known)}; "
                                    f"choose {' or '.join(known)}")
        if self.looks not in LOOKS:
            raise EmbodiedError(f"SensingConfig.looks={self.looks!r}: expected one of {LOOKS}")


class PerceivingRobot:
    """A robot whose ``observe()`` is answered by perception, so skills aim at perceived poses; everything
    else goes to the robot itself. Between looks, ``observe()`` is the scene carried forward by the joint
    sensors (`embodied.perception.carry`: a held block moves with the hand); ``look()`` is the fresh look a
    grasp check asks for; opening the fingers leaves a held block where the hand let go of it."""

    def __init__(self, robot: Robot, sensing: Sensing) -> None:
        self._robot = robot
        self._sensing = sensing

    def observe(self) -> SceneState:
        return self._sensing.tracked()

    def look(self) -> SceneState:
        return self._sensing.look()

    def set_gripper(self, open_: bool, width: float = 0.08) -> float:
        if open_:
            self._sensing.release()
        return self._robot.set_gripper(open_, width)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._robot, name)


class Sensing:
    """One episode's sensors on a robot and its cameras: call `reset()` before the episode, `state()` before
    each decision and `judge(...)` after each skill; skills act on `robot` (perceived when perception is on).

    Perception runs once per decision (`state()`, only if the robot moved since the last one) and for a
    skill's grasp check (a look at the hand only); ``looks="every-observe"`` perceives the whole scene on
    every ``observe()`` instead, as before the fast loop (kept to measure against). ``timing`` sums the
    seconds spent getting frames ("render": the simulator's cost; a real camera delivers them) and
    perceiving them ("perception"), and counts the looks."""

    def __init__(self, robot: Robot, config: SensingConfig | None = None, cameras: Cameras | None = None) -> None:
        from embodied.grounding import make_affordance, make_success_detector

        self.config = config or SensingConfig()
        self.raw = robot
        self.cameras: Cameras = cameras if cameras is not None else robot  # type: ignore[assignment]
        if not isinstance(self.cameras, Cameras):
            raise EmbodiedError(f"{type(robot).__name__} has no cameras (views(), observation()): pass cameras=")
        self.robot: Robot = PerceivingRobot(robot, self) if self.config.state == "perceived" else robot
        self.detector = make_success_detector(self.config.success)
        self.affordances = make_affordance(self.config.affordance)  # what the planner weights its options by
        self.timing: dict[str, float] = {}
        from embodied.perception import PerceptionConfig

        # "every-observe" reproduces the perception before the fast loop: a full look per observe(), every
        # pixel's colour classified afresh
        self.perception = PerceptionConfig(color_lut=self.config.looks == "decision")
        self.reset()

    def reset(self) -> None:
        """Forget the last episode's perceived objects."""
        from embodied.perception import PerceptionMemo

        self.known: SceneState | None = None  # the last look, carried forward by the joint sensors
        self._known_at = self._looked_at = -1  # robot steps when ``known`` was updated / last fully perceived
        # what the looks found per colour, so a look re-clusters only what changed ("every-observe": none)
        self.memo = PerceptionMemo() if self.config.looks == "decision" else None

    def _perceive(self) -> SceneState:
        from embodied.perception import perceive_robot

        self.known = perceive_robot(self.raw, self.cameras, self.perception, previous=self.known,
                                    timing=self.timing, memo=self.memo)
        self._known_at = self._looked_at = self.raw.steps
        return self.known

    def tracked(self) -> SceneState:
        """What a skill's ``observe()`` sees: the last look carried to the hand's pose now (perceived afresh
        when there is no look yet, or with ``looks="every-observe"``)."""
        from embodied.perception import carry, hand_from_proprio

        if self.known is None or self.config.looks == "every-observe":
            return self._perceive()
        if self.raw.steps != self._known_at:
            self.known = carry(self.known, hand_from_proprio(self.raw.proprio()))
            self._known_at = self.raw.steps
        return self.known

    def look(self) -> SceneState:
        """A grasp check: the hand looked at afresh, everything else carried over."""
        from embodied.perception import look_at_hand

        if self.known is None or self.config.looks == "every-observe":
            return self._perceive()
        self.known = look_at_hand(self.raw, self.cameras, self.tracked(), self.perception, timing=self.timing)
        self._known_at = self.raw.steps
        return self.known

    def release(self) -> None:
        """The fingers are about to open: a held block stays where the hand holds it now."""
        if self.known is not None and self.known.held is not None and self.config.looks != "every-observe":
            self.known = dataclasses.replace(self.tracked(), held=None)

    def state(self) -> SceneState:
        """The scene as the agent knows it right now: perceived, unless nothing moved since the last look."""
        if self.config.state != "perceived":
            return self.robot.observe()
        if self.known is not None and self.raw.steps == self._looked_at:
            return self.known
        return self._perceive()

    def observation(self) -> dict[str, np.ndarray]:
        """The raw sensors (rgb, depth, points, proprio) the learned models read."""
        return self.cameras.observation()

    def settle(self) -> None:
        """Take the hand home so the cameras see the whole table (what the learned models were trained on)."""
        self.raw.home()

    def judge(self, before: dict[str, np.ndarray], after: dict[str, np.ndarray], state_before: SceneState,
              call: SkillCall, result: SkillResult, state_after: SceneState | None = None
              ) -> tuple[SkillResult, float]:
        """The outcome the planner is told: the detector's verdict, with the skill's reason where they agree.
        With perception on, the skill's self-report is first checked against ``state_after`` (a fresh look
        after the skill): skills act on a state predicted between looks, so "released over the bowl" is
        only a success if the bowl is where the block is seen afterwards. A step the look shows done and the
        skill reported done is a success even if the detector doubts it; one the look shows undone never is."""
        looked = state_after is not None and self.config.state == "perceived"
        holds = not looked or effect_holds(call, state_before, state_after)  # type: ignore[arg-type]
        if result.success and not holds:
            result = SkillResult(False, "the look afterwards does not show it done", result.steps,
                                 dict(result.details))
        p = float(self.detector.success(before, after, state_before, call, result=result))
        model = getattr(self.detector, "model", None)
        detected = p >= float(getattr(getattr(model, "config", None), "threshold", 0.5))
        # the fresh look vetoes: a detector never turns a step the look shows undone into a success; and a
        # step the look shows done, which the skill's own sensing reported done, stands against the
        # detector's doubt (two measurements of the physical state against a learned guess)
        ok = holds and (detected or (looked and result.success))
        if ok and not detected:
            log.info("%s: the detector doubted it (p=%.2f), the look afterwards shows it done", call, p)
        reason = ("" if ok else result.reason or "the success detector saw it fail") if ok != result.success \
            else result.reason
        return SkillResult(ok, reason, result.steps, dict(result.details)), p

    def describe(self) -> dict[str, Any]:
        return {"state": self.config.state, "affordance": self.config.affordance, "success": self.config.success,
                "looks": self.config.looks}
