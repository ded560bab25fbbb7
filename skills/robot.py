"""The Robot API: everything a skill may do. The simulator implements it and, later, the ROS bridge."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from embodied.world.scene import SceneState


@runtime_checkable
class Robot(Protocol):
    """Move the end effector, open or close the gripper, read the latest state. Nothing else."""

    def observe(self) -> SceneState:
        """The latest scene state (objects, end-effector position, gripper width, held object)."""
        ...

    def move_to(self, position: tuple[float, float, float], yaw: float = 0.0, speed: float = 0.5) -> bool:
        """Move the gripper (fingertip centre, pointing down, rotated by ``yaw``) along a straight line to
        ``position`` at ``speed`` m/s; True when it arrived within 1 cm."""
        ...

    def set_gripper(self, open_: bool, width: float = 0.08) -> float:
        """Open the fingers to a ``width`` gap (metres), or close them, until they stop; return the final gap."""
        ...

    @property
    def steps(self) -> int:
        """Physics steps executed so far (for budgets and reporting)."""
        ...
