"""The Robot API: everything skills and the runtime may ask of a robot. The simulator implements it
(`envs.sim.SimRobot`); a robot behind ROS implements it too (`embodied.ros.robot.RosRobot`). Nothing above
this seam touches PyBullet or a simulator's world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from embodied.world.observation import View
from embodied.world.scene import SceneState


@runtime_checkable
class Robot(Protocol):
    """Move the end effector, open or close the gripper, go home, read the latest state. Skills use only
    ``observe``, ``move_to``, ``set_gripper`` and ``steps``; the runtime also uses ``home`` and ``proprio``."""

    def observe(self) -> SceneState:
        """The latest scene state (objects, end-effector position, gripper width, held object). It may be
        predicted from the last look and the joint sensors; `look` asks for a fresh one."""
        ...

    def move_to(self, position: tuple[float, float, float], yaw: float = 0.0, speed: float = 0.5) -> bool:
        """Move the gripper (fingertip centre, pointing down, rotated by ``yaw``) along a straight line to
        ``position`` at ``speed`` m/s; True when it arrived within 1 cm."""
        ...

    def set_gripper(self, open_: bool, width: float = 0.08) -> float:
        """Open the fingers to a ``width`` gap (metres), or close them, until they stop; return the final gap."""
        ...

    def home(self) -> bool:
        """Take the hand to the robot's home pose, out of the cameras' way; True when it arrived."""
        ...

    def proprio(self) -> np.ndarray:
        """The joint sensors as one vector in the layout of `embodied.world.observation.PROPRIO_FIELDS`."""
        ...

    @property
    def steps(self) -> int:
        """Control ticks (physics steps in simulation) executed so far, for budgets and reporting."""
        ...


@dataclass(frozen=True)
class RobotFault:
    """Why a robot refused or stopped the commands of the skill that just ran (a safety limit, an e-stop,
    stale state); ``halt``: the robot will not move again this episode (e-stop, lost connection)."""

    reason: str
    halt: bool = False


def take_fault(robot: Robot) -> RobotFault | None:
    """The fault of the skill that just ran, cleared for the next one; robots without faults (the
    simulator) have none. The runtime tells the planner the fault's reason as the skill's outcome."""
    take = getattr(robot, "take_fault", None)
    return take() if callable(take) else None


def look(robot: Robot) -> SceneState:
    """A fresh look where a skill needs one (the grasp check after a lift). A robot whose ``observe()`` may
    answer with a state predicted since its last look (`embodied.runtime.sensing.PerceivingRobot`) offers
    ``look()``; for any other robot ``observe()`` is already fresh."""
    fresh = getattr(robot, "look", None)
    return fresh() if callable(fresh) else robot.observe()


@runtime_checkable
class Cameras(Protocol):
    """The robot's calibrated cameras: what perception fuses and what learned models read."""

    def views(self, image_size: int) -> list[View]:
        """One calibrated RGB-D view per perception camera, ``image_size`` pixels square."""
        ...

    def observation(self) -> dict[str, np.ndarray]:
        """The main camera and the joint sensors under `embodied.world.observation.OBSERVATION_KEYS`."""
        ...
