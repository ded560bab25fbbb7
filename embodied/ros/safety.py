"""The safety layer in front of every command the bridge sends: workspace box, longest step, speed, gripper
width, finite numbers, fresh state. A refused command is never sent; its reason ends the skill and the
planner reads it as feedback."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from embodied.ros.profile import Limits


class Refused(Exception):  # noqa: N818 - a refusal, not a crash: the skill ends with its reason
    """A command the safety layer refused, with the reason the planner is told."""


def _finite(values: Sequence[float], what: str) -> None:
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        raise Refused(f"safety: {what} is not a finite number ({', '.join(map(str, values))})")


class Safety:
    """Checks commands against ``limits``; ``enabled=False`` (a profile that says why) checks only that
    numbers are finite."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def check_move(self, target: Sequence[float], yaw: float, speed: float, current: Sequence[float] | None) -> None:
        """A hand target (m, world frame), yaw (rad) and speed (m/s) from the hand's measured position."""
        _finite([*target, yaw, speed], "the move's target, yaw or speed")
        if not self.limits.enabled:
            return
        for axis, value in zip("xyz", target, strict=True):
            low, high = self.limits.workspace[axis]
            if not low <= value <= high:
                raise Refused(f"safety: target {axis}={value:.3f} m is outside the workspace {axis} "
                              f"[{low:.3f}, {high:.3f}]")
        if not 0 < speed <= self.limits.max_speed_mps:
            raise Refused(f"safety: speed {speed:.3f} m/s is outside (0, {self.limits.max_speed_mps:.3f}]")
        if current is not None:
            step = float(np.linalg.norm(np.asarray(target, float) - np.asarray(current, float)))
            if step > self.limits.max_step_m:
                raise Refused(f"safety: a {step:.3f} m step is longer than the limit {self.limits.max_step_m:.3f} m")

    def check_gripper(self, width: float) -> None:
        _finite([width], "the gripper width")
        low, high = self.limits.gripper_width_m
        if self.limits.enabled and not low <= width <= high:
            raise Refused(f"safety: gripper width {width:.4f} m is outside [{low:.4f}, {high:.4f}]")

    def check_fresh(self, age_s: float | None) -> None:
        """Refuse to command on state older than ``max_state_age_s`` (None: no state yet)."""
        if age_s is None:
            raise Refused("safety: no joint state has arrived from the robot")
        if self.limits.enabled and age_s > self.limits.max_state_age_s:
            raise Refused(f"safety: the joint state is {age_s:.2f} s old (limit {self.limits.max_state_age_s:.2f} s)")
